package regsim

import (
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/addressing/seed"
)

func TestStart(t *testing.T) {
	s, err := seed.Default()
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	fixed := ln.Addr().String()
	require.NoError(t, ln.Close())

	set, err := Start(Options{Seed: s, Addrs: Addrs{KRR: fixed}})
	require.NoError(t, err)
	assert.Equal(t, "http://"+fixed, set.KRRURL)
	for _, u := range []string{set.SRURL + "/jwk", set.KRRPrintURL, set.BrregURL + "/enheter/910079018", set.ELMAURL + "/_sim/requests",
		set.FolkeregURL + "/_sim/requests", set.SvarUtURL + "/api/v2/mottakersystem?organisasjonsnummer=910079018"} {
		resp, err := http.Get(u)
		require.NoError(t, err, u)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode, u)
	}
	set.Close()
	_, err = http.Get(set.SRURL + "/jwk")
	assert.Error(t, err, "closed")

	_, err = Start(Options{})
	assert.Error(t, err)
}

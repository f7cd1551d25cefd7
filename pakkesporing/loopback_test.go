package pakkesporing_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/pakkesporing"
	"github.com/efm-go/efm/pakkesporing/pakkesporingtest"
)

func TestStartLoopback(t *testing.T) {
	ca := pakkesporingtest.NewCA(t)
	l, err := pakkesporing.StartLoopback(context.Background(), pakkesporing.Config{
		DBPath: filepath.Join(t.TempDir(), "central.db"), ClientCAs: ca.Pool, Now: testNow,
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, l.Close()) })
	assert.Regexp(t, `^https://127\.0\.0\.1:\d+$`, l.BaseURL)
	assert.GreaterOrEqual(t, len(l.QueryToken), 16)
	assert.Contains(t, string(l.RootPEM), "BEGIN CERTIFICATE")

	// What the daemon's shipper does: its business certificate, trusting RootCAs.
	c := events.MutualTLSClient(ca.BusinessCert(t, senderOrg), l.RootCAs)
	m := newMessage()
	code, ir := post(t, c, l.BaseURL, m.sent(t, newBuilder(t, senderOrg, testNow), events.Sendt, testNow()))
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, 1, ir.Accepted)

	// What /manage/sandbox hands a developer: the base URL and the credential.
	req, err := http.NewRequest(http.MethodGet, l.BaseURL+"/v1/messages/"+m.id, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+l.QueryToken)
	ops := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: l.RootCAs}}}
	res, err := ops.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)
}

package svarut_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/addressing/seed"
	"github.com/efm-go/efm/addressing/svarut"
	"github.com/efm-go/efm/addressing/svarut/svarutsim"
)

func TestMottakerSystemer(t *testing.T) {
	s, err := seed.Default()
	require.NoError(t, err)
	sim, err := svarutsim.New(svarutsim.Options{Seed: s, IntegrasjonID: "id", IntegrasjonPassord: "pw"})
	require.NoError(t, err)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c, err := svarut.New(svarut.Config{BaseURL: srv.URL, IntegrasjonID: "id", IntegrasjonPassord: "pw"})
	require.NoError(t, err)
	ctx := context.Background()

	ms, err := c.MottakerSystemer(ctx, "tok", "910079018")
	require.NoError(t, err)
	require.Len(t, ms, 3)
	assert.Equal(t, 3, ms[0].Niva)
	assert.Equal(t, "Byggesøknad", ms[2].ForsendelseType)

	ms, err = c.MottakerSystemer(ctx, "tok", "910081004")
	require.NoError(t, err)
	assert.Empty(t, ms)

	bad, err := svarut.New(svarut.Config{BaseURL: srv.URL, IntegrasjonID: "id", IntegrasjonPassord: "wrong"})
	require.NoError(t, err)
	_, err = bad.MottakerSystemer(ctx, "tok", "910079018")
	require.ErrorIs(t, err, svarut.ErrUnavailable)
}

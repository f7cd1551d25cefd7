package krr_test

import (
	"context"
	"crypto/x509"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/addressing/internal/simauth"
	"github.com/efm-go/efm/addressing/internal/simcert"
	"github.com/efm-go/efm/addressing/krr"
	"github.com/efm-go/efm/addressing/krr/krrsim"
	"github.com/efm-go/efm/addressing/seed"
)

func startKRR(t *testing.T) (*krrsim.Server, *httptest.Server) {
	t.Helper()
	s, err := seed.Default()
	require.NoError(t, err)
	sim, err := krrsim.New(krrsim.Options{Seed: s})
	require.NoError(t, err)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv
}

func mint(t *testing.T, scopes ...string) string {
	k, err := simcert.Key()
	require.NoError(t, err)
	tok, err := simauth.Mint(k, "910077473", scopes, time.Minute)
	require.NoError(t, err)
	return tok
}

func pids(t *testing.T, ss ...string) []ident.PersonID {
	var out []ident.PersonID
	for _, s := range ss {
		p, err := ident.Policy{AllowSynthetic: true}.ParsePersonID(s)
		require.NoError(t, err)
		out = append(out, p)
	}
	return out
}

func TestPrintCertificate_RetriesAndCaches(t *testing.T) {
	sim, srv := startKRR(t)
	now := time.Now()
	c, err := krr.New(krr.Config{BaseURL: srv.URL, PrintRetryInterval: 5 * time.Millisecond, PrintAttempts: 3, Now: func() time.Time { return now }})
	require.NoError(t, err)
	sim.FailNext("/rest/v2/printSertifikat", 503, 2)
	pc, err := c.PrintCertificate(context.Background())
	require.NoError(t, err, "two failures, third attempt succeeds")
	assert.Equal(t, "984661185", pc.Postkasseleverandoeradresse)
	assert.Equal(t, 3, sim.Requests("GET /rest/v2/printSertifikat"))

	_, err = c.PrintCertificate(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 3, sim.Requests("GET /rest/v2/printSertifikat"), "cached 5 minutes")

	now = now.Add(6 * time.Minute)
	sim.FailNext("/rest/v2/printSertifikat", 503, 3)
	_, err = c.PrintCertificate(context.Background())
	require.ErrorIs(t, err, krr.ErrUnavailable)
}

func TestPersons(t *testing.T) {
	sim, srv := startKRR(t)
	ctx := context.Background()
	roots := x509.NewCertPool()
	roots.AddCert(sim.SigningCertificate())
	c, err := krr.New(krr.Config{BaseURL: srv.URL, Roots: roots})
	require.NoError(t, err)

	full := mint(t, "krr:global/kontaktinformasjon.read", "krr:global/digitalpost.read")
	ps, err := c.Persons(ctx, full, pids(t, "06068700602", "01010510097", "02020610037", "41018510187"))
	require.NoError(t, err)
	require.Len(t, ps, 4)
	assert.True(t, ps[0].HasMailbox())
	assert.Equal(t, "nora.testesen#1A2B", ps[0].DigitalPost.Postkasseadresse)
	assert.NotNil(t, ps[0].Kontaktinformasjon)
	assert.Nil(t, ps[1].Kontaktinformasjon, "KAN_IKKE_VARSLES gets no contact data")
	assert.False(t, ps[1].HasMailbox())
	assert.Equal(t, "AKTIV", ps[2].Status)
	assert.True(t, ps[3].ID.IsDNumber())

	// Old scope names work too; without a digital-post scope there is no mailbox.
	contactOnly := mint(t, "global/kontaktinformasjon.read")
	ps, err = c.Persons(ctx, contactOnly, pids(t, "06068700602"))
	require.NoError(t, err)
	assert.Nil(t, ps[0].DigitalPost)
	assert.Empty(t, ps[0].Sertifikat)
	assert.NotNil(t, ps[0].Kontaktinformasjon)

	ps, err = c.Persons(ctx, full, pids(t, "04040810027"))
	require.NoError(t, err)
	assert.Equal(t, "IKKE_REGISTRERT", ps[0].Status, "unknown numbers come back IKKE_REGISTRERT")

	_, err = c.Persons(ctx, mint(t, "eformidling:dpo"), pids(t, "06068700602"))
	require.ErrorIs(t, err, krr.ErrRejected)
	assert.NotContains(t, err.Error(), "06068700602")

	// A signature from a certificate outside Roots is refused.
	strict, err := krr.New(krr.Config{BaseURL: srv.URL, Roots: x509.NewCertPool()})
	require.NoError(t, err)
	_, err = strict.Persons(ctx, full, pids(t, "06068700602"))
	require.ErrorIs(t, err, krr.ErrBadAnswer)

	many := make([]ident.PersonID, 1001)
	_, err = c.Persons(ctx, full, many)
	require.ErrorIs(t, err, krr.ErrRejected)

	sim.FailNext("/rest/v1/personer", 500, 1)
	_, err = c.Persons(ctx, full, pids(t, "06068700602"))
	require.ErrorIs(t, err, krr.ErrUnavailable)
}

package simauth

import (
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/packaging/jws"
)

func req(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return r
}

func TestVerifier(t *testing.T) {
	k1, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	k2, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	var current atomic.Pointer[rsa.PrivateKey]
	current.Store(k1)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := jws.MarshalJWKSet(jws.JWK{KeyID: "k", Key: &current.Load().PublicKey})
		_, _ = w.Write(b)
	}))
	t.Cleanup(jwks.Close)
	v := &Verifier{JWKSURL: jwks.URL}

	tok, err := Mint(k1, "910077473", []string{"eformidling:dpo", "eformidling:dpi"}, time.Minute)
	require.NoError(t, err)
	got, err := v.Verify(req(tok))
	require.NoError(t, err)
	assert.Equal(t, "910077473", got.ConsumerOrg)
	assert.True(t, got.HasAny("eformidling:dpi"))
	assert.False(t, got.HasAny("eformidling:dpe"))
	assert.Equal(t, tok, got.Raw)

	// Rotation at Maskinporten: a token signed with the new key makes the verifier refetch.
	current.Store(k2)
	tok2, err := Mint(k2, "910077473", nil, time.Minute)
	require.NoError(t, err)
	_, err = v.Verify(req(tok2))
	require.NoError(t, err)
	_, err = v.Verify(req(tok))
	require.ErrorIs(t, err, ErrUnauthorized, "the old key is gone")

	for name, r := range map[string]*http.Request{"no token": req(""), "garbage": req("a.b.c")} {
		_, err := v.Verify(r)
		assert.ErrorIs(t, err, ErrUnauthorized, name)
	}
	expired, err := Mint(k2, "910077473", nil, -time.Minute)
	require.NoError(t, err)
	_, err = v.Verify(req(expired))
	assert.ErrorIs(t, err, ErrUnauthorized)

	noConsumer, err := jws.Sign(k2, []byte(`{"scope":"eformidling:dpo"}`), nil)
	require.NoError(t, err)
	_, err = (&Verifier{Keys: []*rsa.PublicKey{&k2.PublicKey}}).Verify(req(string(noConsumer)))
	assert.ErrorIs(t, err, ErrUnauthorized)

	// Without keys the claims are read unverified (a simulator running alone).
	got, err = (&Verifier{}).Verify(req(tok))
	require.NoError(t, err)
	assert.Equal(t, "910077473", got.ConsumerOrg)
}

package jws

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	keysOnce sync.Once
	keyA     *rsa.PrivateKey
	keyB     *rsa.PrivateKey
)

func testKeys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if keyA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if keyB, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return keyA, keyB
}

func TestSignVerify(t *testing.T) {
	a, b := testKeys(t)
	payload := []byte(`{"infoRecord":{"identifier":"910075918"}}`)
	tok, err := Sign(a, payload, map[string]any{"kid": "k1", "alg": "none"})
	require.NoError(t, err)
	assert.Equal(t, 2, strings.Count(string(tok), "."))

	got, h, err := Verify(tok, &b.PublicKey, &a.PublicKey)
	require.NoError(t, err)
	assert.Equal(t, payload, got)
	assert.Equal(t, "RS256", h["alg"], "alg is forced to RS256")
	assert.Equal(t, "k1", h["kid"])

	_, _, err = Verify(tok, &b.PublicKey)
	assert.ErrorIs(t, err, ErrSignature)
	_, _, err = Verify(tok)
	assert.ErrorIs(t, err, ErrNoKey)
}

func TestVerify_Refuses(t *testing.T) {
	a, _ := testKeys(t)
	tok, err := Sign(a, []byte("hello"), nil)
	require.NoError(t, err)
	parts := strings.Split(string(tok), ".")
	enc := base64.RawURLEncoding.EncodeToString

	tests := []struct {
		name, token string
		want        error
	}{
		{"alg none", enc([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".", ErrAlgorithm},
		{"alg HS256", enc([]byte(`{"alg":"HS256"}`)) + "." + parts[1] + "." + parts[2], ErrAlgorithm},
		{"crit", enc([]byte(`{"alg":"RS256","crit":["exp"]}`)) + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"payload swapped", parts[0] + "." + enc([]byte("other")) + "." + parts[2], ErrSignature},
		{"two parts", parts[0] + "." + parts[1], ErrMalformed},
		{"four parts", string(tok) + ".x", ErrMalformed},
		{"header not json", enc([]byte(`[1]`)) + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"bad base64", parts[0] + ".%%%." + parts[2], ErrMalformed},
		{"empty", "", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Verify([]byte(tt.token), &a.PublicKey)
			assert.ErrorIs(t, err, tt.want)
		})
	}
}

func TestX5C(t *testing.T) {
	a, _ := testKeys(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "krr"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &a.PublicKey, a)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)

	tok, err := Sign(a, []byte("{}"), map[string]any{"x5c": X5CHeader(cert)})
	require.NoError(t, err)
	h, err := Header(tok)
	require.NoError(t, err)
	certs, err := X5C(h)
	require.NoError(t, err)
	require.Len(t, certs, 1)
	pub, ok := certs[0].PublicKey.(*rsa.PublicKey)
	require.True(t, ok)
	_, _, err = Verify(tok, pub)
	assert.NoError(t, err)

	_, err = X5C(map[string]any{"alg": "RS256"})
	assert.ErrorIs(t, err, ErrMalformed)
}

func TestJWKSet(t *testing.T) {
	a, b := testKeys(t)
	set, err := MarshalJWKSet(JWK{KeyID: "a", Key: &a.PublicKey, Use: "sig"}, JWK{KeyID: Thumbprint(&b.PublicKey), Key: &b.PublicKey})
	require.NoError(t, err)
	keys, err := ParseJWKSet(set)
	require.NoError(t, err)
	require.Len(t, keys, 2)
	assert.Equal(t, "a", keys[0].KeyID)
	assert.Equal(t, "sig", keys[0].Use)
	assert.True(t, a.PublicKey.Equal(keys[0].Key))
	assert.True(t, b.PublicKey.Equal(keys[1].Key))

	keys, err = ParseJWKSet([]byte(`{"keys":[{"kty":"EC","crv":"P-256"},` + string(set[len(`{"keys":[`):])))
	require.NoError(t, err, "non-RSA keys are skipped")
	assert.Len(t, keys, 2)

	_, err = ParseJWKSet([]byte(`{"keys":[]}`))
	assert.ErrorIs(t, err, ErrNoKey)
	_, err = ParseJWKSet([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	assert.ErrorIs(t, err, ErrMalformed, "a 17-bit modulus is refused")
}

// RFC 7638 §3.1 example key and thumbprint.
func TestThumbprint_RFC7638(t *testing.T) {
	n, err := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	require.NoError(t, err)
	k := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	assert.Equal(t, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", Thumbprint(k))
}

func BenchmarkVerify(b *testing.B) {
	a, _ := testKeys(b)
	tok, err := Sign(a, make([]byte, 2048), map[string]any{"kid": "k"})
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Verify(tok, &a.PublicKey); err != nil {
			b.Fatal(err)
		}
	}
}

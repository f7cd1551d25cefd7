package sr_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/addressing/internal/simauth"
	"github.com/efm-go/efm/addressing/internal/simcert"
	"github.com/efm-go/efm/addressing/process"
	"github.com/efm-go/efm/addressing/regsim"
	"github.com/efm-go/efm/addressing/seed"
	"github.com/efm-go/efm/addressing/sr"
	"github.com/efm-go/efm/addressing/sr/srsim"
)

var allScopes = []string{"eformidling:dpo", "eformidling:dpe", "eformidling:dpi", "global/kontaktinformasjon.read", "global/sikkerdigitalpost.read"}

func start(t *testing.T) (*regsim.Set, *seed.Seed) {
	t.Helper()
	s, err := seed.Default()
	require.NoError(t, err)
	certs := map[string][]byte{}
	for _, org := range s.Organisations() {
		p, _, err := simcert.SelfSigned(org, org)
		require.NoError(t, err)
		certs[org] = p
	}
	set, err := regsim.Start(regsim.Options{Seed: s, OrgCertificates: certs})
	require.NoError(t, err)
	t.Cleanup(set.Close)
	return set, s
}

func token(org string, scopes ...string) sr.TokenSource {
	return func(context.Context) (string, error) {
		k, err := simcert.Key()
		if err != nil {
			return "", err
		}
		return simauth.Mint(k, org, scopes, time.Minute)
	}
}

func id(t *testing.T, s string) ident.ID {
	i, err := ident.ParseID(s)
	require.NoError(t, err)
	return i
}

func TestClient_SignedAnswers(t *testing.T) {
	set, _ := start(t)
	c, err := sr.New(sr.Config{BaseURL: set.SRURL, Token: token("910077473", allScopes...)})
	require.NoError(t, err)
	ctx := context.Background()

	a, err := c.IdentifierProcess(ctx, id(t, "910075918"), process.Administrasjon, sr.Query{ConversationID: "c0a80121-7ac0-11d1-898c-00c04fd8d5cd"})
	require.NoError(t, err)
	require.Len(t, a.ServiceRecords, 1)
	rec := a.ServiceRecords[0]
	assert.Equal(t, "DPO", rec.Service.Identifier)
	assert.Equal(t, "4192", rec.Service.ServiceCode)
	assert.Equal(t, "270815", rec.Service.ServiceEditionCode)
	assert.Equal(t, "eformidling-dpo-meldingsutveksling", rec.Service.Resource)
	cert, err := rec.Certificate()
	require.NoError(t, err)
	assert.Equal(t, "910075918", cert.Subject.SerialNumber)
	assert.Equal(t, "BIRISTRAND OG TJØTTA", a.InfoRecord.OrganizationName)
	assert.Equal(t, "Postboks 1337", a.InfoRecord.Postadresse.Adresse)

	// The wrong key: refused as a failure, never as "not found".
	set.SR.BadSignatureNext(1)
	_, err = c.Identifier(ctx, id(t, "910075918"), sr.Query{})
	require.ErrorIs(t, err, sr.ErrBadSignature)
	assert.NotErrorIs(t, err, sr.ErrNotFound)
	_, err = c.Identifier(ctx, id(t, "910075918"), sr.Query{})
	require.NoError(t, err, "the next answer is signed correctly again")

	ir, err := c.Info(ctx, id(t, "910079018"))
	require.NoError(t, err)
	assert.Equal(t, "SVARVIK KOMMUNE", ir.OrganizationName)
	assert.Equal(t, "KOMM", ir.EntityType.Name)
}

// TestClient_SignatureDowngrade: an unsigned answer when a signed one was asked for is refused.
func TestClient_SignatureDowngrade(t *testing.T) {
	set, _ := start(t)
	var strip atomic.Bool
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strip.Load() {
			r.Header.Set("Accept", "application/json")
		}
		set.SR.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	c, err := sr.New(sr.Config{BaseURL: proxy.URL, Token: token("910077473", allScopes...)})
	require.NoError(t, err)
	strip.Store(true)
	_, err = c.Identifier(context.Background(), id(t, "910075918"), sr.Query{})
	require.ErrorIs(t, err, sr.ErrBadSignature)

	plain, err := sr.New(sr.Config{BaseURL: proxy.URL, Token: token("910077473", allScopes...), DisableSigning: true})
	require.NoError(t, err)
	_, err = plain.Identifier(context.Background(), id(t, "910075918"), sr.Query{})
	require.NoError(t, err, "with difi.move.sign.enable=false plain JSON is expected")
}

// TestClient_KeyRotation: an answer signed with a new key (new kid) makes the client refetch /jwk.
func TestClient_KeyRotation(t *testing.T) {
	set, _ := start(t)
	newKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	_, cert, err := simcert.SelfSigned("SR rotated", "")
	require.NoError(t, err)
	rotated, err := srsim.New(srsim.Options{BrregURL: set.BrregURL, ELMAURL: set.ELMAURL, KRRURL: set.KRRURL,
		FolkeregURL: set.FolkeregURL, SvarUtURL: set.SvarUtURL, SigningKey: newKey, SigningCertificate: cert})
	require.NoError(t, err)
	var current atomic.Pointer[http.Handler]
	var h http.Handler = set.SR
	current.Store(&h)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*current.Load()).ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)

	c, err := sr.New(sr.Config{BaseURL: srv.URL, Token: token("910077473", allScopes...)})
	require.NoError(t, err)
	_, err = c.Identifier(context.Background(), id(t, "910081004"), sr.Query{})
	require.NoError(t, err)
	var h2 http.Handler = rotated
	current.Store(&h2)
	_, err = c.Identifier(context.Background(), id(t, "910081004"), sr.Query{})
	require.NoError(t, err, "the rotated key is fetched from /jwk")
	assert.Equal(t, 1, rotated.Requests("GET /jwk"))
}

func TestClient_Errors(t *testing.T) {
	set, _ := start(t)
	ctx := context.Background()
	c, err := sr.New(sr.Config{BaseURL: set.SRURL, Token: token("910077473", allScopes...)})
	require.NoError(t, err)

	_, err = c.Identifier(ctx, id(t, "910087002"), sr.Query{})
	var se *sr.Error
	require.ErrorAs(t, err, &se)
	assert.ErrorIs(t, err, sr.ErrNotFound)
	assert.Equal(t, "Entity with identifier '910087002' not found.", se.Description)

	_, err = c.IdentifierProcess(ctx, id(t, "910080008"), process.Administrasjon, sr.Query{SecurityLevel: 4})
	require.ErrorIs(t, err, sr.ErrBadRequest)
	assert.Contains(t, err.Error(), "can not receive messages with security level '4'")

	_, err = c.IdentifierProcess(ctx, id(t, "06068700602"), process.Administrasjon, sr.Query{})
	require.ErrorIs(t, err, sr.ErrNotFound)
	assert.NotContains(t, err.Error(), "06068700602")

	noDPI, err := sr.New(sr.Config{BaseURL: set.SRURL, Token: token("910077473", "eformidling:dpo")})
	require.NoError(t, err)
	_, err = noDPI.Identifier(ctx, id(t, "06068700602"), sr.Query{})
	require.ErrorIs(t, err, sr.ErrUnauthorized, "citizen lookups need the DPI scope")

	set.SR.FailNext("/identifier/", 502, 1)
	_, err = c.Identifier(ctx, id(t, "910075918"), sr.Query{})
	require.ErrorIs(t, err, sr.ErrUnavailable)

	slow, err := sr.New(sr.Config{BaseURL: set.SRURL, Token: token("910077473", allScopes...), Timeout: 100 * time.Millisecond})
	require.NoError(t, err)
	set.SR.SetDelay(time.Second)
	_, err = slow.Identifier(ctx, id(t, "06068700602"), sr.Query{})
	require.ErrorIs(t, err, sr.ErrUnavailable)
	assert.NotContains(t, err.Error(), "06068700602", "the URL carries the number; errors must not")
	set.SR.SetDelay(0)

	_, err = sr.New(sr.Config{BaseURL: "ftp://x", Token: token("1")})
	assert.Error(t, err)
	_, err = sr.New(sr.Config{BaseURL: set.SRURL})
	assert.Error(t, err, "Token must not be nil")
}

func TestClient_VirkSertAndSAS(t *testing.T) {
	set, _ := start(t)
	ctx := context.Background()
	now := time.Now()
	c, err := sr.New(sr.Config{BaseURL: set.SRURL, Token: token("910077473", allScopes...), Now: func() time.Time { return now }})
	require.NoError(t, err)
	cert, pemBytes, err := c.VirkSert(ctx, "910077473")
	require.NoError(t, err)
	assert.Equal(t, "910077473", cert.Subject.SerialNumber)
	assert.True(t, strings.HasPrefix(string(pemBytes), "-----BEGIN CERTIFICATE-----"))
	_, _, err = c.VirkSert(ctx, "910077473")
	require.NoError(t, err)
	assert.Equal(t, 1, set.SR.Requests("GET /virksert/{orgnr}"), "cached 5 minutes")
	now = now.Add(5*time.Minute + time.Second)
	_, _, err = c.VirkSert(ctx, "910077473")
	require.NoError(t, err)
	assert.Equal(t, 2, set.SR.Requests("GET /virksert/{orgnr}"))

	_, _, err = c.VirkSert(ctx, "910078003")
	require.ErrorIs(t, err, sr.ErrNotFound)

	sas, err := c.SASToken(ctx)
	require.NoError(t, err)
	assert.Equal(t, "sandbox-sas-key", sas)
	_, err = c.SASToken(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, set.SR.Requests("GET /sastoken"), "cached a day")
}

func TestArmourPEM(t *testing.T) {
	p, c, err := simcert.SelfSigned("x", "")
	require.NoError(t, err)
	body := strings.TrimSpace(string(p))
	body = strings.TrimPrefix(body, "-----BEGIN CERTIFICATE-----")
	body = strings.TrimSuffix(body, "-----END CERTIFICATE-----")
	got, err := sr.ParsePEM([]byte(strings.ReplaceAll(body, "\n", "")))
	require.NoError(t, err, "bare base64 without armour is wrapped")
	assert.True(t, got.Equal(c))
}

func TestIdentifierMasks(t *testing.T) {
	rec := sr.ServiceRecord{OrganisationNumber: "06068700602"}
	for _, s := range []string{rec.OrganisationNumber.String(), fmtAll(rec), fmtAll(&rec)} {
		assert.NotContains(t, s, "06068700602")
	}
	assert.Equal(t, "910075918", sr.Identifier("910075918").String(), "organisation numbers print in full")
	assert.Equal(t, "06068700602", rec.OrganisationNumber.Reveal())
}

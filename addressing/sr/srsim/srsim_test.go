package srsim_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/addressing/internal/simauth"
	"github.com/efm-go/efm/addressing/internal/simcert"
	"github.com/efm-go/efm/addressing/regsim"
	"github.com/efm-go/efm/addressing/seed"
	"github.com/efm-go/efm/packaging/jws"
)

func start(t *testing.T, opts regsim.Options) *regsim.Set {
	t.Helper()
	s, err := seed.Default()
	require.NoError(t, err)
	opts.Seed = s
	set, err := regsim.Start(opts)
	require.NoError(t, err)
	t.Cleanup(set.Close)
	return set
}

func do(t *testing.T, method, url, bearer, accept string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	require.NoError(t, err)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, b
}

func TestAuthentication(t *testing.T) {
	mp, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	set := start(t, regsim.Options{MaskinportenKeys: []*rsa.PublicKey{&mp.PublicKey}})
	good, err := simauth.Mint(mp, "910077473", []string{"eformidling:dpo"}, time.Minute)
	require.NoError(t, err)
	other, err := simcert.Key()
	require.NoError(t, err)
	forged, err := simauth.Mint(other, "910077473", []string{"eformidling:dpo"}, time.Minute)
	require.NoError(t, err)
	expired, err := simauth.Mint(mp, "910077473", []string{"eformidling:dpo"}, -time.Hour)
	require.NoError(t, err)

	url := set.SRURL + "/identifier/910081004"
	for name, tok := range map[string]string{"none": "", "forged": forged, "expired": expired} {
		st, _, body := do(t, "GET", url, tok, "application/json", nil)
		assert.Equal(t, 401, st, name)
		assert.Contains(t, string(body), `"error_code"`, name)
	}
	st, h, body := do(t, "GET", url, good, "application/json", nil)
	require.Equal(t, 200, st)
	assert.Equal(t, "application/json", h.Get("Content-Type"))
	assert.True(t, json.Valid(body))

	// KRR behind the SR gets the forwarded token: without KRR scopes the citizen is not found.
	dpiOnly, err := simauth.Mint(mp, "910077473", []string{"eformidling:dpi"}, time.Minute)
	require.NoError(t, err)
	st, _, body = do(t, "GET", set.SRURL+"/identifier/06068700602", dpiOnly, "application/json", nil)
	assert.Equal(t, 404, st)
	assert.JSONEq(t, `{"message":"No service record found for citizen"}`, string(body), "the number is left out")
	assert.Equal(t, 1, set.KRR.Requests("POST /rest/v1/personer"))
}

func TestSignedAnswersAndControl(t *testing.T) {
	set := start(t, regsim.Options{})
	k, err := simcert.Key()
	require.NoError(t, err)
	tok, err := simauth.Mint(k, "910077473", []string{"eformidling:dpo", "eformidling:dpi", "global/kontaktinformasjon.read",
		"global/sikkerdigitalpost.read", "eformidling:dpe"}, time.Minute)
	require.NoError(t, err)

	_, _, jwk := do(t, "GET", set.SRURL+"/jwk", "", "", nil)
	keys, err := jws.ParseJWKSet(jwk)
	require.NoError(t, err)

	st, h, body := do(t, "GET", set.SRURL+"/identifier/910081004/process/urn:no:difi:profile:arkivmelding:administrasjon:ver1.0", tok, "application/jose, application/json", nil)
	require.Equal(t, 200, st)
	assert.Equal(t, "application/jose", h.Get("Content-Type"))
	payload, hdr, err := jws.Verify(body, keys[0].Key)
	require.NoError(t, err)
	assert.Equal(t, keys[0].KeyID, hdr["kid"])
	_, err = jws.X5C(hdr)
	require.NoError(t, err)
	assert.Contains(t, string(payload), `"identifier":"DPV"`)

	st, _, _ = do(t, "POST", set.SRURL+"/_sim/badsignature", "", "", []byte(`{"times":1}`))
	require.Equal(t, 204, st)
	_, _, body = do(t, "GET", set.SRURL+"/identifier/910081004", tok, "application/jose", nil)
	_, _, err = jws.Verify(body, keys[0].Key)
	assert.ErrorIs(t, err, jws.ErrSignature)

	_, _, body = do(t, "GET", set.SRURL+"/sastoken", tok, "", nil)
	payload, _, err = jws.Verify(body, keys[0].Key)
	require.NoError(t, err, "sastoken is always signed")
	assert.Equal(t, "sandbox-sas-key", string(payload))

	// print=false: no Folkeregister lookup and no print record.
	before := set.Folkereg.Requests("")
	_, _, body = do(t, "GET", set.SRURL+"/identifier/27126900142/process/urn:no:difi:profile:digitalpost:info:ver1.0?print=false", tok, "application/json", nil)
	assert.NotContains(t, string(body), "fysisk::print")
	assert.Contains(t, string(body), "digital_dpv")
	assert.Equal(t, before, set.Folkereg.Requests(""))

	st, _, _ = do(t, "GET", set.SRURL+"/identifier/910081004?securityLevel=x", tok, "application/json", nil)
	assert.Equal(t, 400, st)

	st, _, body = do(t, "GET", set.SRURL+"/identifier/910075918/process/urn:no:such", tok, "application/json", nil)
	assert.Equal(t, 404, st)
	assert.Contains(t, string(body), "Process urn:no:such not found for receiver 910075918")

	st, _, body = do(t, "GET", set.SRURL+"/info/06068700602", tok, "application/json", nil)
	assert.Equal(t, 200, st)
	assert.Contains(t, string(body), `"citizen"`)

	st, _, _ = do(t, "GET", set.SRURL+"/identifier/her-id:8143154", tok, "application/json", nil)
	assert.Equal(t, 404, st, "DPH needs X-Enable-Beta-Features")
	assert.True(t, strings.Contains(string(jwk), `"RS256"`))
}

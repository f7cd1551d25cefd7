package altinnsim_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/efm-go/efm/transport/altinn/altinnsim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func exchange(t *testing.T, url, token string) (int, string) {
	req, _ := http.NewRequest(http.MethodGet, url+altinnsim.ExchangePath, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestSim_Exchange(t *testing.T) {
	iss, err := altinnsim.NewIssuer()
	require.NoError(t, err)
	now := time.Now()
	sim, err := altinnsim.New(altinnsim.Options{MaskinportenKeys: iss.Keys(),
		SystemUsers: map[string]string{"0192:910077473": "su-a"}, Lifetime: time.Minute,
		Now: func() time.Time { return now }})
	require.NoError(t, err)
	srv := httptest.NewServer(sim)
	defer srv.Close()

	status, _ := exchange(t, srv.URL, "")
	assert.Equal(t, http.StatusUnauthorized, status, "no token")

	mp, err := iss.Token(altinnsim.Grant{ConsumerOrg: "910077473", Scopes: []string{"altinn:broker.read"},
		SystemUserOrg: "910077473", SystemUserName: "su-b"})
	require.NoError(t, err)
	status, _ = exchange(t, srv.URL, mp)
	assert.Equal(t, http.StatusUnauthorized, status, "system user not approved")

	mp, err = iss.Token(altinnsim.Grant{ConsumerOrg: "910077473", Scopes: []string{"altinn:broker.read"},
		SystemUserOrg: "910077473", SystemUserName: "su-a"})
	require.NoError(t, err)
	status, tok := exchange(t, srv.URL, mp)
	require.Equal(t, http.StatusOK, status)
	c, err := sim.Verify(tok)
	require.NoError(t, err)
	assert.Equal(t, "910077473", c.SystemUserOrg)
	assert.Equal(t, "su-a", c.SystemUserName)
	assert.True(t, c.HasScope("altinn:broker.read"))
	assert.False(t, c.HasScope("altinn:broker.write"))

	_, err = sim.Verify(mp)
	assert.Error(t, err, "a Maskinporten token is not an Altinn token")
	_, err = sim.Verify(tok[:len(tok)-4] + "AAAA")
	assert.Error(t, err, "tampered signature")
	again, err := sim.Verify(tok)
	require.NoError(t, err)
	assert.Equal(t, c, again, "a token verified before reads the same")

	now = now.Add(3 * time.Minute)
	_, err = sim.Verify(tok)
	assert.Error(t, err, "expired after its lifetime, though verified before")
	status, _ = exchange(t, srv.URL, mp)
	assert.Equal(t, http.StatusUnauthorized, status, "an expired Maskinporten token is refused")
}

func TestSim_JWKS(t *testing.T) {
	iss, err := altinnsim.NewIssuer()
	require.NoError(t, err)
	sim, err := altinnsim.New(altinnsim.Options{MaskinportenKeys: iss.Keys()})
	require.NoError(t, err)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/authentication/api/v1/openid/.well-known/openid-configuration/jwks")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	assert.Contains(t, string(b), `"kty":"RSA"`)
	_, err = altinnsim.New(altinnsim.Options{})
	assert.Error(t, err, "a trust anchor is required")
}

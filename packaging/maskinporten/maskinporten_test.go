package maskinporten_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/efm-go/efm/packaging/jws"
	"github.com/efm-go/efm/packaging/maskinporten"
	"github.com/efm-go/efm/packaging/maskinporten/maskinportensim"
	"github.com/efm-go/efm/packaging/testpki"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	orgA = "910075918"
	orgB = "910077473"
)

var pki, otherPKI *testpki.PKI

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "maskinporten-test-pki")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pki, err = testpki.Ensure(dir+"/a", []string{orgA, orgB})
	if err == nil {
		otherPKI, err = testpki.Ensure(dir+"/b", []string{orgA})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// clock is the one fake clock the client and the simulator share.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type env struct {
	sim   *maskinportensim.Server
	srv   *httptest.Server
	clock *clock
}

func newEnv(t *testing.T, mutate func(*maskinportensim.Options)) *env {
	t.Helper()
	clk := &clock{t: time.Now()}
	opts := maskinportensim.Options{
		Roots: pki.Pool(),
		Clients: []maskinportensim.Client{
			{ID: "MOVE_IP_" + orgA, OrgNumber: orgA, Scopes: []string{"move/dpo.read", "digitalpostinnbygger:send", "altinn:broker.write"}},
			{ID: "MOVE_IP_" + orgB, OrgNumber: orgB, Scopes: []string{"move/dpo.read"}},
		},
		Delegations: []maskinportensim.Delegation{{Supplier: orgA, Consumer: orgB}},
		SystemUsers: []string{orgA},
		Now:         clk.Now,
	}
	if mutate != nil {
		mutate(&opts)
	}
	sim, err := maskinportensim.New(opts)
	require.NoError(t, err)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return &env{sim: sim, srv: srv, clock: clk}
}

func (e *env) client(t *testing.T, id *testpki.Identity, mutate func(*maskinporten.Config)) *maskinporten.Client {
	t.Helper()
	cfg := maskinporten.Config{
		TokenURL: e.srv.URL + "/token",
		Audience: e.srv.URL + "/",
		ClientID: "MOVE_IP_" + id.OrgNumber,
		Key:      id.Key,
		Cert:     id.Cert,
		Now:      e.clock.Now,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := maskinporten.New(cfg)
	require.NoError(t, err)
	return c
}

func claims(t *testing.T, e *env, token string) map[string]any {
	t.Helper()
	payload, _, err := jws.Verify([]byte(token), e.sim.PublicKey())
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(payload, &m))
	return m
}

func TestClient_TokenAndCache(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t, pki.Orgs[orgA], nil)
	ctx := context.Background()

	tok, err := c.Token(ctx, maskinporten.Request{Scopes: []string{"move/dpo.read"}})
	require.NoError(t, err)
	assert.Equal(t, "Bearer", tok.TokenType)
	assert.Equal(t, 120, tok.ExpiresIn)
	m := claims(t, e, tok.AccessToken)
	assert.Equal(t, "move/dpo.read", m["scope"])
	assert.Equal(t, "MOVE_IP_"+orgA, m["client_id"])
	assert.Equal(t, map[string]any{"authority": "iso6523-actorid-upis", "ID": "0192:" + orgA}, m["consumer"])
	assert.Nil(t, m["supplier"])

	again, err := c.Token(ctx, maskinporten.Request{Scopes: []string{"move/dpo.read", "move/dpo.read"}})
	require.NoError(t, err)
	assert.Equal(t, tok.AccessToken, again.AccessToken, "same scopes: cached")
	assert.Equal(t, 1, e.sim.Requests("POST /token"))

	_, err = c.Token(ctx, maskinporten.Request{Scopes: []string{"digitalpostinnbygger:send"}})
	require.NoError(t, err)
	assert.Equal(t, 2, e.sim.Requests("POST /token"), "other scopes: another key")

	e.clock.Add(109 * time.Second)
	_, err = c.Token(ctx, maskinporten.Request{Scopes: []string{"move/dpo.read"}})
	require.NoError(t, err)
	assert.Equal(t, 2, e.sim.Requests("POST /token"), "still inside expires_in - 10 s")
	e.clock.Add(2 * time.Second)
	fresh, err := c.Token(ctx, maskinporten.Request{Scopes: []string{"move/dpo.read"}})
	require.NoError(t, err)
	assert.Equal(t, 3, e.sim.Requests("POST /token"), "past expires_in - 10 s: refetched")
	assert.NotEqual(t, tok.AccessToken, fresh.AccessToken)
}

func TestClient_ConcurrentCallersShareOneRequest(t *testing.T) {
	e := newEnv(t, nil)
	e.sim.SetDelay(50 * time.Millisecond)
	c := e.client(t, pki.Orgs[orgA], nil)
	var wg sync.WaitGroup
	tokens := make([]string, 8)
	for i := range tokens {
		wg.Go(func() {
			tok, err := c.AccessToken(context.Background(), "move/dpo.read")
			assert.NoError(t, err)
			tokens[i] = tok
		})
	}
	wg.Wait()
	assert.Equal(t, 1, e.sim.Requests("POST /token"))
	for _, tok := range tokens {
		assert.Equal(t, tokens[0], tok)
	}
}

func TestClient_ConsumerOrgAndSystemUser(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t, pki.Orgs[orgA], nil)
	authz := json.RawMessage(`[{"type":"urn:altinn:systemuser","systemuser_org":{"authority":"iso6523-actorid-upis","ID":"0192:` + orgA + `"}}]`)
	tok, err := c.Source(orgB, authz).Token(context.Background(), "digitalpostinnbygger:send")
	require.NoError(t, err)
	m := claims(t, e, tok)
	assert.Equal(t, map[string]any{"authority": "iso6523-actorid-upis", "ID": "0192:" + orgB}, m["consumer"])
	assert.Equal(t, map[string]any{"authority": "iso6523-actorid-upis", "ID": "0192:" + orgA}, m["supplier"])
	assert.NotNil(t, m["authorization_details"])

	// The same details with other spacing hit the cache.
	spaced := json.RawMessage(strings.ReplaceAll(string(authz), ",", ", "))
	_, err = c.Source(orgB, spaced).Token(context.Background(), "digitalpostinnbygger:send")
	require.NoError(t, err)
	assert.Equal(t, 1, e.sim.Requests("POST /token"))
}

func TestClient_JWKMode(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	e := newEnv(t, func(o *maskinportensim.Options) {
		o.Clients = append(o.Clients, maskinportensim.Client{ID: "jwk-client", OrgNumber: orgB, Scopes: []string{"move/dpo.read"},
			Keys: map[string]*rsa.PublicKey{"k1": &key.PublicKey}})
	})
	c, err := maskinporten.New(maskinporten.Config{TokenURL: e.srv.URL + "/token", Audience: e.srv.URL + "/",
		ClientID: "jwk-client", Key: key, KeyID: "k1", Now: e.clock.Now})
	require.NoError(t, err)
	tok, err := c.AccessToken(context.Background(), "move/dpo.read")
	require.NoError(t, err)
	assert.Equal(t, "jwk-client", claims(t, e, tok)["client_id"])
}

func TestClient_Refusals(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		id      func() *testpki.Identity
		cfg     func(*maskinporten.Config)
		req     maskinporten.Request
		clock   time.Duration // client clock offset
		wantErr error
		wantMsg string
	}{
		{"certificate from another CA", func() *testpki.Identity { return otherPKI.Orgs[orgA] }, nil,
			maskinporten.Request{Scopes: []string{"move/dpo.read"}}, 0, maskinporten.ErrInvalidClient, "not trusted"},
		{"certificate of another org", func() *testpki.Identity { return pki.Orgs[orgB] },
			func(c *maskinporten.Config) { c.ClientID = "MOVE_IP_" + orgA },
			maskinporten.Request{Scopes: []string{"move/dpo.read"}}, 0, maskinporten.ErrInvalidClient, "organisation"},
		{"unknown client", func() *testpki.Identity { return pki.Orgs[orgA] },
			func(c *maskinporten.Config) { c.ClientID = "nobody" },
			maskinporten.Request{Scopes: []string{"move/dpo.read"}}, 0, maskinporten.ErrInvalidClient, "unknown client"},
		{"wrong audience", func() *testpki.Identity { return pki.Orgs[orgA] },
			func(c *maskinporten.Config) { c.Audience = "https://maskinporten.no/" },
			maskinporten.Request{Scopes: []string{"move/dpo.read"}}, 0, maskinporten.ErrInvalidGrant, "aud"},
		{"scope not granted", func() *testpki.Identity { return pki.Orgs[orgB] }, nil,
			maskinporten.Request{Scopes: []string{"altinn:broker.write"}}, 0, maskinporten.ErrInvalidScope, "altinn:broker.write"},
		{"no delegation", func() *testpki.Identity { return pki.Orgs[orgB] }, nil,
			maskinporten.Request{Scopes: []string{"move/dpo.read"}, ConsumerOrg: orgA}, 0, maskinporten.ErrInvalidGrant, "delegation"},
		{"no system user", func() *testpki.Identity { return pki.Orgs[orgB] }, nil,
			maskinporten.Request{Scopes: []string{"move/dpo.read"}, AuthorizationDetails: json.RawMessage(`[{"type":"urn:altinn:systemuser"}]`)}, 0, maskinporten.ErrInvalidGrant, "system user"},
		{"grant expired (client clock behind)", func() *testpki.Identity { return pki.Orgs[orgA] }, nil,
			maskinporten.Request{Scopes: []string{"move/dpo.read"}}, -5 * time.Minute, maskinporten.ErrInvalidGrant, "expired"},
		{"grant from the future", func() *testpki.Identity { return pki.Orgs[orgA] }, nil,
			maskinporten.Request{Scopes: []string{"move/dpo.read"}}, 5 * time.Minute, maskinporten.ErrInvalidGrant, "future"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			c := e.client(t, tt.id(), func(c *maskinporten.Config) {
				if tt.cfg != nil {
					tt.cfg(c)
				}
				c.Now = func() time.Time { return e.clock.Now().Add(tt.clock) }
			})
			_, err := c.Token(ctx, tt.req)
			require.ErrorIs(t, err, tt.wantErr)
			assert.ErrorContains(t, err, tt.wantMsg)
			assert.NotErrorIs(t, err, maskinporten.ErrUnavailable)
		})
	}
}

// post sends a raw grant, for checks the client never trips by itself.
func post(t *testing.T, e *env, grant string) (int, string) {
	resp, err := http.PostForm(e.srv.URL+"/token", url.Values{"grant_type": {maskinporten.GrantType}, "assertion": {grant}})
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestSim_RefusesReplayAndLongGrants(t *testing.T) {
	e := newEnv(t, nil)
	id := pki.Orgs[orgA]
	c := e.client(t, id, nil)
	grant, err := c.Grant(maskinporten.Request{Scopes: []string{"move/dpo.read"}})
	require.NoError(t, err)
	status, _ := post(t, e, grant)
	assert.Equal(t, http.StatusOK, status)
	status, body := post(t, e, grant)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body, "jti already used")

	now := e.clock.Now().Unix()
	payload, _ := json.Marshal(map[string]any{"aud": e.srv.URL + "/", "iss": "MOVE_IP_" + orgA, "scope": "move/dpo.read",
		"jti": "x", "iat": now, "exp": now + 600})
	long, err := jws.Sign(id.Key, payload, map[string]any{"x5c": jws.X5CHeader(id.Cert)})
	require.NoError(t, err)
	status, body = post(t, e, string(long))
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body, "at most 120 seconds")

	// Signed by another key than the x5c certificate's.
	forged, err := jws.Sign(pki.Orgs[orgB].Key, payload, map[string]any{"x5c": jws.X5CHeader(id.Cert)})
	require.NoError(t, err)
	status, body = post(t, e, string(forged))
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body, "invalid_grant")
}

func TestSim_FaultsAndControlAPI(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t, pki.Orgs[orgA], nil)
	ctx := context.Background()

	resp, err := http.Post(e.srv.URL+"/_sim/faults", "application/json", strings.NewReader(`{"path":"/token","status":503,"times":1}`))
	require.NoError(t, err)
	resp.Body.Close()
	_, err = c.AccessToken(ctx, "move/dpo.read")
	assert.ErrorIs(t, err, maskinporten.ErrUnavailable)

	e.sim.AddFault(maskinportensim.Fault{Path: "/token", Malformed: true, Times: 1})
	_, err = c.AccessToken(ctx, "move/dpo.read")
	assert.ErrorIs(t, err, maskinporten.ErrUnavailable)

	e.sim.AddFault(maskinportensim.Fault{Path: "/token", Drop: true, Times: 1})
	_, err = c.AccessToken(ctx, "move/dpo.read")
	assert.ErrorIs(t, err, maskinporten.ErrUnavailable)

	_, err = c.AccessToken(ctx, "move/dpo.read")
	require.NoError(t, err)

	resp, err = http.Get(e.srv.URL + "/_sim/requests")
	require.NoError(t, err)
	var counts struct {
		Total  int            `json:"total"`
		Routes map[string]int `json:"routes"`
		Issued int            `json:"issued"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&counts))
	resp.Body.Close()
	assert.Equal(t, 4, counts.Routes["POST /token"])
	assert.Equal(t, 2, counts.Issued, "the malformed answer was a real token cut in half")

	resp, err = http.Post(e.srv.URL+"/_sim/clients", "application/json", strings.NewReader(`{"id":"late","orgNumber":"`+orgB+`","scopes":["s"]}`))
	require.NoError(t, err)
	resp.Body.Close()
	late := e.client(t, pki.Orgs[orgB], func(c *maskinporten.Config) { c.ClientID = "late" })
	_, err = late.AccessToken(ctx, "s")
	assert.NoError(t, err)

	resp, err = http.Post(e.srv.URL+"/_sim/reset", "application/json", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 0, e.sim.Requests(""))
}

func TestSim_PublishesKeys(t *testing.T) {
	e := newEnv(t, nil)
	tok, err := e.client(t, pki.Orgs[orgA], nil).AccessToken(context.Background(), "move/dpo.read")
	require.NoError(t, err)
	resp, err := http.Get(e.srv.URL + "/jwk")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	keys, err := jws.ParseJWKSet(b)
	require.NoError(t, err)
	_, _, err = jws.Verify([]byte(tok), keys[0].Key)
	assert.NoError(t, err)

	resp, err = http.Get(e.srv.URL + "/.well-known/oauth-authorization-server")
	require.NoError(t, err)
	var meta map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&meta))
	resp.Body.Close()
	assert.Equal(t, e.srv.URL+"/jwk", meta["jwks_uri"])
	assert.Equal(t, e.srv.URL+"/", meta["issuer"])
}

func TestNew_ReportsEveryMissingSetting(t *testing.T) {
	_, err := maskinporten.New(maskinporten.Config{})
	require.Error(t, err)
	for _, key := range []string{"difi.move.oidc.url", "difi.move.oidc.audience", "difi.move.oidc.clientId", "signing key"} {
		assert.ErrorContains(t, err, key)
	}
}

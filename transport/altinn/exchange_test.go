package altinn_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/altinn"
	"github.com/efm-go/efm/transport/altinn/altinnsim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// grantSource is the adapter the daemon puts between Maskinporten and the
// exchanger: one system user, tokens signed by the sandbox issuer.
type grantSource struct {
	iss   *altinnsim.Issuer
	calls atomic.Int32
}

func (g *grantSource) Token(_ context.Context, scopes ...string) (string, error) {
	g.calls.Add(1)
	return g.iss.Token(altinnsim.Grant{ConsumerOrg: "910077473", Scopes: scopes,
		SystemUserOrg: "910077473", SystemUserName: "910077473_integrasjonspunkt_systembruker_910077473"})
}

func TestExchanger(t *testing.T) {
	iss, err := altinnsim.NewIssuer()
	require.NoError(t, err)
	// The JWKS path exercises key discovery the way the sandbox wires the
	// Maskinporten simulator.
	jwks := httptest.NewServer(iss.JWKS())
	defer jwks.Close()
	sim, err := altinnsim.New(altinnsim.Options{MaskinportenJWKS: jwks.URL,
		SystemUsers: map[string]string{"0192:910077473": "910077473_integrasjonspunkt_systembruker_910077473"}})
	require.NoError(t, err)
	srv := httptest.NewServer(sim)
	defer srv.Close()

	now := time.Now()
	src := &grantSource{iss: iss}
	ex, err := altinn.New(altinn.Config{URL: srv.URL + altinnsim.ExchangePath, Maskinporten: src,
		Now: func() time.Time { return now }})
	require.NoError(t, err)

	ctx := context.Background()
	tok, err := ex.Token(ctx, "altinn:broker.write")
	require.NoError(t, err)
	claims, err := sim.Verify(tok)
	require.NoError(t, err)
	assert.Equal(t, "910077473", claims.SystemUserOrg)
	assert.Equal(t, "910077473", claims.Org())
	assert.True(t, claims.HasScope("altinn:broker.write"))

	_, err = ex.Token(ctx, "altinn:broker.write")
	require.NoError(t, err)
	assert.Equal(t, int32(1), src.calls.Load(), "second call served from cache")

	now = now.Add(26 * time.Minute)
	_, err = ex.Token(ctx, "altinn:broker.write")
	require.NoError(t, err)
	assert.Equal(t, int32(2), src.calls.Load(), "cache lasts 25 minutes")

	ex.Invalidate("altinn:broker.write")
	_, err = ex.Token(ctx, "altinn:broker.write")
	require.NoError(t, err)
	assert.Equal(t, int32(3), src.calls.Load())
}

func TestExchanger_Refused(t *testing.T) {
	iss, err := altinnsim.NewIssuer()
	require.NoError(t, err)
	other, err := altinnsim.NewIssuer()
	require.NoError(t, err)
	sim, err := altinnsim.New(altinnsim.Options{MaskinportenKeys: other.Keys()})
	require.NoError(t, err)
	srv := httptest.NewServer(sim)
	defer srv.Close()

	ex, err := altinn.New(altinn.Config{URL: srv.URL + altinnsim.ExchangePath, Maskinporten: &grantSource{iss: iss}})
	require.NoError(t, err)
	_, err = ex.Token(context.Background(), "altinn:broker.read")
	assert.ErrorIs(t, err, transport.ErrUnauthorized, "a token from an untrusted issuer is refused")
	assert.False(t, transport.Retryable(err))
}

func TestNew_ReportsEveryProblem(t *testing.T) {
	_, err := altinn.New(altinn.Config{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "URL")
	assert.Contains(t, err.Error(), "Maskinporten")
}

// TestExchanger_OneExchangeForConcurrentCallers: callers that find the cache
// empty at the same moment (every pipeline worker at start) share one
// exchange, and one Maskinporten grant.
func TestExchanger_OneExchangeForConcurrentCallers(t *testing.T) {
	iss, err := altinnsim.NewIssuer()
	require.NoError(t, err)
	sim, err := altinnsim.New(altinnsim.Options{MaskinportenKeys: iss.Keys()})
	require.NoError(t, err)
	var exchanges atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		exchanges.Add(1)
		<-release
		sim.ServeHTTP(w, r)
	}))
	defer srv.Close()
	src := &grantSource{iss: iss}
	ex, err := altinn.New(altinn.Config{URL: srv.URL + altinnsim.ExchangePath, Maskinporten: src})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			_, err := ex.Token(context.Background(), "altinn:broker.read")
			assert.NoError(t, err)
		})
	}
	// Let the first exchange wait until the server has it, so the others
	// arrive while it is in flight, then let it finish.
	require.Eventually(t, func() bool { return exchanges.Load() > 0 }, 10*time.Second, time.Millisecond)
	close(release)
	wg.Wait()
	assert.Equal(t, int32(1), exchanges.Load(), "exchanges")
	assert.Equal(t, int32(1), src.calls.Load(), "maskinporten grants")
}

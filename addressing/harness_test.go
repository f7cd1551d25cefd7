package addressing

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/addressing/brreg"
	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/addressing/internal/simauth"
	"github.com/efm-go/efm/addressing/internal/simcert"
	"github.com/efm-go/efm/addressing/krr"
	"github.com/efm-go/efm/addressing/regsim"
	"github.com/efm-go/efm/addressing/seed"
	"github.com/efm-go/efm/addressing/sr"
)

const sender = "910077473"

// ipScopes are what the reference asks Maskinporten for with every channel enabled (§3.1).
var ipScopes = []string{"eformidling:dpo", "eformidling:dpe", "eformidling:dpv", "eformidling:dpf", "eformidling:dpi",
	"digitalpostinnbygger:send", "global/kontaktinformasjon.read", "global/sikkerdigitalpost.read",
	"global/varslingsstatus.read", "global/sertifikat.read", "global/navn.read", "global/postadresse.read"}

var (
	mpOnce sync.Once
	mpKey  *rsa.PrivateKey
)

func maskinportenKey(t testing.TB) *rsa.PrivateKey {
	mpOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		mpKey = k
	})
	return mpKey
}

type env struct {
	sims *regsim.Set
	seed *seed.Seed
	sr   *sr.Client
	res  *Resolver
	logs *bytes.Buffer
}

type envOpt func(*Config, *sr.Config)

// newEnv starts every register simulator from the default seed, with throwaway certificates for
// the organisations that need one, and a resolver whose SR client goes over real HTTP.
func newEnv(t testing.TB, consumer string, opts ...envOpt) *env {
	t.Helper()
	s, err := seed.Default()
	require.NoError(t, err)
	certs := map[string][]byte{}
	for _, org := range s.Organisations() {
		p, _, err := simcert.SelfSigned("org "+org, org)
		require.NoError(t, err)
		certs[org] = p
	}
	key := maskinportenKey(t)
	sims, err := regsim.Start(regsim.Options{Seed: s, OrgCertificates: certs, MaskinportenKeys: []*rsa.PublicKey{&key.PublicKey}})
	require.NoError(t, err)
	t.Cleanup(sims.Close)

	srCfg := sr.Config{BaseURL: sims.SRURL, Timeout: 5 * time.Second,
		Token: func(context.Context) (string, error) { return simauth.Mint(key, consumer, ipScopes, time.Minute) }}
	logs := &bytes.Buffer{}
	cfg := Config{Logger: slog.New(slog.NewJSONHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, o := range opts {
		o(&cfg, &srCfg)
	}
	c, err := sr.New(srCfg)
	require.NoError(t, err)
	cfg.SR = c
	if cfg.KRR == nil {
		k, err := krr.New(krr.Config{BaseURL: sims.KRRURL, PrintURL: sims.KRRPrintURL, PrintAttempts: 2, PrintRetryInterval: 10 * time.Millisecond})
		require.NoError(t, err)
		cfg.KRR = k
	}
	res, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, p := range s.Persons {
			require.NotContains(t, logs.String(), p.Personidentifikator, "a person number reached a log line")
		}
	})
	return &env{sims: sims, seed: s, sr: c, res: res, logs: logs}
}

func (e *env) enableBrreg(t testing.TB) {
	b, err := brreg.New(brreg.Config{BaseURL: e.sims.BrregURL})
	require.NoError(t, err)
	e.res.cfg.Brreg = b
}

func mustID(t *testing.T, s string) ident.ID {
	t.Helper()
	id, err := ident.Policy{AllowSynthetic: true}.ParseID(s)
	require.NoError(t, err)
	return id
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

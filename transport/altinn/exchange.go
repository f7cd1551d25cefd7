// Package altinn exchanges a Maskinporten token for an Altinn token (spec
// channels.md §2.2 step 2, §3.2), the credential the Altinn Broker (DPO)
// and the Correspondence proxy (DPV) take.
//
// It imports nothing of the core and does not know how Maskinporten tokens
// are obtained: the caller supplies them through TokenSource, one source
// per system user (DPO reportees each get their own Exchanger).
package altinn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/efm-go/efm/transport"
)

// TokenSource hands out access tokens for the given scopes. The Maskinporten
// client satisfies it through a small adapter that fixes the system user's
// authorization_details; *Exchanger satisfies it for the channel clients.
type TokenSource interface {
	Token(ctx context.Context, scopes ...string) (string, error)
}

// Config configures an Exchanger.
type Config struct {
	// URL is the exchange endpoint, e.g.
	// https://platform.tt02.altinn.no/authentication/api/v1/exchange/maskinporten. Required.
	URL string
	// Maskinporten supplies the tokens to exchange. Required.
	Maskinporten TokenSource
	// HTTPClient; default a client with a 30 s timeout.
	HTTPClient *http.Client
	// CacheFor is how long an exchanged token is reused; default 25 min,
	// as the reference (Altinn tokens live about 30 min).
	CacheFor time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Exchanger turns Maskinporten tokens into cached Altinn tokens. It is safe
// for concurrent use.
type Exchanger struct {
	cfg Config

	mu    sync.Mutex
	cache map[string]cached
	// group makes the callers that find the cache empty at once (every
	// pipeline worker, at start and at each expiry) share one exchange.
	group singleflight.Group
}

type cached struct {
	token   string
	expires time.Time
}

// New returns an Exchanger.
func New(cfg Config) (*Exchanger, error) {
	var errs []error
	if cfg.URL == "" {
		errs = append(errs, errors.New("altinn: URL is required (the token exchange endpoint)"))
	}
	if cfg.Maskinporten == nil {
		errs = append(errs, errors.New("altinn: Maskinporten token source is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.CacheFor == 0 {
		cfg.CacheFor = 25 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Exchanger{cfg: cfg, cache: map[string]cached{}}, nil
}

func cacheKey(scopes []string) string {
	s := slices.Clone(scopes)
	slices.Sort(s)
	return strings.Join(s, " ")
}

// Token returns an Altinn token for scopes, exchanging a fresh Maskinporten
// token when the cached one is older than CacheFor.
func (e *Exchanger) Token(ctx context.Context, scopes ...string) (string, error) {
	key := cacheKey(scopes)
	if t, ok := e.cached(key); ok {
		return t, nil
	}
	v, err, _ := e.group.Do(key, func() (any, error) { return e.exchange(ctx, key, scopes) })
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// cached is the token for key while it is fresh.
func (e *Exchanger) cached(key string) (string, bool) {
	now := e.cfg.Now()
	e.mu.Lock()
	c, ok := e.cache[key]
	e.mu.Unlock()
	return c.token, ok && now.Before(c.expires)
}

func (e *Exchanger) exchange(ctx context.Context, key string, scopes []string) (string, error) {
	// A caller that waited for the group may come after an exchange that
	// just filled the cache.
	if t, ok := e.cached(key); ok {
		return t, nil
	}
	now := e.cfg.Now()
	mp, err := e.cfg.Maskinporten.Token(ctx, scopes...)
	if err != nil {
		return "", fmt.Errorf("getting maskinporten token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.cfg.URL, nil)
	if err != nil {
		return "", fmt.Errorf("building altinn token exchange: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+mp)
	resp, err := e.cfg.HTTPClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("exchanging token at altinn: %w", err)
	}
	defer resp.Body.Close()
	// An Altinn JWT is a few kB; the cap keeps a misbehaving server from
	// filling memory.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("reading altinn token: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", &transport.StatusError{Op: "exchanging token at altinn", StatusCode: resp.StatusCode}
	}
	token := strings.Trim(strings.TrimSpace(string(body)), `"`)
	if strings.Count(token, ".") != 2 {
		return "", fmt.Errorf("%w: altinn token exchange did not answer a jwt", transport.ErrMalformed)
	}
	e.mu.Lock()
	e.cache[key] = cached{token: token, expires: now.Add(e.cfg.CacheFor)}
	e.mu.Unlock()
	return token, nil
}

// Invalidate drops the cached token for scopes, so the next Token call
// exchanges afresh. Clients call it after a 401.
func (e *Exchanger) Invalidate(scopes ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.cache, cacheKey(scopes))
}

// Package maskinporten is the client of Maskinporten's JWT-bearer grant (channels.md §1.7):
// it signs a grant with the agency's business certificate (x5c, the keystore mode) or a
// registered key (kid, the JWK mode), posts it to the token endpoint and caches the access
// token until 10 s before it expires, per (scopes, consumer_org, authorization_details)
// (addressing.md §9). Concurrent requests for the same key share one round trip.
//
// The simulator beside it, maskinportensim, checks grants the way Maskinporten does.
// maskinporten imports packaging/jws and nothing from the core.
package maskinporten

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/efm-go/efm/packaging/jws"
	"golang.org/x/sync/singleflight"
)

// GrantType is the OAuth grant Maskinporten takes.
const GrantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// grantLifetime is exp − iat of a grant; Maskinporten refuses more than 120 s.
const grantLifetime = 120 * time.Second

// cacheMargin is how long before expires_in a cached token is dropped (project rule,
// channels.md §1.7), so a token is never handed out seconds before it dies.
const cacheMargin = 10 * time.Second

// maxBody caps a token endpoint answer; real ones are about 1 KiB.
const maxBody = 256 << 10

var (
	// ErrInvalidGrant, ErrInvalidClient and ErrInvalidScope match an *Error with that OAuth
	// error code. They are configuration problems: retrying does not help.
	ErrInvalidGrant  = errors.New("maskinporten: invalid_grant")
	ErrInvalidClient = errors.New("maskinporten: invalid_client")
	ErrInvalidScope  = errors.New("maskinporten: invalid_scope")
	// ErrUnavailable matches an *Error with a 5xx status or a transport failure: retry later.
	ErrUnavailable = errors.New("maskinporten: unavailable")
)

// Error is a refused token request.
type Error struct {
	StatusCode  int
	Code        string // the OAuth "error"
	Description string // the OAuth "error_description"
}

func (e *Error) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("maskinporten: %d %s: %s", e.StatusCode, e.Code, e.Description)
	}
	return fmt.Sprintf("maskinporten: status %d", e.StatusCode)
}

// Is matches the sentinels by OAuth code and status class.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrInvalidGrant:
		return e.Code == "invalid_grant"
	case ErrInvalidClient:
		return e.Code == "invalid_client"
	case ErrInvalidScope:
		return e.Code == "invalid_scope"
	case ErrUnavailable:
		return e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests
	}
	return false
}

// Config configures a Client.
type Config struct {
	// TokenURL is difi.move.oidc.url (https://maskinporten.no/token). Required.
	TokenURL string
	// Audience is difi.move.oidc.audience (https://maskinporten.no/). Required.
	Audience string
	// ClientID is difi.move.oidc.clientId; default MOVE_IP_<orgnr> is the caller's to build.
	// Required.
	ClientID string
	// Key signs grants. Required.
	Key *rsa.PrivateKey
	// Cert is the business certificate sent as x5c (keystore mode). When nil, KeyID must be
	// set (JWK mode).
	Cert *x509.Certificate
	// KeyID is the kid of a key registered at Maskinporten (JWK mode).
	KeyID string
	// HTTPClient defaults to a client with a 30 s timeout.
	HTTPClient *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Request is what a token is asked for.
type Request struct {
	Scopes []string
	// ConsumerOrg is the nine-digit org to act for (DPI, DPH, SvarUt REST); empty for self.
	ConsumerOrg string
	// AuthorizationDetails is Altinn's system-user claim for DPO, as JSON; nil when unused.
	AuthorizationDetails json.RawMessage
	// OnBehalfOf is iss_onbehalfof; rarely used.
	OnBehalfOf string
}

// Token is an access token with its expiry.
type Token struct {
	AccessToken string
	TokenType   string
	Scope       string
	ExpiresIn   int
	// Expiry is when the client stops handing the token out (expires_in − 10 s after issue).
	Expiry time.Time
}

// Client gets and caches Maskinporten tokens. Safe for concurrent use.
type Client struct {
	cfg   Config
	group singleflight.Group
	mu    sync.Mutex
	cache map[string]*Token
}

// New checks cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	var errs []error
	if cfg.TokenURL == "" {
		errs = append(errs, errors.New("difi.move.oidc.url: required"))
	}
	if cfg.Audience == "" {
		errs = append(errs, errors.New("difi.move.oidc.audience: required"))
	}
	if cfg.ClientID == "" {
		errs = append(errs, errors.New("difi.move.oidc.clientId: required"))
	}
	if cfg.Key == nil {
		errs = append(errs, errors.New("maskinporten: a signing key is required"))
	}
	if cfg.Cert == nil && cfg.KeyID == "" {
		errs = append(errs, errors.New("maskinporten: a certificate (keystore mode) or a key id (JWK mode) is required"))
	}
	if cfg.Cert != nil && cfg.Key != nil && !cfg.Key.PublicKey.Equal(cfg.Cert.PublicKey) {
		errs = append(errs, errors.New("maskinporten: the key does not match the certificate"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{cfg: cfg, cache: map[string]*Token{}}, nil
}

func cacheKey(r Request) string {
	scopes := slices.Clone(r.Scopes)
	slices.Sort(scopes)
	scopes = slices.Compact(scopes)
	var compact strings.Builder
	if len(r.AuthorizationDetails) > 0 {
		// The same details written with other spacing are the same key.
		var v any
		if json.Unmarshal(r.AuthorizationDetails, &v) == nil {
			b, _ := json.Marshal(v)
			compact.Write(b)
		} else {
			compact.Write(r.AuthorizationDetails)
		}
	}
	return strings.Join(scopes, " ") + "\x00" + r.ConsumerOrg + "\x00" + r.OnBehalfOf + "\x00" + compact.String()
}

// Token returns a cached token for req or fetches a new one.
func (c *Client) Token(ctx context.Context, req Request) (*Token, error) {
	if len(req.Scopes) == 0 {
		return nil, errors.New("maskinporten: no scopes requested")
	}
	key := cacheKey(req)
	c.mu.Lock()
	t := c.cache[key]
	c.mu.Unlock()
	if t != nil && c.cfg.Now().Before(t.Expiry) {
		return t, nil
	}
	v, err, _ := c.group.Do(key, func() (any, error) {
		c.mu.Lock()
		t := c.cache[key]
		c.mu.Unlock()
		if t != nil && c.cfg.Now().Before(t.Expiry) {
			return t, nil
		}
		t, err := c.fetch(ctx, req)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.cache[key] = t
		c.mu.Unlock()
		return t, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*Token), nil
}

// AccessToken returns the bearer token for scopes, acting for the agency itself. It has the
// shape of addressing/sr's TokenSource when scopes are bound in a closure.
func (c *Client) AccessToken(ctx context.Context, scopes ...string) (string, error) {
	t, err := c.Token(ctx, Request{Scopes: scopes})
	if err != nil {
		return "", err
	}
	return t.AccessToken, nil
}

// Source returns a token source with consumer_org and authorization_details fixed, for
// channel clients that ask by scope only (transport/altinn.TokenSource).
func (c *Client) Source(consumerOrg string, authorizationDetails json.RawMessage) *Source {
	return &Source{c: c, consumerOrg: consumerOrg, authz: authorizationDetails}
}

// Source hands out tokens for a fixed consumer and system user.
type Source struct {
	c           *Client
	consumerOrg string
	authz       json.RawMessage
}

// Token returns the bearer token for scopes.
func (s *Source) Token(ctx context.Context, scopes ...string) (string, error) {
	t, err := s.c.Token(ctx, Request{Scopes: scopes, ConsumerOrg: s.consumerOrg, AuthorizationDetails: s.authz})
	if err != nil {
		return "", err
	}
	return t.AccessToken, nil
}

// Grant returns a signed grant JWT for req, as fetch posts it.
func (c *Client) Grant(req Request) (string, error) {
	now := c.cfg.Now()
	jti := make([]byte, 16)
	rand.Read(jti)
	jti[6] = jti[6]&0x0f | 0x40
	jti[8] = jti[8]&0x3f | 0x80
	h := hex.EncodeToString(jti)
	claims := map[string]any{
		"aud":   c.cfg.Audience,
		"iss":   c.cfg.ClientID,
		"scope": strings.Join(req.Scopes, " "),
		"jti":   h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:],
		"iat":   now.Unix(),
		"exp":   now.Add(grantLifetime).Unix(),
	}
	if req.ConsumerOrg != "" {
		claims["consumer_org"] = req.ConsumerOrg
	}
	if req.OnBehalfOf != "" {
		claims["iss_onbehalfof"] = req.OnBehalfOf
	}
	if len(req.AuthorizationDetails) > 0 {
		claims["authorization_details"] = req.AuthorizationDetails
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encoding grant: %w", err)
	}
	header := map[string]any{}
	if c.cfg.Cert != nil {
		header["x5c"] = jws.X5CHeader(c.cfg.Cert) // leaf only, as the reference sends it
	} else {
		header["kid"] = c.cfg.KeyID
	}
	tok, err := jws.Sign(c.cfg.Key, payload, header)
	if err != nil {
		return "", fmt.Errorf("signing grant: %w", err)
	}
	return string(tok), nil
}

func (c *Client) fetch(ctx context.Context, req Request) (*Token, error) {
	grant, err := c.Grant(req)
	if err != nil {
		return nil, err
	}
	form := url.Values{"grant_type": {GrantType}, "assertion": {grant}}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("building token request: %w", err)
	}
	hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hr.Header.Set("Accept", "application/json")
	issued := c.cfg.Now()
	resp, err := c.cfg.HTTPClient.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("requesting maskinporten token: %w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("reading maskinporten answer: %w: %w", ErrUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &Error{StatusCode: resp.StatusCode}
		var oe struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(body, &oe) == nil {
			e.Code, e.Description = oe.Error, oe.Description
		}
		return nil, e
	}
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
		Scope       string `json:"scope"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return nil, fmt.Errorf("%w: answer is not a token", ErrUnavailable)
	}
	t := &Token{AccessToken: tr.AccessToken, TokenType: tr.TokenType, Scope: tr.Scope, ExpiresIn: tr.ExpiresIn}
	// Counted from when the request left, so time on the wire shortens the cache, never
	// lengthens it.
	t.Expiry = issued.Add(time.Duration(tr.ExpiresIn)*time.Second - cacheMargin)
	return t, nil
}

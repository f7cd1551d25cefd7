// Package simauth checks the Maskinporten bearer tokens that the register simulators require
// (spec/channels.md §9.5, §9.6): RS256 signature against the Maskinporten simulator's keys,
// expiry, the consumer claim and scopes. Without configured keys it reads the claims unverified,
// so a simulator can run alone; the sandbox always configures keys.
package simauth

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/efm-go/efm/packaging/jws"
)

// ErrUnauthorized: no token, a bad signature, expired, or no consumer claim (HTTP 401).
var ErrUnauthorized = errors.New("unauthorized")

// Token holds the claims a simulator acts on.
type Token struct {
	// Raw is the bearer token as received, to forward (the SR forwards the IP's token to KRR).
	Raw      string
	Scopes   []string
	ClientID string
	// ConsumerOrg is the organisation number of the consumer claim's "0192:<orgnr>".
	ConsumerOrg string
}

// HasAny reports whether the token carries one of the scopes.
func (t *Token) HasAny(scopes ...string) bool {
	for _, s := range scopes {
		if slices.Contains(t.Scopes, s) {
			return true
		}
	}
	return false
}

// Verifier checks tokens. The zero value reads claims without checking signatures.
type Verifier struct {
	// Keys verify the token signature.
	Keys []*rsa.PublicKey
	// JWKSURL, when set, is fetched for keys (the Maskinporten simulator's /jwk) and refetched on
	// a signature failure, so a key rotation there is picked up.
	JWKSURL string
	// Now defaults to time.Now.
	Now func() time.Time

	mu      sync.Mutex
	fetched []*rsa.PublicKey
}

// Verify extracts and checks the bearer token of r.
func (v *Verifier) Verify(r *http.Request) (*Token, error) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	raw = strings.TrimSpace(raw)
	if !ok || raw == "" {
		return nil, fmt.Errorf("%w: no bearer token", ErrUnauthorized)
	}
	var payload []byte
	var err error
	switch {
	case len(v.Keys) > 0:
		payload, _, err = jws.Verify([]byte(raw), v.Keys...)
	case v.JWKSURL != "":
		payload, err = v.verifyRemote(r.Context(), raw)
	default:
		payload, err = unverifiedPayload(raw)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	var c struct {
		Scope    string `json:"scope"`
		ClientID string `json:"client_id"`
		Exp      int64  `json:"exp"`
		Consumer struct {
			Authority string `json:"authority"`
			ID        string `json:"ID"`
		} `json:"consumer"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: token claims: %w", ErrUnauthorized, err)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	if c.Exp != 0 && now().Unix() > c.Exp+10 {
		return nil, fmt.Errorf("%w: token expired", ErrUnauthorized)
	}
	org, ok := strings.CutPrefix(c.Consumer.ID, "0192:")
	if !ok || c.Consumer.Authority != "iso6523-actorid-upis" || len(org) != 9 {
		return nil, fmt.Errorf("%w: no valid consumer claim", ErrUnauthorized)
	}
	return &Token{Raw: raw, Scopes: strings.Fields(c.Scope), ClientID: c.ClientID, ConsumerOrg: org}, nil
}

func (v *Verifier) verifyRemote(ctx context.Context, raw string) ([]byte, error) {
	v.mu.Lock()
	keys := v.fetched
	v.mu.Unlock()
	if len(keys) > 0 {
		if p, _, err := jws.Verify([]byte(raw), keys...); err == nil {
			return p, nil
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.JWKSURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching maskinporten jwks: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	set, err := jws.ParseJWKSet(b)
	if err != nil {
		return nil, err
	}
	keys = keys[:0:0]
	for _, k := range set {
		keys = append(keys, k.Key)
	}
	v.mu.Lock()
	v.fetched = keys
	v.mu.Unlock()
	p, _, err := jws.Verify([]byte(raw), keys...)
	return p, err
}

func unverifiedPayload(raw string) ([]byte, error) {
	h, err := jws.Header([]byte(raw))
	if err != nil || h == nil {
		return nil, fmt.Errorf("reading token: %w", err)
	}
	// Header has checked the structure; decode the middle part.
	parts := strings.Split(raw, ".")
	return decodeSegment(parts[1])
}

// Mint signs a Maskinporten-shaped access token, for tests and for running simulators without
// the Maskinporten simulator.
func Mint(key *rsa.PrivateKey, consumerOrg string, scopes []string, ttl time.Duration) (string, error) {
	now := time.Now()
	claims := map[string]any{
		"iss": "maskinporten-sim", "client_id": "MOVE_IP_" + consumerOrg, "scope": strings.Join(scopes, " "),
		"consumer": map[string]string{"authority": "iso6523-actorid-upis", "ID": "0192:" + consumerOrg},
		"iat":      now.Unix(), "exp": now.Add(ttl).Unix(), "jti": fmt.Sprint(now.UnixNano()),
	}
	b, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	tok, err := jws.Sign(key, b, map[string]any{"typ": "at+jwt"})
	return string(tok), err
}

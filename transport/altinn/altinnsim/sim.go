// Package altinnsim simulates Altinn authentication's token exchange
// (spec channels.md §9.4): GET /authentication/api/v1/exchange/maskinporten
// with a Maskinporten bearer token answers a plain-text Altinn JWT carrying
// the scope, the consumer and the system user.
//
// The broker and correspondence simulators (dposim, dpvsim) verify the
// tokens it issues through (*Sim).Verify, so one Sim is shared by both.
// Maskinporten tokens are checked against the Maskinporten simulator's JWKS
// (Options.MaskinportenJWKS) or against keys given directly; Issuer signs
// tokens of Maskinporten's shape where no Maskinporten simulator is mounted.
package altinnsim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/efm-go/efm/internal/simfault"
	"github.com/google/uuid"
)

// ExchangePath is where the exchange endpoint is mounted.
const ExchangePath = "/authentication/api/v1/exchange/maskinporten"

// Options configures a Sim. Either MaskinportenJWKS or MaskinportenKeys must
// be set.
type Options struct {
	// MaskinportenJWKS is the URL of the Maskinporten (simulator) JWKS.
	MaskinportenJWKS string
	// MaskinportenKeys are trusted Maskinporten signing keys by kid.
	MaskinportenKeys map[string]*rsa.PublicKey
	// SystemUsers, when not nil, lists the approved system users as
	// "0192:<orgnr>" → system user name; a token naming any other is refused.
	SystemUsers map[string]string
	// Lifetime of an issued Altinn token; default 30 min as Altinn's.
	Lifetime time.Duration
	// HTTPClient fetches the JWKS; default http.DefaultClient.
	HTTPClient *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Sim is the token exchange. It is safe for concurrent use.
type Sim struct {
	opts    Options
	key     *rsa.PrivateKey
	kid     string
	faults  *simfault.Injector
	handler http.Handler

	mu     sync.Mutex
	jwks   map[string]*rsa.PublicKey
	issued int

	// verified holds the claims of tokens whose signature checked out:
	// the key never changes, so only the expiry needs checking again. A
	// system user calls with one token for its whole lifetime, and an RSA
	// verification on every broker request was a tenth of the sandbox's
	// CPU per DPO message.
	verifiedMu sync.Mutex
	verified   map[string]Claims
}

// maxVerified bounds the verified-token cache; it starts over when full.
const maxVerified = 1024

// New returns a Sim with a fresh signing key.
func New(opts Options) (*Sim, error) {
	if opts.MaskinportenJWKS == "" && len(opts.MaskinportenKeys) == 0 {
		return nil, errors.New("altinnsim: MaskinportenJWKS or MaskinportenKeys must be set")
	}
	if opts.Lifetime == 0 {
		opts.Lifetime = 30 * time.Minute
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("altinnsim: generating signing key: %w", err)
	}
	s := &Sim{opts: opts, key: key, kid: "altinnsim-" + uuid.NewString()[:8], faults: simfault.New(simfault.Options{Match: simfault.Pattern, FlatRequests: true})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+ExchangePath, s.exchange)
	mux.HandleFunc("GET /authentication/api/v1/openid/.well-known/openid-configuration/jwks", s.serveJWKS)
	mux.HandleFunc("GET /_sim/issued", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		simfault.WriteJSON(w, http.StatusOK, map[string]int{"issued": s.issued})
	})
	s.faults.Routes(mux)
	s.handler = s.faults.Wrap(mux)
	return s, nil
}

func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Faults gives tests direct access to failure injection.
func (s *Sim) Faults() *simfault.Injector { return s.faults }

// Claims is what a verified Altinn token says about its holder.
type Claims struct {
	Scopes []string
	// ConsumerOrg is the organisation number of the Maskinporten consumer.
	ConsumerOrg string
	// SystemUserOrg is the system user's organisation number, "" when the
	// token was not issued for a system user.
	SystemUserOrg  string
	SystemUserName string
	Expires        time.Time
}

// HasScope reports whether the token grants scope.
func (c Claims) HasScope(scope string) bool {
	for _, s := range c.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// Org is the organisation the holder acts as: the system user's, else the consumer's.
func (c Claims) Org() string {
	if c.SystemUserOrg != "" {
		return c.SystemUserOrg
	}
	return c.ConsumerOrg
}

type party struct {
	Authority string `json:"authority"`
	ID        string `json:"ID"`
}

type authzDetail struct {
	Type          string   `json:"type"`
	SystemUserOrg *party   `json:"systemuser_org,omitempty"`
	ExternalRef   string   `json:"externalRef,omitempty"`
	SystemUserID  []string `json:"systemuser_id,omitempty"`
}

type mpClaims struct {
	Iss                  string        `json:"iss"`
	Scope                string        `json:"scope"`
	Consumer             *party        `json:"consumer"`
	AuthorizationDetails []authzDetail `json:"authorization_details,omitempty"`
	Exp                  int64         `json:"exp"`
	Iat                  int64         `json:"iat"`
	Jti                  string        `json:"jti"`
}

type altinnClaims struct {
	Iss                  string       `json:"iss"`
	Scope                string       `json:"scope"`
	Consumer             *party       `json:"consumer"`
	AuthorizationDetails *authzDetail `json:"authorization_details,omitempty"`
	SystemUserName       string       `json:"urn:efm:sim:systemuser_name,omitempty"`
	Exp                  int64        `json:"exp"`
	Iat                  int64        `json:"iat"`
	Jti                  string       `json:"jti"`
}

func orgOf(p *party) string {
	if p == nil {
		return ""
	}
	_, org, ok := strings.Cut(p.ID, ":")
	if !ok {
		return p.ID
	}
	return org
}

func (s *Sim) exchange(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		http.Error(w, "missing bearer token", http.StatusUnauthorized)
		return
	}
	var mp mpClaims
	if err := verify(token, func(kid string) (*rsa.PublicKey, error) { return s.maskinportenKey(r.Context(), kid) }, &mp); err != nil {
		http.Error(w, "invalid maskinporten token", http.StatusUnauthorized)
		return
	}
	now := s.opts.Now()
	if mp.Exp < now.Add(-10*time.Second).Unix() {
		http.Error(w, "expired maskinporten token", http.StatusUnauthorized)
		return
	}
	ac := altinnClaims{Iss: "altinnsim", Scope: mp.Scope, Consumer: mp.Consumer,
		Iat: now.Unix(), Exp: now.Add(s.opts.Lifetime).Unix(), Jti: uuid.NewString()}
	for _, d := range mp.AuthorizationDetails {
		if d.Type != "urn:altinn:systemuser" || d.SystemUserOrg == nil {
			continue
		}
		if s.opts.SystemUsers != nil && s.opts.SystemUsers[d.SystemUserOrg.ID] != d.ExternalRef {
			http.Error(w, "unknown system user", http.StatusUnauthorized)
			return
		}
		ac.AuthorizationDetails = &authzDetail{Type: d.Type, SystemUserOrg: d.SystemUserOrg,
			SystemUserID: []string{uuid.NewSHA1(uuid.NameSpaceOID, []byte(d.SystemUserOrg.ID+"/"+d.ExternalRef)).String()}}
		ac.SystemUserName = d.ExternalRef
	}
	out, err := sign(s.key, s.kid, ac)
	if err != nil {
		http.Error(w, "signing", http.StatusInternalServerError)
		return
	}
	s.mu.Lock()
	s.issued++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(out))
}

func (s *Sim) maskinportenKey(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	if k, ok := s.opts.MaskinportenKeys[kid]; ok {
		return k, nil
	}
	if s.opts.MaskinportenJWKS == "" {
		return nil, fmt.Errorf("%w: unknown kid", errBadToken)
	}
	s.mu.Lock()
	k, ok := s.jwks[kid]
	s.mu.Unlock()
	if ok {
		return k, nil
	}
	// Unknown kid: the Maskinporten simulator may have rotated; fetch again.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.opts.MaskinportenJWKS, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching maskinporten jwks: %w", err)
	}
	defer resp.Body.Close()
	var set struct{ Keys []jwk }
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return nil, fmt.Errorf("decoding maskinporten jwks: %w", err)
	}
	keys := map[string]*rsa.PublicKey{}
	for _, j := range set.Keys {
		if pk, err := fromJWK(j); err == nil {
			keys[j.Kid] = pk
		}
	}
	s.mu.Lock()
	s.jwks = keys
	s.mu.Unlock()
	if k, ok := keys[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w: unknown kid", errBadToken)
}

func (s *Sim) serveJWKS(w http.ResponseWriter, r *http.Request) {
	simfault.WriteJSON(w, http.StatusOK, map[string]any{"keys": []jwk{toJWK(s.kid, &s.key.PublicKey)}})
}

// Verify checks an Altinn token this Sim issued: signature, expiry (10 s
// skew). The broker and correspondence simulators call it on every request.
func (s *Sim) Verify(token string) (Claims, error) {
	s.verifiedMu.Lock()
	c, ok := s.verified[token]
	s.verifiedMu.Unlock()
	if !ok {
		var err error
		if c, err = s.verifySignature(token); err != nil {
			return Claims{}, err
		}
		s.verifiedMu.Lock()
		if s.verified == nil || len(s.verified) >= maxVerified {
			s.verified = map[string]Claims{}
		}
		s.verified[token] = c
		s.verifiedMu.Unlock()
	}
	if s.opts.Now().After(c.Expires.Add(10 * time.Second)) {
		return Claims{}, fmt.Errorf("%w: expired", errBadToken)
	}
	c.Scopes = slices.Clone(c.Scopes)
	return c, nil
}

// verifySignature checks token's signature and reads its claims, without
// the expiry.
func (s *Sim) verifySignature(token string) (Claims, error) {
	var ac altinnClaims
	err := verify(token, func(kid string) (*rsa.PublicKey, error) {
		if kid != s.kid {
			return nil, fmt.Errorf("%w: not issued by this simulator", errBadToken)
		}
		return &s.key.PublicKey, nil
	}, &ac)
	if err != nil {
		return Claims{}, err
	}
	exp := time.Unix(ac.Exp, 0)
	c := Claims{Scopes: strings.Fields(ac.Scope), ConsumerOrg: orgOf(ac.Consumer), Expires: exp,
		SystemUserName: ac.SystemUserName}
	if ac.AuthorizationDetails != nil {
		c.SystemUserOrg = orgOf(ac.AuthorizationDetails.SystemUserOrg)
	}
	return c, nil
}

// VerifyRequest reads the bearer token of r and verifies it.
func (s *Sim) VerifyRequest(r *http.Request) (Claims, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return Claims{}, fmt.Errorf("%w: no bearer token", errBadToken)
	}
	return s.Verify(token)
}

// Duration and Fault name simfault's types for packages outside transport
// (the sandbox), which cannot import an internal package: a Schedule is
// written with Duration(200*time.Millisecond), a fault with Faults().Add(Fault{...}).
type (
	Duration = simfault.Duration
	Fault    = simfault.Fault
)

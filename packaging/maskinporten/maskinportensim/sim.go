// Package maskinportensim simulates Maskinporten's token endpoint (channels.md §9.3) over
// real HTTP: it checks a JWT-bearer grant as Maskinporten does (RS256; x5c certificate from
// the sandbox CA naming the client's organisation, or the kid of a registered key; audience;
// registered issuer; lifetime at most 120 s and not expired; jti not replayed; every scope
// granted; consumer_org only where a delegation is seeded; authorization_details only for
// seeded system users) and issues access tokens signed with its own key, published at /jwk.
//
// Control API (not part of Maskinporten), all JSON:
//
//	POST   /_sim/faults   {"path": "/token", "status": 503, "times": 2, "delayMs": 0, "drop": false, "malformed": false}
//	DELETE /_sim/faults
//	POST   /_sim/delay    {"ms": 250}
//	GET    /_sim/requests → {"total": 3, "routes": {"POST /token": 3}, "issued": 2}
//	POST   /_sim/clients  {"id": "MOVE_IP_910075918", "orgNumber": "910075918", "scopes": ["..."]}
//	POST   /_sim/reset    faults, delay, counters and replay memory back to zero
package maskinportensim

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/efm-go/efm/internal/simfault"
	"github.com/efm-go/efm/packaging/jws"
	"github.com/efm-go/efm/packaging/keystore"
)

// Client is a registered Maskinporten client (an integration in Samarbeidsportalen).
type Client struct {
	ID string `json:"id"`
	// OrgNumber is the organisation that owns the client; an x5c certificate must name it.
	OrgNumber string   `json:"orgNumber"`
	Scopes    []string `json:"scopes"`
	// Keys are registered public keys by kid (JWK mode).
	Keys map[string]*rsa.PublicKey `json:"-"`
}

// Delegation lets Supplier ask for tokens with consumer_org = Consumer.
type Delegation struct {
	Supplier string `json:"supplier"`
	Consumer string `json:"consumer"`
}

// Options configure a Server.
type Options struct {
	// Issuer is the simulator's own URL with a trailing slash: the audience grants must name
	// and the iss of issued tokens. Empty means "http://<Host of the request>/".
	Issuer string
	// Roots anchor x5c certificates: the sandbox test CA. Must not be nil for keystore mode.
	Roots   *x509.CertPool
	Clients []Client
	// Delegations seed consumer_org; SystemUsers the orgs that may send authorization_details.
	Delegations []Delegation
	SystemUsers []string
	// SigningKey signs issued tokens; generated when nil.
	SigningKey *rsa.PrivateKey
	// TokenLifetime is expires_in; default 120 s as Maskinporten.
	TokenLifetime time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Server is the simulator, an http.Handler.
type Server struct {
	opts Options
	key  *rsa.PrivateKey
	kid  string
	mux  *http.ServeMux

	mu      sync.Mutex
	clients map[string]*Client
	seenJTI map[string]time.Time
	issued  int

	ctl     *simfault.Injector
	handler http.Handler
}

// New returns a simulator with opts.
func New(opts Options) (*Server, error) {
	if opts.TokenLifetime == 0 {
		opts.TokenLifetime = 120 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	key := opts.SigningKey
	if key == nil {
		var err error
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return nil, fmt.Errorf("generating signing key: %w", err)
		}
	}
	s := &Server{opts: opts, key: key, kid: jws.Thumbprint(&key.PublicKey), mux: http.NewServeMux(),
		clients: map[string]*Client{}, seenJTI: map[string]time.Time{}}
	for i := range opts.Clients {
		c := opts.Clients[i]
		s.clients[c.ID] = &c
	}
	s.mux.HandleFunc("POST /token", s.token)
	s.mux.HandleFunc("GET /jwk", s.jwk)
	s.mux.HandleFunc("GET /jwks", s.jwk)
	s.mux.HandleFunc("GET /.well-known/oauth-authorization-server", s.metadata)
	s.registerControl()
	return s, nil
}

// PublicKey verifies the tokens the simulator issues.
func (s *Server) PublicKey() *rsa.PublicKey { return &s.key.PublicKey }

// AddClient registers or replaces a client.
func (s *Server) AddClient(c Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[c.ID] = &c
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) issuer(r *http.Request) string {
	if s.opts.Issuer != "" {
		return s.opts.Issuer
	}
	return "http://" + r.Host + "/"
}

func oauthError(w http.ResponseWriter, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

type grantClaims struct {
	Aud           any             `json:"aud"`
	Iss           string          `json:"iss"`
	Scope         string          `json:"scope"`
	Jti           string          `json:"jti"`
	Iat           *int64          `json:"iat"`
	Exp           *int64          `json:"exp"`
	ConsumerOrg   string          `json:"consumer_org"`
	OnBehalfOf    string          `json:"iss_onbehalfof"`
	Authorization json.RawMessage `json:"authorization_details"`
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, "invalid_request", "form body expected")
		return
	}
	if r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		oauthError(w, "unsupported_grant_type", "grant_type must be urn:ietf:params:oauth:grant-type:jwt-bearer")
		return
	}
	assertion := []byte(r.PostForm.Get("assertion"))
	header, err := jws.Header(assertion)
	if err != nil {
		oauthError(w, "invalid_grant", "assertion is not a JWS")
		return
	}
	var unverified grantClaims
	if p, err := payloadOf(assertion); err != nil || json.Unmarshal(p, &unverified) != nil {
		oauthError(w, "invalid_grant", "assertion claims are not JSON")
		return
	}
	s.mu.Lock()
	client := s.clients[unverified.Iss]
	s.mu.Unlock()
	if client == nil {
		oauthError(w, "invalid_client", "unknown client "+unverified.Iss)
		return
	}

	var key *rsa.PublicKey
	supplierOrg := client.OrgNumber
	if _, ok := header["x5c"]; ok {
		certs, err := jws.X5C(header)
		if err != nil || len(certs) == 0 {
			oauthError(w, "invalid_grant", "x5c is not a certificate chain")
			return
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		if s.opts.Roots == nil {
			oauthError(w, "invalid_client", "no trusted certificate authorities configured")
			return
		}
		if _, err := certs[0].Verify(x509.VerifyOptions{Roots: s.opts.Roots, Intermediates: inter,
			CurrentTime: s.opts.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			oauthError(w, "invalid_client", "certificate not trusted: "+err.Error())
			return
		}
		org, ok := keystore.OrgNumber(certs[0])
		if !ok || org != client.OrgNumber {
			oauthError(w, "invalid_client", fmt.Sprintf("certificate is for organisation %q, client %s belongs to %s", org, client.ID, client.OrgNumber))
			return
		}
		var isRSA bool
		key, isRSA = certs[0].PublicKey.(*rsa.PublicKey)
		if !isRSA {
			oauthError(w, "invalid_grant", "certificate key is not RSA")
			return
		}
	} else {
		kid, _ := header["kid"].(string)
		key = client.Keys[kid]
		if key == nil {
			oauthError(w, "invalid_client", "neither x5c nor a registered kid")
			return
		}
	}
	payload, _, err := jws.Verify(assertion, key)
	if err != nil {
		oauthError(w, "invalid_grant", "signature: "+err.Error())
		return
	}
	var g grantClaims
	if err := json.Unmarshal(payload, &g); err != nil {
		oauthError(w, "invalid_grant", "claims are not JSON")
		return
	}
	iss := s.issuer(r)
	if !audienceMatches(g.Aud, iss) {
		oauthError(w, "invalid_grant", "aud must be "+iss)
		return
	}
	now := s.opts.Now()
	const skew = 10
	switch {
	case g.Iat == nil || g.Exp == nil || g.Jti == "":
		oauthError(w, "invalid_grant", "iat, exp and jti are required")
		return
	case *g.Exp-*g.Iat > 120:
		oauthError(w, "invalid_grant", "exp - iat must be at most 120 seconds")
		return
	case now.Unix() > *g.Exp+skew:
		oauthError(w, "invalid_grant", "grant expired")
		return
	case *g.Iat > now.Unix()+skew:
		oauthError(w, "invalid_grant", "iat is in the future")
		return
	}
	scopes := strings.Fields(g.Scope)
	if len(scopes) == 0 {
		oauthError(w, "invalid_scope", "no scope requested")
		return
	}
	for _, sc := range scopes {
		if !slices.Contains(client.Scopes, sc) {
			oauthError(w, "invalid_scope", "scope not granted to the client: "+sc)
			return
		}
	}
	consumer := supplierOrg
	if g.ConsumerOrg != "" && g.ConsumerOrg != supplierOrg {
		if !slices.Contains(s.opts.Delegations, Delegation{Supplier: supplierOrg, Consumer: g.ConsumerOrg}) {
			oauthError(w, "invalid_grant", "no delegation from "+g.ConsumerOrg+" to "+supplierOrg)
			return
		}
		consumer = g.ConsumerOrg
	}
	if len(g.Authorization) > 0 && string(g.Authorization) != "null" && !slices.Contains(s.opts.SystemUsers, supplierOrg) {
		oauthError(w, "invalid_grant", "no system user registered for "+supplierOrg)
		return
	}
	s.mu.Lock()
	for j, exp := range s.seenJTI {
		if now.After(exp) {
			delete(s.seenJTI, j)
		}
	}
	_, replay := s.seenJTI[g.Jti]
	if !replay {
		s.seenJTI[g.Jti] = time.Unix(*g.Exp+skew, 0)
	}
	s.mu.Unlock()
	if replay {
		oauthError(w, "invalid_grant", "jti already used")
		return
	}

	claims := map[string]any{
		"iss":        iss,
		"client_id":  client.ID,
		"scope":      strings.Join(scopes, " "),
		"consumer":   map[string]string{"authority": "iso6523-actorid-upis", "ID": "0192:" + consumer},
		"iat":        now.Unix(),
		"exp":        now.Add(s.opts.TokenLifetime).Unix(),
		"jti":        newID(),
		"token_type": "Bearer",
	}
	if consumer != supplierOrg {
		claims["supplier"] = map[string]string{"authority": "iso6523-actorid-upis", "ID": "0192:" + supplierOrg}
	}
	if len(g.Authorization) > 0 && string(g.Authorization) != "null" {
		claims["authorization_details"] = g.Authorization
	}
	body, _ := json.Marshal(claims)
	tok, err := jws.Sign(s.key, body, map[string]any{"kid": s.kid, "typ": "at+jwt"})
	if err != nil {
		http.Error(w, "signing token", http.StatusInternalServerError)
		return
	}
	s.mu.Lock()
	s.issued++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{
		"access_token": string(tok),
		"token_type":   "Bearer",
		"expires_in":   int(s.opts.TokenLifetime / time.Second),
		"scope":        strings.Join(scopes, " "),
	})
}

func audienceMatches(aud any, iss string) bool {
	match := func(a string) bool { return strings.TrimSuffix(a, "/") == strings.TrimSuffix(iss, "/") }
	switch v := aud.(type) {
	case string:
		return match(v)
	case []any:
		for _, a := range v {
			if s, ok := a.(string); ok && match(s) {
				return true
			}
		}
	}
	return false
}

func (s *Server) jwk(w http.ResponseWriter, r *http.Request) {
	b, err := jws.MarshalJWKSet(jws.JWK{KeyID: s.kid, Key: &s.key.PublicKey, Use: "sig"})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

func (s *Server) metadata(w http.ResponseWriter, r *http.Request) {
	iss := s.issuer(r)
	base := strings.TrimSuffix(iss, "/")
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"issuer":                                iss,
		"token_endpoint":                        base + "/token",
		"jwks_uri":                              base + "/jwk",
		"token_endpoint_auth_methods_supported": []string{"private_key_jwt"},
		"grant_types_supported":                 []string{"urn:ietf:params:oauth:grant-type:jwt-bearer"},
	})
}

func payloadOf(token []byte) ([]byte, error) {
	parts := strings.Split(string(token), ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a compact jws")
	}
	return decodeB64URL(parts[1])
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// SandboxScopes are every scope the integration point asks for (channels.md §1.7,
// addressing.md §3.1), current and older names, so a sandbox client is refused nothing.
var SandboxScopes = []string{
	"eformidling:dpo", "eformidling:dpe", "eformidling:dpv", "eformidling:dpf", "eformidling:dpi", "eformidling:dph",
	"move/dpo.read", "move/dpe.read", "move/dpi.read", "move/dpf.read", "move/dpv.read",
	"digitalpostinnbygger:send", "altinn:broker.write", "altinn:broker.read", "ks:fiks",
	"global/kontaktinformasjon.read", "global/sikkerdigitalpost.read", "global/varslingsstatus.read",
	"global/sertifikat.read", "global/navn.read", "global/postadresse.read",
	"krr:global/kontaktinformasjon.read", "krr:global/digitalpost.read",
}

// SandboxClient is the client the reference's default difi.move.oidc.clientId names for org
// (MOVE_IP_<orgnr>), granted SandboxScopes.
func SandboxClient(org string) Client {
	return Client{ID: "MOVE_IP_" + org, OrgNumber: org, Scopes: slices.Clone(SandboxScopes)}
}

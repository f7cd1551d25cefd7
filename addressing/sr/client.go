// Package sr is the client of the Service Registry ("adressetjenesten", spec/addressing.md §3):
// identifier lookups with and without process, info records, VirkSert certificates, the DPE SAS
// key and the JWK set that verifies signed answers.
//
// Signed answers (Accept: application/jose) are verified before their payload is parsed; a
// signature that does not verify is a lookup failure (ErrBadSignature), never "not found".
// Person numbers travel in the URL path (/identifier/{fnr}), so nothing here logs URLs, and
// errors never quote them: request errors are reported by route, and SR error descriptions are
// scrubbed of anything that passes the person-number checksum.
//
// The client caches only what is not personal data: VirkSert certificates (5 minutes), the SAS
// key (1 day) and the JWK set (refreshed on an unknown kid or a failed verification).
// Identifier answers are cached, or not, by the caller (addressing.Resolver, §5.3 and §9).
package sr

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/addressing/internal/baseurl"
	"github.com/efm-go/efm/packaging/jws"
)

// Errors callers branch on. An *Error from a 4xx answer matches the sentinel of its status.
var (
	// ErrNotFound: SR 404 (entity, process or certificate not found).
	ErrNotFound = errors.New("not found in the service registry")
	// ErrBadRequest: SR 400 (e.g. security level 4 not possible).
	ErrBadRequest = errors.New("service registry rejected the request")
	// ErrUnauthorized: SR 401/403 (token without consumer or scope).
	ErrUnauthorized = errors.New("service registry refused the token")
	// ErrUnavailable: network error, timeout, 5xx or an unreadable answer. Worth a retry.
	ErrUnavailable = errors.New("service registry unavailable")
	// ErrBadSignature: a signed answer did not verify against the SR's JWK set.
	ErrBadSignature = errors.New("service registry answer signature does not verify")
)

// Error is a 4xx answer of the SR with its error body. Description is scrubbed of person
// numbers.
type Error struct {
	Status      int
	Code        string // error_code
	Description string // error_description, or message on the citizen variant
}

func (e *Error) Error() string {
	return fmt.Sprintf("service registry status %d %s: %s", e.Status, e.Code, e.Description)
}

// Is maps the status to the package sentinels.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrBadRequest:
		return e.Status == http.StatusBadRequest
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	case ErrUnavailable:
		return e.Status >= 500
	}
	return false
}

// TokenSource returns a Maskinporten access token for the SR (spec/addressing.md §3.1).
type TokenSource func(ctx context.Context) (string, error)

// Config configures a Client.
type Config struct {
	// BaseURL is difi.move.serviceregistryEndpoint.
	BaseURL string
	// JWKURL is difi.move.sign.jwkUrl; default BaseURL + /jwk.
	JWKURL string
	// Token must not be nil.
	Token TokenSource
	// DisableSigning turns difi.move.sign.enable off (default on: Accept application/jose).
	DisableSigning bool
	// BetaFeatures sends X-Enable-Beta-Features: true (difi.move.feature.enableBetaFeatures).
	BetaFeatures bool
	// DisablePrintLookup sends print=false (difi.move.feature.enableDsfPrintLookup=false).
	DisablePrintLookup bool
	HTTPClient         *http.Client
	// Timeout per request; default 30 s.
	Timeout time.Duration
	// Now defaults to time.Now (cache expiry).
	Now func() time.Time
}

// Client talks to the SR. Safe for concurrent use.
type Client struct {
	cfg  Config
	base *url.URL
	http *http.Client

	mu       sync.Mutex
	keys     []jws.JWK
	virksert map[string]cachedCert
	sas      string
	sasUntil time.Time
}

type cachedCert struct {
	pem   []byte
	until time.Time
}

// New returns a Client.
func New(cfg Config) (*Client, error) {
	base, err := baseurl.Check("service registry", cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(base) // Check has parsed it
	if cfg.Token == nil {
		return nil, errors.New("service registry: Config.Token must not be nil")
	}
	if cfg.JWKURL == "" {
		cfg.JWKURL = u.String() + "/jwk"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Client{cfg: cfg, base: u, http: cfg.HTTPClient, virksert: map[string]cachedCert{}}
	if c.http == nil {
		c.http = &http.Client{Timeout: cfg.Timeout}
	}
	return c, nil
}

// Query holds the optional parameters of an identifier lookup.
type Query struct {
	// SecurityLevel is sent when non-zero (only when the message or caller sets one, §3.1).
	SecurityLevel int
	// ConversationID is sent for the SR's logging when set.
	ConversationID string
}

// Identifier looks up every record of the receiver: GET /identifier/{id}.
func (c *Client) Identifier(ctx context.Context, id ident.ID, q Query) (*Answer, error) {
	return c.identifier(ctx, id, "", q)
}

// IdentifierProcess looks up the receiver's records for one process:
// GET /identifier/{id}/process/{process}.
func (c *Client) IdentifierProcess(ctx context.Context, id ident.ID, process string, q Query) (*Answer, error) {
	if process == "" {
		return nil, errors.New("service registry lookup: empty process")
	}
	return c.identifier(ctx, id, process, q)
}

func (c *Client) identifier(ctx context.Context, id ident.ID, process string, q Query) (*Answer, error) {
	route := "/identifier/{id}"
	path := "/identifier/" + url.PathEscape(id.RevealPrimary())
	if process != "" {
		route += "/process/{process}"
		path += "/process/" + url.PathEscape(process)
	}
	v := url.Values{}
	if q.SecurityLevel != 0 {
		v.Set("securityLevel", strconv.Itoa(q.SecurityLevel))
	}
	if q.ConversationID != "" {
		v.Set("conversationId", q.ConversationID)
	}
	if c.cfg.DisablePrintLookup {
		v.Set("print", "false")
	}
	body, err := c.get(ctx, route, path, v, true, "application/json")
	if err != nil {
		return nil, err
	}
	var a Answer
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, fmt.Errorf("decoding service registry answer (%s): %w: %w", route, ErrUnavailable, err)
	}
	return &a, nil
}

// Info returns the info record only: GET /info/{id}.
func (c *Client) Info(ctx context.Context, id ident.ID) (*InfoRecord, error) {
	body, err := c.get(ctx, "/info/{id}", "/info/"+url.PathEscape(id.RevealPrimary()), nil, true, "application/json")
	if err != nil {
		return nil, err
	}
	var ir InfoRecord
	if err := json.Unmarshal(body, &ir); err != nil {
		return nil, fmt.Errorf("decoding service registry info record: %w: %w", ErrUnavailable, err)
	}
	return &ir, nil
}

// VirkSert returns an organisation's business certificate (PEM, parsed), cached 5 minutes.
func (c *Client) VirkSert(ctx context.Context, orgnr ident.OrgNumber) (*x509.Certificate, []byte, error) {
	c.mu.Lock()
	cc, ok := c.virksert[string(orgnr)]
	c.mu.Unlock()
	if !ok || !c.cfg.Now().Before(cc.until) {
		body, err := c.get(ctx, "/virksert/{orgnr}", "/virksert/"+url.PathEscape(string(orgnr)), nil, true, "text/plain")
		if err != nil {
			return nil, nil, fmt.Errorf("fetching virksert certificate of %s: %w", orgnr, err)
		}
		cc = cachedCert{pem: ArmourPEM(string(body)), until: c.cfg.Now().Add(5 * time.Minute)}
		c.mu.Lock()
		c.virksert[string(orgnr)] = cc
		c.mu.Unlock()
	}
	cert, err := ParsePEM(cc.pem)
	if err != nil {
		return nil, nil, fmt.Errorf("virksert certificate of %s: %w: %w", orgnr, ErrUnavailable, err)
	}
	return cert, cc.pem, nil
}

// SASToken returns the DPE Service Bus SAS key (always signed), cached one day (§9).
func (c *Client) SASToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	if c.sas != "" && c.cfg.Now().Before(c.sasUntil) {
		s := c.sas
		c.mu.Unlock()
		return s, nil
	}
	c.mu.Unlock()
	body, err := c.get(ctx, "/sastoken", "/sastoken", nil, true, "")
	if err != nil {
		return "", fmt.Errorf("fetching sas key: %w", err)
	}
	s := strings.TrimSpace(string(body))
	c.mu.Lock()
	c.sas, c.sasUntil = s, c.cfg.Now().Add(24*time.Hour)
	c.mu.Unlock()
	return s, nil
}

// get performs an authenticated GET. signed asks for application/jose when signing is on (the
// SAS key is always signed: plain == ""). Errors name route, never path.
func (c *Client) get(ctx context.Context, route, path string, q url.Values, signed bool, plain string) ([]byte, error) {
	tok, err := c.cfg.Token(ctx)
	if err != nil {
		return nil, fmt.Errorf("getting token for the service registry: %w", err)
	}
	target := c.base.String() + path
	if enc := q.Encode(); enc != "" {
		target += "?" + enc
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, fmt.Errorf("building service registry request (%s)", route)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	wantJose := plain == "" || (signed && !c.cfg.DisableSigning)
	switch {
	case plain == "":
		req.Header.Set("Accept", "application/jose")
	case wantJose:
		req.Header.Set("Accept", "application/jose, "+plain)
	default:
		req.Header.Set("Accept", plain)
	}
	if c.cfg.BetaFeatures {
		req.Header.Set("X-Enable-Beta-Features", "true")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// *url.Error quotes the URL, which may carry a person number: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("service registry request (%s): %w: %w", route, ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("reading service registry answer (%s): %w: %w", route, ErrUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("service registry request (%s): %w", route, decodeError(resp.StatusCode, body))
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if ct == "application/jose" {
		payload, err := c.verify(ctx, body)
		if err != nil {
			return nil, fmt.Errorf("verifying service registry answer (%s): %w", route, err)
		}
		return payload, nil
	}
	if wantJose && !c.cfg.DisableSigning {
		// We asked for a signature and got none: a downgrade is treated like a bad signature.
		return nil, fmt.Errorf("service registry answer (%s) is not signed: %w", route, ErrBadSignature)
	}
	return body, nil
}

func decodeError(status int, body []byte) error {
	var e struct {
		Code        string `json:"error_code"`
		Description string `json:"error_description"`
		Message     string `json:"message"`
	}
	_ = json.Unmarshal(body, &e)
	d := e.Description
	if d == "" {
		d = e.Message
	}
	if len(d) > 500 {
		d = d[:500]
	}
	if status >= 500 {
		return fmt.Errorf("status %d: %w", status, ErrUnavailable)
	}
	return &Error{Status: status, Code: e.Code, Description: Scrub(d)}
}

// verify checks a compact JWS against the SR's key set: the key with the header's kid, else the
// first RSA key (as the reference). An unknown kid or a failed check refetches the set once.
func (c *Client) verify(ctx context.Context, token []byte) ([]byte, error) {
	h, err := jws.Header(token)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	kid, _ := h["kid"].(string)
	for attempt := 0; attempt < 2; attempt++ {
		c.mu.Lock()
		keys := c.keys
		c.mu.Unlock()
		if len(keys) == 0 || (attempt == 0 && kid != "" && !hasKid(keys, kid)) || attempt == 1 {
			if keys, err = c.fetchKeys(ctx); err != nil {
				return nil, err
			}
		}
		k := pick(keys, kid)
		payload, _, err := jws.Verify(token, k)
		if err == nil {
			return payload, nil
		}
		if !errors.Is(err, jws.ErrSignature) {
			return nil, fmt.Errorf("%w: %w", ErrBadSignature, err)
		}
	}
	return nil, ErrBadSignature
}

func hasKid(keys []jws.JWK, kid string) bool {
	for _, k := range keys {
		if k.KeyID == kid {
			return true
		}
	}
	return false
}

func pick(keys []jws.JWK, kid string) *rsa.PublicKey {
	for _, k := range keys {
		if kid != "" && k.KeyID == kid {
			return k.Key
		}
	}
	return keys[0].Key
}

func (c *Client) fetchKeys(ctx context.Context) ([]jws.JWK, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.JWKURL, nil)
	if err != nil {
		return nil, fmt.Errorf("building jwk request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching service registry jwk set: %w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching service registry jwk set: status %d: %w", resp.StatusCode, ErrUnavailable)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading service registry jwk set: %w: %w", ErrUnavailable, err)
	}
	keys, err := jws.ParseJWKSet(b)
	if err != nil {
		return nil, fmt.Errorf("service registry jwk set: %w: %w", ErrUnavailable, err)
	}
	c.mu.Lock()
	c.keys = keys
	c.mu.Unlock()
	return keys, nil
}

// ArmourPEM wraps a bare base64 certificate in BEGIN/END CERTIFICATE lines (SR answers may omit
// them, §3.2) and returns PEM unchanged.
func ArmourPEM(s string) []byte {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "-----BEGIN") {
		return []byte(s + "\n")
	}
	var b strings.Builder
	b.WriteString("-----BEGIN CERTIFICATE-----\n")
	s = strings.Join(strings.Fields(s), "")
	for len(s) > 64 {
		b.WriteString(s[:64] + "\n")
		s = s[64:]
	}
	b.WriteString(s + "\n-----END CERTIFICATE-----\n")
	return []byte(b.String())
}

// ParsePEM parses the first certificate of PEM (armoured or not).
func ParsePEM(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(ArmourPEM(string(b)))
	if blk == nil {
		return nil, errors.New("no pem certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// Certificate parses a record's pemCertificate.
func (r *ServiceRecord) Certificate() (*x509.Certificate, error) {
	if r.PemCertificate == "" {
		return nil, errors.New("record has no certificate")
	}
	return ParsePEM([]byte(r.PemCertificate))
}

// Package krr is a client of KRR, Kontakt- og reservasjonsregisteret (spec/addressing.md §5).
//
// The integration point itself calls only PrintCertificate (§5.2): the print provider's org
// number and certificate for every print message, cached 5 minutes (not personal data). Persons
// (§5.1) is the person lookup the Service Registry makes with the IP's forwarded token; the SR
// simulator uses it.
//
// Terms of use (§5.3): KRR data is looked up per dispatch and never stored. Persons returns the
// answer to its caller and keeps nothing; no person data is logged or put in an error.
package krr

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/addressing/internal/baseurl"
	"github.com/efm-go/efm/packaging/jws"
)

// Errors callers branch on.
var (
	// ErrUnavailable: network error, timeout, 5xx. Worth a retry.
	ErrUnavailable = errors.New("krr unavailable")
	// ErrRejected: KRR answered 4xx (bad request, missing scope).
	ErrRejected = errors.New("krr rejected the request")
	// ErrBadAnswer: the answer could not be decoded or its signature did not verify.
	ErrBadAnswer = errors.New("krr answer unreadable or not verified")
)

// Config configures a Client.
type Config struct {
	// BaseURL for person lookups, e.g. https://test.kontaktregisteret.no or a krrsim URL.
	BaseURL string
	// PrintURL is difi.move.dpi.krr-print-url; default BaseURL + /rest/v2/printSertifikat.
	PrintURL   string
	HTTPClient *http.Client
	// Timeout per request; default 10 s.
	Timeout time.Duration
	// PrintRetryInterval and PrintAttempts: the reference retries every 3 s up to 10 times,
	// 30 s overall (the defaults).
	PrintRetryInterval time.Duration
	PrintAttempts      int
	// PrintCacheTTL defaults to 5 minutes (§9).
	PrintCacheTTL time.Duration
	// Roots, when set, must verify the x5c certificate of signed person answers. Nil accepts any
	// certificate whose key verifies the signature (the SR's own behaviour: it trusts the x5c).
	Roots *x509.CertPool
	// Now defaults to time.Now.
	Now func() time.Time
}

// Client talks to KRR. Safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client

	mu         sync.Mutex
	print      *PrintCertificate
	printUntil time.Time
}

// New returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.PrintURL == "" {
		if cfg.BaseURL == "" {
			return nil, errors.New("krr: BaseURL or PrintURL is required")
		}
		cfg.PrintURL = strings.TrimRight(cfg.BaseURL, "/") + "/rest/v2/printSertifikat"
	}
	for _, s := range []*string{&cfg.BaseURL, &cfg.PrintURL} {
		if *s == "" {
			continue
		}
		var err error
		if *s, err = baseurl.Check("krr", *s); err != nil {
			return nil, err
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.PrintRetryInterval <= 0 {
		cfg.PrintRetryInterval = 3 * time.Second
	}
	if cfg.PrintAttempts <= 0 {
		cfg.PrintAttempts = 10
	}
	if cfg.PrintCacheTTL <= 0 {
		cfg.PrintCacheTTL = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Client{cfg: cfg, http: cfg.HTTPClient}
	if c.http == nil {
		c.http = &http.Client{Timeout: cfg.Timeout}
	}
	return c, nil
}

// PrintCertificate is KRR's answer about the print provider.
type PrintCertificate struct {
	// Postkasseleverandoeradresse is the print provider's organisation number.
	Postkasseleverandoeradresse string
	Certificate                 *x509.Certificate
}

// PrintCertificate returns the print provider and its certificate, from a 5-minute cache or a
// fresh lookup retried as the reference does.
func (c *Client) PrintCertificate(ctx context.Context) (*PrintCertificate, error) {
	c.mu.Lock()
	if c.print != nil && c.cfg.Now().Before(c.printUntil) {
		p := c.print
		c.mu.Unlock()
		return p, nil
	}
	c.mu.Unlock()

	// Bounded by PrintAttempts and each request's own Timeout; an overall
	// deadline of attempts × interval would leave no time for the requests.
	var last error
	for attempt := 0; attempt < c.cfg.PrintAttempts; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(c.cfg.PrintRetryInterval)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, fmt.Errorf("fetching krr print certificate: %w: %w", ErrUnavailable, errors.Join(last, ctx.Err()))
			case <-t.C:
			}
		}
		p, err := c.fetchPrint(ctx)
		if err == nil {
			c.mu.Lock()
			c.print, c.printUntil = p, c.cfg.Now().Add(c.cfg.PrintCacheTTL)
			c.mu.Unlock()
			return p, nil
		}
		last = err
		if errors.Is(err, ErrRejected) || errors.Is(err, ErrBadAnswer) {
			break
		}
	}
	return nil, fmt.Errorf("fetching krr print certificate: %w", last)
}

func (c *Client) fetchPrint(ctx context.Context) (*PrintCertificate, error) {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, c.cfg.PrintURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	body, err := c.do(req)
	if err != nil {
		return nil, err
	}
	var a struct {
		Postkasseleverandoeradresse string `json:"postkasseleverandoerAdresse"`
		X509Sertifikat              string `json:"x509Sertifikat"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, fmt.Errorf("%w: print certificate json: %w", ErrBadAnswer, err)
	}
	cert, err := parseCert(a.X509Sertifikat)
	if err != nil {
		return nil, fmt.Errorf("%w: print certificate: %w", ErrBadAnswer, err)
	}
	if !ident.ValidOrgNumber(a.Postkasseleverandoeradresse) {
		return nil, fmt.Errorf("%w: print provider %q is no organisation number", ErrBadAnswer, a.Postkasseleverandoeradresse)
	}
	return &PrintCertificate{Postkasseleverandoeradresse: a.Postkasseleverandoeradresse, Certificate: cert}, nil
}

// Person is one person of a KRR answer (§5.1). It lives in memory for one message's processing
// only (§5.3).
type Person struct {
	ID                 ident.PersonID
	Reservasjon        string // JA | NEI
	Status             string // AKTIV | SLETTET | IKKE_REGISTRERT
	Varslingsstatus    string // KAN_VARSLES | KAN_IKKE_VARSLES
	Kontaktinformasjon *Kontaktinformasjon
	DigitalPost        *DigitalPost
	// Sertifikat is the person's encryption certificate (DER), nil when absent.
	Sertifikat []byte
	Spraak     string
}

// HasMailbox is §4.5's "has mailbox": a certificate and digital_post.
func (p *Person) HasMailbox() bool { return len(p.Sertifikat) > 0 && p.DigitalPost != nil }

// Kontaktinformasjon is the person's notification addresses.
type Kontaktinformasjon struct {
	Epostadresse       string `json:"epostadresse,omitempty"`
	Mobiltelefonnummer string `json:"mobiltelefonnummer,omitempty"`
}

// DigitalPost is the person's mailbox.
type DigitalPost struct {
	Postkasseadresse            string `json:"postkasseadresse"`
	Postkasseleverandoeradresse string `json:"postkasseleverandoeradresse"`
}

// WirePerson is the JSON of one person as KRR sends it; exported for the simulator. It carries
// the raw number: never log it.
type WirePerson struct {
	Personidentifikator string              `json:"personidentifikator"`
	Reservasjon         string              `json:"reservasjon"`
	Status              string              `json:"status"`
	Varslingsstatus     string              `json:"varslingsstatus,omitempty"`
	Kontaktinformasjon  *Kontaktinformasjon `json:"kontaktinformasjon,omitempty"`
	DigitalPost         *DigitalPost        `json:"digital_post,omitempty"`
	Sertifikat          string              `json:"sertifikat,omitempty"`
	Spraak              string              `json:"spraak,omitempty"`
}

// Persons looks persons up with a bearer token (the SR forwards the IP's Maskinporten token) and
// asks for a signed answer. The result is in request order; numbers KRR leaves out are missing.
func (c *Client) Persons(ctx context.Context, bearer string, ids []ident.PersonID) ([]Person, error) {
	if len(ids) == 0 || len(ids) > 1000 {
		return nil, fmt.Errorf("%w: 1 to 1000 person numbers per lookup, got %d", ErrRejected, len(ids))
	}
	var reqBody struct {
		IDs []string `json:"personidentifikatorer"`
	}
	for _, id := range ids {
		reqBody.IDs = append(reqBody.IDs, id.Reveal())
	}
	b, err := json.Marshal(reqBody)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, c.cfg.BaseURL+"/rest/v1/personer", bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/jose")
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("looking up persons in krr: %w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := readBody(resp)
	if err != nil {
		return nil, fmt.Errorf("looking up persons in krr: %w", err)
	}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct == "application/jose" {
		if body, err = c.verify(body); err != nil {
			return nil, fmt.Errorf("verifying krr answer: %w", err)
		}
	}
	var ans struct {
		Personer []WirePerson `json:"personer"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, fmt.Errorf("%w: persons json: %w", ErrBadAnswer, err)
	}
	byNumber := make(map[string]WirePerson, len(ans.Personer))
	for _, w := range ans.Personer {
		if w.Personidentifikator == "" || w.Reservasjon == "" || w.Status == "" {
			// The SR requires these three.
			return nil, fmt.Errorf("%w: a person lacks personidentifikator, reservasjon or status", ErrBadAnswer)
		}
		byNumber[w.Personidentifikator] = w
	}
	out := make([]Person, 0, len(ids))
	for _, id := range ids {
		w, ok := byNumber[id.Reveal()]
		if !ok {
			continue
		}
		p := Person{ID: id, Reservasjon: w.Reservasjon, Status: w.Status, Varslingsstatus: w.Varslingsstatus,
			Kontaktinformasjon: w.Kontaktinformasjon, DigitalPost: w.DigitalPost, Spraak: w.Spraak}
		if w.Sertifikat != "" {
			cert, err := parseCert(w.Sertifikat)
			if err != nil {
				return nil, fmt.Errorf("%w: a person's certificate: %w", ErrBadAnswer, err)
			}
			p.Sertifikat = cert.Raw
		}
		out = append(out, p)
	}
	return out, nil
}

func (c *Client) verify(token []byte) ([]byte, error) {
	h, err := jws.Header(token)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadAnswer, err)
	}
	certs, err := jws.X5C(h)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadAnswer, err)
	}
	if c.cfg.Roots != nil {
		inter := x509.NewCertPool()
		for _, ic := range certs[1:] {
			inter.AddCert(ic)
		}
		if _, err := certs[0].Verify(x509.VerifyOptions{Roots: c.cfg.Roots, Intermediates: inter, CurrentTime: c.cfg.Now(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			return nil, fmt.Errorf("%w: signing certificate: %w", ErrBadAnswer, err)
		}
	}
	pub, ok := certs[0].PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: signing certificate has no rsa key", ErrBadAnswer)
	}
	payload, _, err := jws.Verify(token, pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadAnswer, err)
	}
	return payload, nil
}

func (c *Client) do(req *http.Request) ([]byte, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	return readBody(resp)
}

func readBody(resp *http.Response) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: reading answer: %w", ErrUnavailable, err)
	}
	switch {
	case resp.StatusCode >= 500:
		return nil, fmt.Errorf("status %d: %w", resp.StatusCode, ErrUnavailable)
	case resp.StatusCode >= 400:
		// The body is not quoted: it may echo person numbers.
		return nil, fmt.Errorf("status %d: %w", resp.StatusCode, ErrRejected)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("status %d: %w", resp.StatusCode, ErrBadAnswer)
	}
	return body, nil
}

// parseCert accepts base64 DER (KRR's form) or PEM.
func parseCert(s string) (*x509.Certificate, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "-----BEGIN") {
		s = strings.TrimSpace(s[strings.Index(s, "\n")+1:])
		if i := strings.Index(s, "-----END"); i >= 0 {
			s = s[:i]
		}
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		return nil, fmt.Errorf("certificate base64: %w", err)
	}
	return x509.ParseCertificate(der)
}

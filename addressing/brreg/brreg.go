// Package brreg is a client of the open Enhetsregisteret API (data.brreg.no,
// spec/addressing.md §7): main units first, then sub-units. The Service Registry simulator uses
// it to find entities; the resolver may use it after an SR 404 to say that an organisation was
// deleted, and to warn about a bankrupt one (§7.4; never to decide a channel).
//
// Organisation numbers are public data, so they may appear in errors and logs.
package brreg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/efm-go/efm/addressing/internal/baseurl"
)

// Errors callers branch on.
var (
	// ErrNotFound: neither enheter nor underenheter know the number (404).
	ErrNotFound = errors.New("not found in enhetsregisteret")
	// ErrRemoved: the unit was removed (410). Lookup still returns what the answer said
	// (Slettedato when given).
	ErrRemoved = errors.New("removed from enhetsregisteret")
	// ErrUnavailable: the register did not answer usefully (network error, timeout, 5xx,
	// unreadable body). Worth a retry.
	ErrUnavailable = errors.New("enhetsregisteret unavailable")
)

// Media types of the v2 API.
const (
	MediaEnhet      = "application/vnd.brreg.enhetsregisteret.enhet.v2+json"
	MediaUnderenhet = "application/vnd.brreg.enhetsregisteret.underenhet.v2+json"
)

// DefaultBaseURL is the production API.
const DefaultBaseURL = "https://data.brreg.no/enhetsregisteret/api"

// Config configures a Client.
type Config struct {
	// BaseURL up to and including /api, e.g. DefaultBaseURL or a brregsim server + "/enhetsregisteret/api".
	BaseURL string
	// HTTPClient defaults to a client with Timeout.
	HTTPClient *http.Client
	// Timeout per request; default 5 s, the SR's connect/read timeout.
	Timeout time.Duration
}

// Client looks up units. Safe for concurrent use.
type Client struct {
	base    string
	http    *http.Client
	timeout time.Duration
}

// New returns a Client. BaseURL must be an absolute http(s) URL.
func New(cfg Config) (*Client, error) {
	base, err := baseurl.Check("brreg", cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	c := &Client{base: base, http: cfg.HTTPClient, timeout: cfg.Timeout}
	if c.timeout <= 0 {
		c.timeout = 5 * time.Second
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: c.timeout}
	}
	return c, nil
}

// Address is a postal or business address.
type Address struct {
	Adresse       []string `json:"adresse,omitempty"`
	Postnummer    string   `json:"postnummer,omitempty"`
	Poststed      string   `json:"poststed,omitempty"`
	Land          string   `json:"land,omitempty"`
	Landkode      string   `json:"landkode,omitempty"`
	Kommune       string   `json:"kommune,omitempty"`
	Kommunenummer string   `json:"kommunenummer,omitempty"`
}

// Form is an organisation form.
type Form struct {
	Kode        string `json:"kode"`
	Beskrivelse string `json:"beskrivelse,omitempty"`
}

// Enhet is a main unit or sub-unit, the fields of spec/addressing.md §7.2.
type Enhet struct {
	Organisasjonsnummer  string   `json:"organisasjonsnummer"`
	Navn                 string   `json:"navn"`
	Organisasjonsform    *Form    `json:"organisasjonsform,omitempty"`
	Postadresse          *Address `json:"postadresse,omitempty"`
	Forretningsadresse   *Address `json:"forretningsadresse,omitempty"`
	Beliggenhetsadresse  *Address `json:"beliggenhetsadresse,omitempty"`
	Slettedato           string   `json:"slettedato,omitempty"`
	Nedleggelsesdato     string   `json:"nedleggelsesdato,omitempty"`
	Konkurs              bool     `json:"konkurs"`
	UnderAvvikling       bool     `json:"underAvvikling"`
	UnderTvangsavvikling bool     `json:"underTvangsavviklingEllerTvangsopplosning"`
	OverordnetEnhet      string   `json:"overordnetEnhet,omitempty"`
	// Underenhet is set by the client when the answer came from /underenheter.
	Underenhet bool `json:"-"`
}

// DeletedOn reports whether the unit counts as deleted on the given day: slettedato on or before
// it (project rule, spec/addressing.md §7.3).
func (e *Enhet) DeletedOn(day time.Time) (time.Time, bool) {
	if e == nil || e.Slettedato == "" {
		return time.Time{}, false
	}
	d, err := time.Parse(time.DateOnly, e.Slettedato)
	if err != nil {
		return time.Time{}, false
	}
	y, m, dd := day.Date()
	return d, !d.After(time.Date(y, m, dd, 0, 0, 0, 0, time.UTC))
}

// Distressed reports bankruptcy or winding-up: deliverable, but worth a warning.
func (e *Enhet) Distressed() bool {
	return e != nil && (e.Konkurs || e.UnderAvvikling || e.UnderTvangsavvikling)
}

// Address returns the postal address, falling back to the business address (§7.2).
func (e *Enhet) Address() *Address {
	if e.Postadresse != nil {
		return e.Postadresse
	}
	if e.Forretningsadresse != nil {
		return e.Forretningsadresse
	}
	return e.Beliggenhetsadresse
}

// Lookup returns the unit, asking enheter first and underenheter when that says 404.
func (c *Client) Lookup(ctx context.Context, orgnr string) (*Enhet, error) {
	e, err := c.get(ctx, "enheter", MediaEnhet, orgnr)
	if !errors.Is(err, ErrNotFound) {
		return e, err
	}
	e, err = c.get(ctx, "underenheter", MediaUnderenhet, orgnr)
	if e != nil {
		e.Underenhet = true
	}
	return e, err
}

func (c *Client) get(ctx context.Context, kind, media, orgnr string) (*Enhet, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/"+kind+"/"+url.PathEscape(orgnr), nil)
	if err != nil {
		return nil, fmt.Errorf("building enhetsregisteret request: %w", err)
	}
	req.Header.Set("Accept", media)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("looking up %s in enhetsregisteret %s: %w: %w", orgnr, kind, ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading enhetsregisteret answer for %s: %w: %w", orgnr, ErrUnavailable, err)
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusGone:
		var e Enhet
		if err := json.Unmarshal(body, &e); err != nil {
			if resp.StatusCode == http.StatusGone {
				return nil, fmt.Errorf("organisation %s: %w", orgnr, ErrRemoved)
			}
			return nil, fmt.Errorf("decoding enhetsregisteret answer for %s: %w: %w", orgnr, ErrUnavailable, err)
		}
		if resp.StatusCode == http.StatusGone {
			return &e, fmt.Errorf("organisation %s: %w", orgnr, ErrRemoved)
		}
		return &e, nil
	case http.StatusNotFound:
		return nil, fmt.Errorf("organisation %s in %s: %w", orgnr, kind, ErrNotFound)
	default:
		return nil, fmt.Errorf("looking up %s in enhetsregisteret %s: status %d: %w", orgnr, kind, resp.StatusCode, ErrUnavailable)
	}
}

// Package folkereg is a client of the Folkeregister gateway the Service Registry asks for print
// addresses (spec/channels.md §9.9). Only the SR simulator uses it; the integration point never
// calls Folkeregisteret. Answers are personal data: returned to the caller, never kept or logged.
package folkereg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/addressing/internal/baseurl"
)

// Errors callers branch on.
var (
	ErrNotFound    = errors.New("person not found in folkeregisteret")
	ErrUnavailable = errors.New("folkeregister gateway unavailable")
)

// Config configures a Client.
type Config struct {
	BaseURL    string
	APIKey     string // sent as X-API-Key
	HTTPClient *http.Client
	Timeout    time.Duration // default 5 s
}

// Client is safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client
}

// New returns a Client.
func New(cfg Config) (*Client, error) {
	var err error
	if cfg.BaseURL, err = baseurl.Check("folkereg", cfg.BaseURL); err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	c := &Client{cfg: cfg, http: cfg.HTTPClient}
	if c.http == nil {
		c.http = &http.Client{Timeout: cfg.Timeout}
	}
	return c, nil
}

// Name is a person's name.
type Name struct {
	Fornavn       string `json:"fornavn"`
	Mellomnavn    string `json:"mellomnavn,omitempty"`
	Etternavn     string `json:"etternavn"`
	ForkortetNavn string `json:"forkortetNavn,omitempty"`
}

// Full is "given [middle] family" (spec/addressing.md §4.5).
func (n Name) Full() string {
	return strings.Join(strings.Fields(n.Fornavn+" "+n.Mellomnavn+" "+n.Etternavn), " ")
}

// Postadresse is a postal address; absent for secret addresses.
type Postadresse struct {
	Adresselinje     []string `json:"adresselinje"`
	Postnummer       string   `json:"postnummer"`
	Poststed         string   `json:"poststed"`
	Landkode         string   `json:"landkode"`
	Adressegradering string   `json:"adressegradering,omitempty"`
}

// Person is the gateway's answer, without the number.
type Person struct {
	Navn        Name         `json:"navn"`
	Postadresse *Postadresse `json:"postadresse,omitempty"`
}

// Person looks up a person's name and postal address.
func (c *Client) Person(ctx context.Context, id ident.PersonID) (*Person, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.BaseURL+"/person/personadresse/"+id.Reveal(), nil)
	if err != nil {
		return nil, errors.New("building folkeregister request")
	}
	req.Header.Set("Accept", "application/json")
	if c.cfg.APIKey != "" {
		req.Header.Set("X-API-Key", c.cfg.APIKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// url.Error would quote the URL, which carries the number.
		return nil, fmt.Errorf("looking up person in folkeregisteret: %w", ErrUnavailable)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, ErrNotFound
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("looking up person in folkeregisteret: status %d: %w", resp.StatusCode, ErrUnavailable)
	}
	var p Person
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&p); err != nil {
		return nil, fmt.Errorf("decoding folkeregister answer: %w", ErrUnavailable)
	}
	return &p, nil
}

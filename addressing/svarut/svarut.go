// Package svarut is a client of KS SvarUt's address lookup (mottakersystem, spec/channels.md
// §9.9): which receiving systems an organisation has and at which security level. Only the
// Service Registry simulator uses it, to decide DPF (spec/addressing.md §4.3 step 4).
package svarut

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

// ErrUnavailable: network error, timeout, non-200 or an unreadable answer.
var ErrUnavailable = errors.New("svarut address lookup unavailable")

// Config configures a Client.
type Config struct {
	BaseURL string
	// IntegrasjonID and IntegrasjonPassord are the KS integration credentials (headers).
	IntegrasjonID, IntegrasjonPassord string
	HTTPClient                        *http.Client
	Timeout                           time.Duration // default 5 s
}

// Client is safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client
}

// New returns a Client.
func New(cfg Config) (*Client, error) {
	var err error
	if cfg.BaseURL, err = baseurl.Check("svarut", cfg.BaseURL); err != nil {
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

// MottakerSystem is one receiving system.
type MottakerSystem struct {
	ID                  string `json:"id"`
	Navn                string `json:"navn"`
	Organisasjonsnummer string `json:"organisasjonsnummer"`
	ForsendelseType     string `json:"forsendelseType"`
	Niva                int    `json:"niva"`
}

// MottakerSystemer returns the organisation's receiving systems (none is not an error).
func (c *Client) MottakerSystemer(ctx context.Context, bearer, orgnr string) ([]MottakerSystem, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		c.cfg.BaseURL+"/api/v2/mottakersystem?organisasjonsnummer="+url.QueryEscape(orgnr), nil)
	if err != nil {
		return nil, fmt.Errorf("building svarut request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	req.Header.Set("IntegrasjonId", c.cfg.IntegrasjonID)
	req.Header.Set("IntegrasjonPassord", c.cfg.IntegrasjonPassord)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("looking up %s in svarut: %w: %w", orgnr, ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("looking up %s in svarut: status %d: %w", orgnr, resp.StatusCode, ErrUnavailable)
	}
	var out struct {
		Systems []MottakerSystem `json:"mottakersystemer"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("decoding svarut answer for %s: %w: %w", orgnr, ErrUnavailable, err)
	}
	return out.Systems, nil
}

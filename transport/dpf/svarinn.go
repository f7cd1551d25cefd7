package dpf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/efm-go/efm/transport"
)

// SvarInnConfig configures a SvarInn client (channels.md §5.3).
type SvarInnConfig struct {
	// BaseURL is difi.move.fiks.inn.baseUrl
	// (https://svarut.ks.no/tjenester/svarinn). Required.
	BaseURL string
	// Username and Password are the receiving system's Basic credentials. Required.
	Username, Password string
	// HTTPClient; default http.DefaultClient.
	HTTPClient *http.Client
	// Timeout bounds listing and acknowledging (default 30 s); a download
	// only by the caller's context.
	Timeout time.Duration
}

// SvarInn is a client of one SvarInn receiving system. Safe for concurrent use.
type SvarInn struct {
	cfg  SvarInnConfig
	base *url.URL
}

// NewSvarInn checks cfg and returns the client.
func NewSvarInn(cfg SvarInnConfig) (*SvarInn, error) {
	var errs []error
	u, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if cfg.BaseURL == "" || err != nil || u.Host == "" {
		errs = append(errs, fmt.Errorf("difi.move.fiks.inn.baseUrl %q: want an absolute URL such as https://svarut.ks.no/tjenester/svarinn", cfg.BaseURL))
	}
	if cfg.Username == "" || cfg.Password == "" {
		errs = append(errs, errors.New("difi.move.fiks.inn.username and .password: want the SvarInn receiving system's credentials"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	return &SvarInn{cfg: cfg, base: u}, nil
}

// Shipment is one entry of hentNyeForsendelser (SvarInn's Forsendelse).
type Shipment struct {
	ID                           string            `json:"id"`
	Tittel                       string            `json:"tittel"`
	Date                         int64             `json:"date"` // ms since epoch
	Status                       string            `json:"status"`
	Niva                         string            `json:"niva"`
	Mottaker                     InnMottaker       `json:"mottaker"`
	SvarSendesTil                *InnSvarSendesTil `json:"svarSendesTil"`
	SvarPaForsendelse            string            `json:"svarPaForsendelse"`
	ForsendelseType              string            `json:"forsendelseType"`
	EksternRef                   string            `json:"eksternRef"`
	MetadataFraAvleverendeSystem *InnNoarkMetadata `json:"metadataFraAvleverendeSystem"`
	MetadataForImport            *InnNoarkMetadata `json:"metadataForImport"`
	Filmetadata                  []FilMetadata     `json:"filmetadata"`
	DownloadURL                  string            `json:"downloadUrl"`
}

// InnMottaker is the receiver as SvarInn describes it.
type InnMottaker struct {
	Navn     string `json:"navn"`
	Orgnr    string `json:"orgnr"`
	Adresse1 string `json:"adresse1"`
	Adresse2 string `json:"adresse2"`
	Adresse3 string `json:"adresse3"`
	Postnr   string `json:"postnr"`
	Poststed string `json:"poststed"`
	Land     string `json:"land"`
}

// InnSvarSendesTil is the sender's answer address. Fnr is a person number
// when the sender is a citizen: it never prints.
type InnSvarSendesTil struct {
	InnMottaker
	Fnr PersonOrOrg `json:"fnr"`
}

// InnNoarkMetadata is SvarInn's Noark metadata (dates in ms since epoch).
type InnNoarkMetadata struct {
	Sakssekvensnummer    int64      `json:"sakssekvensnummer"`
	Saksaar              int        `json:"saksaar"`
	Journalaar           int        `json:"journalaar"`
	Journalsekvensnummer int64      `json:"journalsekvensnummer"`
	Journalpostnummer    int64      `json:"journalpostnummer"`
	Journalposttype      string     `json:"journalposttype"`
	Journalstatus        string     `json:"journalstatus"`
	Journaldato          int64      `json:"journaldato"`
	DokumentetsDato      int64      `json:"dokumentetsDato"`
	Tittel               string     `json:"tittel"`
	Saksbehandler        string     `json:"saksbehandler"`
	EkstraMetadata       []Metadata `json:"ekstraMetadata"`
}

// FilMetadata describes one file of the shipment's ZIP.
type FilMetadata struct {
	Filnavn      string `json:"filnavn"`
	Mimetype     string `json:"mimetype"`
	Sha256hash   string `json:"sha256hash"`
	DokumentType string `json:"dokumentType"`
	Size         int64  `json:"size"`
}

// maxListing caps hentNyeForsendelser: at most 200 shipments, each a few KB
// of metadata.
const maxListing = 16 << 20

// New lists the shipments waiting for this receiving system (at most 200).
func (s *SvarInn) New(ctx context.Context) ([]Shipment, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	resp, err := s.do(ctx, http.MethodGet, s.base.String()+"/mottaker/hentNyeForsendelser", nil, "listing svarinn shipments")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxListing))
	if err != nil {
		return nil, fmt.Errorf("listing svarinn shipments: %w", err)
	}
	return ParseShipments(b)
}

// ParseShipments reads a hentNyeForsendelser answer. Real answers carry
// nulls the description does not declare; they read as empty. A shipment
// without a usable id or download URL is dropped: it can be neither fetched
// nor acknowledged.
func ParseShipments(b []byte) ([]Shipment, error) {
	var all []Shipment
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, fmt.Errorf("%w: reading svarinn shipments: %w", transport.ErrMalformed, err)
	}
	out := all[:0]
	for _, sh := range all {
		if sh.ID == "" || sh.DownloadURL == "" || strings.ContainsAny(sh.ID, "/?#%") {
			continue
		}
		out = append(out, sh)
	}
	return out, nil
}

// Download fetches a shipment's encrypted ZIP from the downloadUrl SvarInn
// gave. The URL must be on SvarInn's own host: the Basic credentials go
// nowhere else.
func (s *SvarInn) Download(ctx context.Context, sh Shipment) (io.ReadCloser, error) {
	u, err := url.Parse(sh.DownloadURL)
	if err != nil || u.Host != s.base.Host || u.Scheme != s.base.Scheme {
		return nil, fmt.Errorf("%w: download url of shipment %s is not on svarinn's host", transport.ErrMalformed, sh.ID)
	}
	resp, err := s.do(ctx, http.MethodGet, u.String(), nil, "downloading svarinn shipment")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Acknowledge is kvitterMottak: the shipment is received and leaves the list.
func (s *SvarInn) Acknowledge(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	resp, err := s.do(ctx, http.MethodPost, s.base.String()+"/kvitterMottak/forsendelse/"+url.PathEscape(id), nil,
		"acknowledging svarinn shipment")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Failed is mottakFeilet: permanent sends the shipment on by another channel
// (Altinn or post); otherwise it stays for a later attempt.
func (s *SvarInn) Failed(ctx context.Context, id, message string, permanent bool) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	body, err := json.Marshal(map[string]any{"feilmelding": message, "permanent": permanent})
	if err != nil {
		return err
	}
	resp, err := s.do(ctx, http.MethodPost, s.base.String()+"/mottakFeilet/forsendelse/"+url.PathEscape(id), body,
		"reporting failed svarinn import")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func (s *SvarInn) do(ctx context.Context, method, u string, body []byte, op string) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	req.SetBasicAuth(s.cfg.Username, s.cfg.Password)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if resp.StatusCode/100 != 2 {
		resp.Body.Close()
		return nil, &transport.StatusError{Op: op, StatusCode: resp.StatusCode}
	}
	return resp, nil
}

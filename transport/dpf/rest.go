package dpf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/efm-go/efm/transport"
)

// RESTConfig configures a RESTClient (channels.md §5.2).
type RESTConfig struct {
	// BaseURL is difi.move.fiks.ut.rest.endpointUrl, SvarUt's root
	// (https://svarut.ks.no); the client adds /api/v3/... Required.
	BaseURL string
	// KontoID is difi.move.fiks.ut.rest.kontoid: the sending account (a UUID). Required.
	KontoID string
	// IntegrasjonID and IntegrasjonPassord go as headers on every request. Required.
	IntegrasjonID, IntegrasjonPassord string
	// Tokens supplies the bearer token (scope ks:fiks, consumer_org = sender). Required.
	Tokens TokenSource
	// HTTPClient; default http.DefaultClient (RequestTimeout bounds calls).
	HTTPClient *http.Client
	// RequestTimeout bounds each call but the send, which only the caller's
	// context bounds (documents may be large). Default 30 s.
	RequestTimeout time.Duration
}

// RESTClient is the SvarUt REST client. It is safe for concurrent use.
type RESTClient struct {
	cfg  RESTConfig
	base string
}

// NewREST returns a RESTClient or every configuration problem at once, each
// naming its key.
func NewREST(cfg RESTConfig) (*RESTClient, error) {
	var errs []error
	u, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if cfg.BaseURL == "" || err != nil || u.Host == "" {
		errs = append(errs, fmt.Errorf("difi.move.fiks.ut.rest.endpointUrl %q: want an absolute URL such as https://svarut.ks.no", cfg.BaseURL))
	}
	if !isUUID(cfg.KontoID) {
		errs = append(errs, fmt.Errorf("difi.move.fiks.ut.rest.kontoid %q: want the SvarUt account id (a UUID)", cfg.KontoID))
	}
	if cfg.IntegrasjonID == "" {
		errs = append(errs, errors.New("difi.move.fiks.ut.rest.integrasjonId: want the KS integration id"))
	}
	if cfg.IntegrasjonPassord == "" {
		errs = append(errs, errors.New("difi.move.fiks.ut.rest.integrasjonPassord: want the KS integration password"))
	}
	if cfg.Tokens == nil {
		errs = append(errs, errors.New("dpf: Tokens is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	return &RESTClient{cfg: cfg, base: u.String()}, nil
}

// Send posts the shipment for sender (consumer_org) and returns SvarUt's id.
// With retry set (an earlier attempt may have reached SvarUt) it first looks
// the shipment up by its external reference and returns that one's id.
func (c *RESTClient) Send(ctx context.Context, sender string, f Forsendelse, retry bool) (string, error) {
	if id, err := earlierShipment(ctx, c.IDsByEksternRef, sender, f, retry); id != "" || err != nil {
		return id, err
	}
	meta, err := json.Marshal(f)
	if err != nil {
		return "", fmt.Errorf("encoding shipment: %w", err)
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() { pw.CloseWithError(writeMultipart(mw, meta, f.Dokumenter)) }()
	defer pr.Close()
	var out struct {
		ID string `json:"id"`
	}
	err = c.do(ctx, sender, http.MethodPost, "/api/v3/kontoer/"+c.cfg.KontoID+"/forsendelser/organisasjon", pr,
		mw.FormDataContentType(), &out, "sending shipment", false)
	if err != nil {
		return "", err
	}
	if !isUUID(out.ID) {
		return "", fmt.Errorf("sending shipment: svarut answered without an id")
	}
	return out.ID, nil
}

func writeMultipart(mw *multipart.Writer, meta []byte, docs []Dokument) error {
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="forsendelse"`)
	h.Set("Content-Type", "application/json")
	w, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := w.Write(meta); err != nil {
		return err
	}
	for _, d := range docs {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="dokumenter"; filename=%q`, d.Filnavn))
		h.Set("Content-Type", "application/octet-stream")
		if err := writePart(mw, h, d); err != nil {
			return err
		}
	}
	return mw.Close()
}

// writePart streams one document into its own part (REST multipart and
// SOAP's XOP package alike).
func writePart(mw *multipart.Writer, h textproto.MIMEHeader, d Dokument) error {
	w, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	rc, err := d.Open()
	if err != nil {
		return fmt.Errorf("opening document: %w", err)
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	return err
}

// Statuses returns the statuses of the given shipments (v2 status-sok).
func (c *RESTClient) Statuses(ctx context.Context, sender string, ids []string) ([]Status, error) {
	body, err := json.Marshal(map[string][]string{"forsendelseIds": ids})
	if err != nil {
		return nil, err
	}
	var out struct {
		Statuser []struct {
			ID                 string `json:"id"`
			Status             string `json:"status"`
			SisteStatusEndring string `json:"sisteStatusEndring"`
		} `json:"statuser"`
	}
	if err := c.do(ctx, sender, http.MethodPost, "/api/v2/kontoer/"+c.cfg.KontoID+"/forsendelser/status-sok",
		bytes.NewReader(body), "application/json", &out, "polling shipment statuses", true); err != nil {
		return nil, err
	}
	sts := make([]Status, 0, len(out.Statuser))
	for _, s := range out.Statuser {
		sts = append(sts, Status{ID: s.ID, Status: s.Status, At: s.SisteStatusEndring})
	}
	return sts, nil
}

// IDsByEksternRef returns the ids of the shipments with that external reference.
func (c *RESTClient) IDsByEksternRef(ctx context.Context, sender, ref string) ([]string, error) {
	var out struct {
		IDs []string `json:"forsendelseIds"`
	}
	err := c.do(ctx, sender, http.MethodGet, "/api/v2/kontoer/"+c.cfg.KontoID+"/forsendelser?eksternRef="+url.QueryEscape(ref),
		nil, "", &out, "looking up shipment by external reference", true)
	return out.IDs, err
}

// ForsendelseTyper lists the shipment types SvarUt knows.
func (c *RESTClient) ForsendelseTyper(ctx context.Context, sender string) ([]string, error) {
	var out struct {
		Typer []string `json:"forsendelsestyper"`
	}
	err := c.do(ctx, sender, http.MethodGet, "/api/v2/forsendelsestyper", nil, "", &out, "listing shipment types", true)
	return out.Typer, err
}

// do sends one request with the bearer token and integration headers and
// decodes a 200 answer into out.
func (c *RESTClient) do(ctx context.Context, sender, method, path string, body io.Reader, ctype string, out any, op string, bounded bool) error {
	if bounded {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.RequestTimeout)
		defer cancel()
	}
	tok, err := c.cfg.Tokens.Token(ctx, sender)
	if err != nil {
		return fmt.Errorf("%s: getting a maskinporten token: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("IntegrasjonId", c.cfg.IntegrasjonID)
	req.Header.Set("IntegrasjonPassord", c.cfg.IntegrasjonPassord)
	req.Header.Set("Accept", "application/json")
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return restError(op, resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(out); err != nil {
		return fmt.Errorf("%s: reading svarut's answer: %w", op, err)
	}
	return nil
}

// restError reads SvarUt's ErrorMessage: errorCode is safe to show; message
// may echo the request and stays in Detail.
func restError(op string, resp *http.Response) error {
	var em struct {
		Error     string `json:"error"`
		ErrorCode string `json:"errorCode"`
		Message   string `json:"message"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&em)
	title := em.ErrorCode
	if title == "" {
		title = em.Error
	}
	return &transport.StatusError{Op: op, StatusCode: resp.StatusCode, Title: title, Detail: em.Message}
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
				return false
			}
		}
	}
	return true
}

// Package dpi is the client of the DPI access point ("corner 2", spec
// channels.md §4): it builds the document package (XAdES ASiC-E in CMS),
// the business message (validated against the owners' JSON Schemas, signed
// as a compact JWS), sends both as multipart to the access point, polls the
// transport statuses and reads the receipts the mailbox supplier or the
// print service send back.
//
// Idempotency: the access point refuses a messageId it has seen. A send
// that may have reached it (its answer lost) is resolved by asking for the
// message's statuses first: if the access point knows the message, the
// earlier attempt got through.
//
// dpi imports neither the core nor addressing; tokens come through
// TokenSource (Maskinporten, scope digitalpostinnbygger:send).
package dpi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/efm-go/efm/transport"
)

// Scope is the Maskinporten scope of the access point.
const Scope = "digitalpostinnbygger:send"

// TokenSource hands out Maskinporten tokens acting for consumerOrg (""
// for the agency itself, as receipt calls do).
type TokenSource func(ctx context.Context, consumerOrg string) (string, error)

// Config configures a Client.
type Config struct {
	// BaseURL is difi.move.dpi.uri, e.g. https://sandbox1.ediex.no/api/v2/dpi. Required.
	BaseURL string
	Tokens  TokenSource // required
	// HTTPClient; default one with the 5 s connect timeout of §4.1.
	HTTPClient *http.Client
	// RequestTimeout bounds calls but the upload; default 60 s.
	RequestTimeout time.Duration
}

// Client talks to one access point. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base *url.URL
}

// New returns a Client or every configuration problem at once.
func New(cfg Config) (*Client, error) {
	var errs []error
	base, err := transport.BaseURL("dpi", "difi.move.dpi.uri", cfg.BaseURL)
	if err != nil {
		errs = append(errs, err)
	}
	if cfg.Tokens == nil {
		errs = append(errs, errors.New("dpi: Tokens is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Transport: transportWithTimeouts()}
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 60 * time.Second
	}
	return &Client{cfg: cfg, base: base}, nil
}

// Outgoing is one message for the access point.
type Outgoing struct {
	MessageID   string
	Channel     string // kanal
	ConsumerOrg string // the sending organisation, for the token's consumer_org
	// Token is the bearer token; it must be the one inside the business
	// message (maskinportentoken). Get it with Token first.
	Token string
	// JWS is the signed business message.
	JWS []byte
	// Package opens the CMS document package.
	Package func() (io.ReadCloser, error)
}

// Token fetches the bearer token a send uses, acting for consumerOrg.
func (c *Client) Token(ctx context.Context, consumerOrg string) (string, error) {
	return c.cfg.Tokens(ctx, consumerOrg)
}

// Send posts the message (§4.3 step 6). A 2xx means SENDT.
func (c *Client) Send(ctx context.Context, o Outgoing) error {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() { pw.CloseWithError(writeSend(mw, o)) }()
	u := c.url("/messages/out", url.Values{"kanal": {o.Channel}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, pr)
	if err != nil {
		pr.Close()
		return err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+o.Token)
	res, err := c.cfg.HTTPClient.Do(req)
	pr.Close()
	if err != nil {
		return fmt.Errorf("sending to the dpi access point: %w", err)
	}
	defer drain(res.Body)
	return statusError("sending to the dpi access point", res)
}

func writeSend(mw *multipart.Writer, o Outgoing) error {
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="forretningsmelding"; filename="sbd.jwt"`)
	h.Set("Content-Type", "application/jwt")
	w, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := w.Write(o.JWS); err != nil {
		return err
	}
	h = textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="dokumentpakke"; filename="asic.cms"`)
	h.Set("Content-Type", "application/cms")
	if w, err = mw.CreatePart(h); err != nil {
		return err
	}
	rc, err := o.Package()
	if err != nil {
		return fmt.Errorf("opening the document package: %w", err)
	}
	_, err = io.Copy(w, rc)
	rc.Close()
	if err != nil {
		return err
	}
	return mw.Close()
}

// Status is one access point status of a sent message (§4.5).
type Status struct {
	Status      string    `json:"status"`
	Beskrivelse string    `json:"beskrivelse,omitempty"`
	Timestamp   time.Time `json:"timestamp,omitzero"`
}

// Statuses returns the access point's statuses of messageID; a message it
// does not know gives transport.ErrNotFound.
func (c *Client) Statuses(ctx context.Context, messageID string) ([]Status, error) {
	var out []Status
	err := c.get(ctx, "polling dpi statuses", "/messages/out/"+url.PathEscape(messageID)+"/statuses", nil, &out)
	return out, err
}

// Item is one incoming message: a receipt as a JWS.
type Item struct {
	Forretningsmelding string  `json:"forretningsmelding"`
	Downloadurl        *string `json:"downloadurl"`
}

// Incoming lists the unread receipts of channel kanal for avsenderidentifikator
// ("" for those without), at most pageSize (§4.6).
func (c *Client) Incoming(ctx context.Context, kanal, avsenderidentifikator string, pageSize int) ([]Item, error) {
	q := url.Values{"kanal": {kanal}, "page_size": {fmt.Sprint(pageSize)}}
	if avsenderidentifikator != "" {
		q.Set("avsenderidentifikator", avsenderidentifikator)
	}
	var out []Item
	err := c.get(ctx, "polling dpi receipts", "/messages/in", q, &out)
	return out, err
}

// MarkRead marks an incoming message read; an unknown one is no error.
func (c *Client) MarkRead(ctx context.Context, messageID string) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	tok, err := c.cfg.Tokens(ctx, "")
	if err != nil {
		return fmt.Errorf("getting a maskinporten token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url("/messages/in/"+url.PathEscape(messageID)+"/read", nil), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("marking a dpi receipt read: %w", err)
	}
	defer drain(res.Body)
	if res.StatusCode == http.StatusNotFound {
		return nil
	}
	return statusError("marking a dpi receipt read", res)
}

func (c *Client) get(ctx context.Context, op, path string, q url.Values, into any) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	tok, err := c.cfg.Tokens(ctx, "")
	if err != nil {
		return fmt.Errorf("%s: getting a maskinporten token: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(path, q), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	res, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer drain(res.Body)
	if err := statusError(op, res); err != nil {
		return err
	}
	if res.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 32<<20)).Decode(into); err != nil {
		return fmt.Errorf("%w: %s: %w", transport.ErrMalformed, op, err)
	}
	return nil
}

func (c *Client) url(path string, q url.Values) string {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	if q != nil {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// statusError turns a non-2xx answer into a *transport.StatusError with the
// problem+json title.
func statusError(op string, res *http.Response) error {
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		return nil
	}
	se := &transport.StatusError{Op: op, StatusCode: res.StatusCode}
	var p transport.Problem
	if json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&p) == nil {
		se.Title, se.Detail = p.Title, p.Detail
	}
	return se
}

func drain(rc io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(rc, 1<<20))
	rc.Close()
}

// transportWithTimeouts is the default transport with the 5 s connect
// timeout of §4.1; the read and write timeouts are RequestTimeout's.
func transportWithTimeouts() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return t
}

// Package dpe is the client of eInnsyn's message service over Azure Service
// Bus's REST API (spec channels.md §7): it sends a message to a receiver's
// queue, receives from the own queue with peek-lock and completes what it
// has stored. Every request carries a shared access signature (§7.1).
// Receipts travel as status messages on the same queues, so receiving them
// is receiving messages.
//
// # Idempotency
//
// Send sets the Service Bus MessageId (in BrokerProperties) to the SBD's
// messageId, or messageId/status for a status message, whose messageId is
// the original's. With the queue's duplicate detection on, the bus accepts
// a repeated send and drops it, so a retry after a lost answer never makes
// a second delivery. The reference sends "BrokerProperties: {}"; the
// MessageId is a project choice (noted for spec channels.md §7.3). On the
// receiving side a message completed late (lock expired, redelivered) is a
// duplicate by messageId, which the core discards (§2.4 step 6).
//
// The package imports neither the core nor packaging; the SAS key comes
// through KeySource.
package dpe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/efm-go/efm/transport"
)

// KeySource supplies the SAS key name and key: from the SR's /sastoken
// (cached a day, persisted as fallback) or difi.move.nextmove.serviceBus.sasToken.
// When it also has Invalidate(), the client calls it after a 401 and tries
// once more, as the reference drops its key on a 401 from the bus.
type KeySource interface {
	SASKey(ctx context.Context) (keyName, key string, err error)
}

// StaticKey is a KeySource with a fixed key.
type StaticKey struct{ Name, Key string }

// SASKey returns the fixed key.
func (k StaticKey) SASKey(context.Context) (string, string, error) { return k.Name, k.Key, nil }

// Config configures a Client.
type Config struct {
	// BaseURL is the namespace, scheme included:
	// https://efm-dpe-qa.servicebus.windows.net (useHttps=false → http). Required.
	BaseURL string
	// Keys supplies the SAS key. Required.
	Keys KeySource
	// OwnQueue is where messages to us arrive; see OwnQueue. Required to receive.
	OwnQueue string
	// HTTPClient; default one with the reference's 15 s timeout.
	HTTPClient *http.Client
	// ReceiveWait is the long-poll timeout asked of the bus on an empty
	// queue; default 1 s (the poll runs every 20 s anyway).
	ReceiveWait time.Duration
	// Now is the clock for signatures; default time.Now.
	Now func() time.Time
}

// Client talks to one Service Bus namespace. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base *url.URL
}

// New returns a Client or every configuration problem at once.
func New(cfg Config) (*Client, error) {
	var errs []error
	base, err := transport.BaseURL("dpe", "difi.move.nextmove.serviceBus.baseUrl", cfg.BaseURL)
	if err != nil {
		errs = append(errs, err)
	}
	if cfg.Keys == nil {
		errs = append(errs, errors.New("dpe: Keys is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if cfg.ReceiveWait == 0 {
		cfg.ReceiveWait = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{cfg: cfg, base: base}, nil
}

// Queue names (spec channels.md §7.2).

// OwnQueue is nextbestqueue<orgnr><mode>; mode is innsyn, data or meeting.
func OwnQueue(orgnr, mode string) string { return "nextbestqueue" + orgnr + mode }

// ReceiverQueue is a receiver's queue: endpoint is the SR record's service.endpointUrl.
func ReceiverQueue(orgnr, endpoint string) string { return "nextbestqueue" + orgnr + endpoint }

// StatusQueue is where status messages for receiver go: receiptQueue if
// set, else by own mode (meeting → innsyn, innsyn → data, otherwise innsyn).
func StatusQueue(receiverOrgnr, receiptQueue, ownMode string) string {
	if receiptQueue != "" {
		return "nextbestqueue" + receiverOrgnr + receiptQueue
	}
	if ownMode == "innsyn" {
		return "nextbestqueue" + receiverOrgnr + "data"
	}
	return "nextbestqueue" + receiverOrgnr + "innsyn"
}

// KvitteringQueue is where an einnsyn_kvittering goes: receiptQueue if set,
// else data for an innsynskrav, otherwise innsyn.
func KvitteringQueue(receiverOrgnr, receiptQueue string, aboutInnsynskrav bool) string {
	switch {
	case receiptQueue != "":
		return "nextbestqueue" + receiverOrgnr + receiptQueue
	case aboutInnsynskrav:
		return "nextbestqueue" + receiverOrgnr + "data"
	}
	return "nextbestqueue" + receiverOrgnr + "innsyn"
}

// BrokerProperties is the Service Bus header of that name.
type BrokerProperties struct {
	MessageID      string `json:"MessageId,omitempty"`
	LockToken      string `json:"LockToken,omitempty"`
	SequenceNumber int64  `json:"SequenceNumber,omitempty"`
	DeliveryCount  int    `json:"DeliveryCount,omitempty"`
	LockedUntilUtc string `json:"LockedUntilUtc,omitempty"`
}

// DedupID is the Service Bus MessageId a message is sent with.
func DedupID(h transport.Header) string {
	if h.Type == transport.TypeStatus {
		return h.MessageID + "-" + h.Status
	}
	return h.MessageID
}

// Send puts the message on queue. cms is the encrypted package (RSAES-PKCS1-v1_5,
// §1.9.1), nil when there are no files; DPE messages are at most 2 MB, so
// it is held in memory. Success means SENDT.
func (c *Client) Send(ctx context.Context, queue string, sbd, cms []byte) error {
	h, err := transport.ParseHeader(sbd)
	if err != nil {
		return fmt.Errorf("reading outgoing sbd: %w", err)
	}
	body, err := EncodeEnvelope(sbd, cms)
	if err != nil {
		return fmt.Errorf("encoding service bus message: %w", err)
	}
	props, err := json.Marshal(BrokerProperties{MessageID: DedupID(h)})
	if err != nil {
		return fmt.Errorf("encoding broker properties: %w", err)
	}
	resp, err := c.do(ctx, "sending to service bus", http.MethodPost, []string{queue, "messages"}, nil, body,
		map[string]string{"BrokerProperties": string(props), "Content-Type": "application/json"})
	if err != nil {
		return err
	}
	drain(resp)
	return nil
}

// Message is one peek-locked message from the own queue.
type Message struct {
	SBD    []byte
	Header transport.Header
	// CMS is the encrypted package, nil when the message has no files.
	CMS        []byte
	Properties BrokerProperties
}

// Receive peek-locks the next message on the own queue; nil, nil when the
// queue is empty. A body that cannot be read comes back with
// transport.ErrMalformed and the Message (Properties only) so the caller
// can Complete it and move on.
func (c *Client) Receive(ctx context.Context) (*Message, error) {
	if c.cfg.OwnQueue == "" {
		return nil, errors.New("dpe: OwnQueue is not configured")
	}
	q := url.Values{"timeout": {fmt.Sprint(int(c.cfg.ReceiveWait / time.Second))}}
	resp, err := c.do(ctx, "receiving from service bus", http.MethodPost, []string{c.cfg.OwnQueue, "messages", "head"}, q, nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return nil, nil
	}
	m := &Message{}
	if err := json.Unmarshal([]byte(resp.Header.Get("BrokerProperties")), &m.Properties); err != nil || m.Properties.LockToken == "" {
		return nil, fmt.Errorf("%w: peek-lock answer without BrokerProperties", transport.ErrMalformed)
	}
	// 2 MB is the channel's size limit; base64 twice makes it 16/9 larger.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("reading service bus message: %w", err)
	}
	m.SBD, m.Header, m.CMS, err = DecodeEnvelope(body)
	if err != nil {
		return m, err
	}
	return m, nil
}

// Complete deletes a received message (§7.4 step 3), after it is stored.
func (c *Client) Complete(ctx context.Context, m *Message) error {
	resp, err := c.do(ctx, "completing service bus message", http.MethodDelete,
		[]string{c.cfg.OwnQueue, "messages", m.Properties.MessageID, m.Properties.LockToken}, nil, nil, nil)
	if err != nil {
		return err
	}
	drain(resp)
	return nil
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}

type invalidator interface{ Invalidate() }

// do sends a signed request to the path made of segments, each escaped on
// its own: message ids and lock tokens are opaque and may hold '/'.
func (c *Client) do(ctx context.Context, op, method string, segments []string, q url.Values, body []byte,
	headers map[string]string) (*http.Response, error) {
	u := *c.base
	raw := u.EscapedPath()
	for _, seg := range segments {
		u.Path += "/" + seg
		raw += "/" + url.PathEscape(seg)
	}
	u.RawPath = raw
	u.RawQuery = q.Encode()
	for attempt := 0; ; attempt++ {
		name, key, err := c.cfg.Keys.SASKey(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: getting sas key: %w", op, err)
		}
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		// Sign the resource without the query: the bus matches the
		// signed resource as a prefix of the request URI.
		res := u
		res.RawQuery = ""
		req.Header.Set("Authorization", Signature(res.String(), name, key, c.cfg.Now().Add(SASLifetime)))
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := c.cfg.HTTPClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return resp, nil
		}
		se := &transport.StatusError{Op: op, StatusCode: resp.StatusCode}
		drain(resp)
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			if inv, ok := c.cfg.Keys.(invalidator); ok {
				inv.Invalidate()
				continue
			}
		}
		return nil, se
	}
}

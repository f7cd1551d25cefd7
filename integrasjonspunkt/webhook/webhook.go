// Package webhook pushes message status events to the subscriptions of the
// local API (local-api.md §9): the ping on create, the filter language, and
// best-effort delivery with up to three retries, never blocking the caller.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/message"
	"github.com/efm-go/efm/integrasjonspunkt/sbd"
	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/internal/logattr"
)

// ErrFilter wraps every filter syntax error (constraint WebhookFilter).
var ErrFilter = errors.New("invalid webhook filter")

// Filter is a parsed filter expression: every name must match one of its
// values, case-insensitively (local-api.md §9.4).
type Filter map[string][]string

var filterNames = map[string]string{"status": "status", "serviceidentifier": "serviceIdentifier", "direction": "direction"}

// ParseFilter parses `part ("&" part)*`, `part = name "=" value ("," value)*`.
// An empty expression matches everything.
func ParseFilter(s string) (Filter, error) {
	f := Filter{}
	if strings.TrimSpace(s) == "" {
		return f, nil
	}
	for part := range strings.SplitSeq(s, "&") {
		name, vals, ok := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		if !ok {
			for _, op := range []string{"!=", ">", "<", "~"} {
				if strings.Contains(part, op) {
					return nil, fmt.Errorf("%w: unknown operator %q in %q", ErrFilter, op, part)
				}
			}
			return nil, fmt.Errorf("%w: %q is not name=value", ErrFilter, part)
		}
		if strings.ContainsAny(name, "!<>~") {
			return nil, fmt.Errorf("%w: unknown operator in %q", ErrFilter, part)
		}
		canon, known := filterNames[strings.ToLower(name)]
		if !known {
			return nil, fmt.Errorf("%w: unknown filter name %q", ErrFilter, name)
		}
		for v := range strings.SplitSeq(vals, ",") {
			v = strings.TrimSpace(v)
			if v == "" || strings.ContainsAny(v, "=") {
				return nil, fmt.Errorf("%w: empty or malformed value in %q", ErrFilter, part)
			}
			f[canon] = append(f[canon], v)
		}
	}
	return f, nil
}

// Match reports whether ev passes the filter.
func (f Filter) Match(ev message.StatusEvent) bool {
	for name, vals := range f {
		var got string
		switch name {
		case "status":
			got = ev.Status
		case "serviceIdentifier":
			got = ev.Service
		case "direction":
			got = ev.Direction
		}
		ok := false
		for _, v := range vals {
			if strings.EqualFold(v, got) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// Event is the body POSTed to a push endpoint (local-api.md §9.5).
type Event struct {
	CreatedTs         string `json:"createdTs"`
	Resource          string `json:"resource,omitempty"`
	Event             string `json:"event"`
	MessageID         string `json:"messageId,omitempty"`
	ConversationID    string `json:"conversationId,omitempty"`
	Direction         string `json:"direction,omitempty"`
	ServiceIdentifier string `json:"serviceIdentifier,omitempty"`
	Status            string `json:"status,omitempty"`
	Description       string `json:"description,omitempty"`
}

// Config configures a Notifier.
type Config struct {
	Store  *store.Store // must not be nil
	Logger *slog.Logger // must not be nil
	// Client posts the events; nil means one with 10 s timeouts (§9.5).
	Client *http.Client
	// Retries after the first attempt (default 3) and the first backoff
	// (default 1 s, doubling).
	Retries int
	Backoff time.Duration
	// Queue bounds the events waiting for delivery; more are dropped
	// (default 4096). Concurrency bounds deliveries in flight (default 16).
	Queue, Concurrency int
	Now                func() time.Time
}

// Notifier delivers status events to matching subscriptions. Notify never
// blocks; Run does the delivering.
type Notifier struct {
	cfg Config
	log *slog.Logger
	ch  chan message.StatusEvent
	wg  sync.WaitGroup

	mu     sync.Mutex
	subs   []store.Subscription // cached; nil means read again
	subsAt time.Time
}

// subsMaxAge bounds the subscription cache when a change bypasses
// Invalidate (another process writing the store).
const subsMaxAge = 30 * time.Second

// Invalidate drops the cached subscriptions; the API calls it after every
// change so the next event sees it.
func (n *Notifier) Invalidate() {
	n.mu.Lock()
	n.subs = nil
	n.mu.Unlock()
}

func (n *Notifier) subscriptions(ctx context.Context) ([]store.Subscription, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.subs != nil && time.Since(n.subsAt) < subsMaxAge {
		return n.subs, nil
	}
	subs, err := n.cfg.Store.AllSubscriptions(ctx)
	if err != nil {
		return nil, err
	}
	if subs == nil {
		subs = []store.Subscription{}
	}
	n.subs, n.subsAt = subs, time.Now()
	return subs, nil
}

// New returns a Notifier; start it with Run.
func New(cfg Config) *Notifier {
	if cfg.Retries == 0 {
		cfg.Retries = 3
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 4096
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.Client == nil {
		// A client system has one endpoint, which gets every delivery in
		// flight: keep a connection per delivery, not net/http's default of
		// two per host, which closed the rest after each event and dialled
		// again (issue 18).
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = cfg.Concurrency
		cfg.Client = &http.Client{Timeout: 20 * time.Second, Transport: t}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Notifier{cfg: cfg, log: cfg.Logger.With(logattr.Component("webhook")), ch: make(chan message.StatusEvent, cfg.Queue)}
}

// Notify queues ev for delivery, dropping it when the queue is full: webhooks
// are best effort and must never slow the pipeline (§9.5).
func (n *Notifier) Notify(ev message.StatusEvent) {
	select {
	case n.ch <- ev:
	default:
		n.log.Warn("webhook queue full; event dropped", logattr.MessageID(ev.MessageID))
	}
}

// Run delivers until ctx ends, then waits for deliveries in flight.
func (n *Notifier) Run(ctx context.Context) error {
	sem := make(chan struct{}, n.cfg.Concurrency)
	defer n.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-n.ch:
			subs, err := n.subscriptions(ctx)
			if err != nil {
				n.log.Warn("reading subscriptions", logattr.Err(err))
				continue
			}
			body := Event{CreatedTs: sbd.FormatTime(n.cfg.Now()), Resource: "messages", Event: "status", MessageID: ev.MessageID,
				ConversationID: ev.ConversationID, Direction: ev.Direction, ServiceIdentifier: ev.Service, Status: ev.Status,
				Description: ev.Description}
			for _, sub := range subs {
				if !Wants(sub, ev) {
					continue
				}
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return nil
				}
				n.wg.Add(1)
				go func() {
					defer func() { <-sem; n.wg.Done() }()
					n.deliver(ctx, sub.PushEndpoint, body)
				}()
			}
		}
	}
}

// Wants reports whether a subscription takes a status event (§9.3).
func Wants(sub store.Subscription, ev message.StatusEvent) bool {
	if sub.Resource != "all" && sub.Resource != "messages" {
		return false
	}
	if sub.Event != "all" && sub.Event != "status" {
		return false
	}
	f, err := ParseFilter(sub.Filter)
	return err == nil && f.Match(ev)
}

// deliver posts once and retries on connection errors, timeouts and 5xx with
// a doubling delay, then drops the event.
func (n *Notifier) deliver(ctx context.Context, endpoint string, ev Event) {
	delay := n.cfg.Backoff
	for attempt := 0; ; attempt++ {
		retry, err := n.post(ctx, endpoint, ev)
		if err == nil {
			return
		}
		if !retry || attempt >= n.cfg.Retries {
			n.log.Warn("webhook event dropped", logattr.MessageID(ev.MessageID), logattr.Err(err))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// Ping posts the ping event (§9.5).
func (n *Notifier) Ping(ctx context.Context, endpoint string) error {
	_, err := n.post(ctx, endpoint, Event{CreatedTs: sbd.FormatTime(n.cfg.Now()), Event: "ping"})
	return err
}

func (n *Notifier) post(ctx context.Context, endpoint string, ev Event) (retry bool, err error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(b))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.cfg.Client.Do(req)
	if err != nil {
		return true, fmt.Errorf("posting webhook: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	return resp.StatusCode >= 500, fmt.Errorf("posting webhook: endpoint answered %d", resp.StatusCode)
}

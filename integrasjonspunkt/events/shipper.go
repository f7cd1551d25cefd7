package events

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/efm-go/efm/internal/logattr"
)

// Row is one outbox row: one encoded event (Encode / Builder) and its type.
type Row struct {
	ID        int64
	Type      Type
	Body      []byte
	CreatedAt time.Time
}

// BacklogInfo describes what is waiting in the outbox.
type BacklogInfo struct {
	Count  int
	Bytes  int64     // sum of len(Body)
	Oldest time.Time // CreatedAt of the oldest row; zero when empty
}

// Outbox is what the shipper needs from the store's event_outbox table. The
// store inserts rows in the same transaction as the status row (operations.md
// §5.4) and implements these with the semantics stated on each method.
type Outbox interface {
	// Pending returns the oldest rows in ID order: at most limit rows, and
	// stopping before the sum of len(Body) would exceed maxBytes, except that
	// the first row is always returned so one large event cannot block the rest.
	Pending(ctx context.Context, limit, maxBytes int) ([]Row, error)
	// Delete removes the rows; ids not present are ignored.
	Delete(ctx context.Context, ids []int64) error
	// Reject moves a row to event_rejected with a short reason.
	Reject(ctx context.Context, id int64, reason string) error
	// Backlog counts the rows.
	Backlog(ctx context.Context) (BacklogInfo, error)
	// DropOldest deletes up to limit of the oldest rows of type t created
	// before olderThan (zero: any age) and returns how many and their bytes.
	DropOldest(ctx context.Context, t Type, olderThan time.Time, limit int) (n int, bytes int64, err error)
}

// Limits of operations.md §5.4 and §2.2.
const (
	DefaultMaxBatchEvents  = 500
	DefaultMaxBatchBytes   = 1 << 20
	DefaultFlushInterval   = 5 * time.Second
	DefaultMinBackoff      = time.Second
	DefaultMaxBackoff      = 15 * time.Minute
	DefaultMaxBacklogAge   = 30 * 24 * time.Hour
	DefaultMaxBacklogBytes = 256 << 20
	// DegradedBacklogAge and DegradedBacklogEvents make the central-log health
	// component DEGRADED (operations.md §2.2).
	DegradedBacklogAge    = time.Hour
	DegradedBacklogEvents = 10000
)

// ShipperConfig configures a Shipper. Zero durations and sizes take the defaults above.
type ShipperConfig struct {
	// URL is efm.events.url; batches go to URL + "/v1/events". Required.
	URL string
	// Client sends the batches. It must present the agency's business
	// certificate (MutualTLSClient). Required.
	Client *http.Client
	// Outbox is the store's event_outbox. Required.
	Outbox Outbox
	// Logger; nil discards.
	Logger *slog.Logger

	MaxBatchEvents  int
	MaxBatchBytes   int
	FlushInterval   time.Duration
	MinBackoff      time.Duration
	MaxBackoff      time.Duration
	MaxBacklogAge   time.Duration // efm.events.max-backlog-age
	MaxBacklogBytes int64         // efm.events.max-backlog-bytes

	// Now and Sleep are the clock; nil means the real one. Sleep returns
	// ctx.Err() when ctx ends first. Tests inject them to pass hours in a moment.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// MutualTLSClient is an HTTP client that presents cert (the business
// certificate) and trusts roots for the central service; nil roots means the
// system pool.
func MutualTLSClient(cert tls.Certificate, roots *x509.CertPool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      roots,
		MinVersion:   tls.VersionTLS12,
	}
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// Metrics are the shipper's counters; all are totals since start except
// Backlog*, which are from the last check.
type Metrics struct {
	ShippedEvents   int64
	ShippedBatches  int64
	RejectedEvents  int64 // moved to event_rejected after a 4xx
	SendErrors      int64 // failed batch attempts (5xx, network, auth)
	DroppedEvents   map[Type]int64
	BacklogEvents   int64 // efm_central_log_backlog_events
	BacklogOldest   time.Time
	LastSuccess     time.Time // efm_central_log_last_success_timestamp_seconds
	ConsecutiveFail int64
}

// Shipper drains the outbox to pakkesporing: at-least-once, in order,
// batched; the central side deduplicates on event_id.
type Shipper struct {
	cfg ShipperConfig
	log *slog.Logger

	shipped, batches, rejected, sendErrors, fails atomic.Int64
	backlog                                       atomic.Int64
	lastSuccess, backlogOldest                    atomic.Int64 // unix nanos, 0 = never
	mu                                            sync.Mutex
	dropped                                       map[Type]int64

	// schemaOK is set once central's /v1/schema lists SchemaVersion.
	schemaOK atomic.Bool

	// batchLimit shrinks while bisecting a batch the server refused as a
	// whole without naming the bad event; only Run's goroutine touches it.
	batchLimit int
}

// ErrConfig wraps every configuration problem NewShipper reports.
var ErrConfig = errors.New("invalid shipper configuration")

// NewShipper checks cfg and fills in the defaults.
func NewShipper(cfg ShipperConfig) (*Shipper, error) {
	var errs []error
	if cfg.URL == "" || !(strings.HasPrefix(cfg.URL, "https://") || strings.HasPrefix(cfg.URL, "http://")) {
		errs = append(errs, fmt.Errorf("%w: efm.events.url must be an http(s) URL", ErrConfig))
	}
	if cfg.Client == nil {
		errs = append(errs, fmt.Errorf("%w: an HTTP client with the business certificate is required", ErrConfig))
	}
	if cfg.Outbox == nil {
		errs = append(errs, fmt.Errorf("%w: the outbox is required", ErrConfig))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.MaxBatchEvents, DefaultMaxBatchEvents)
	def(&cfg.MaxBatchBytes, DefaultMaxBatchBytes)
	defd(&cfg.FlushInterval, DefaultFlushInterval)
	defd(&cfg.MinBackoff, DefaultMinBackoff)
	defd(&cfg.MaxBackoff, DefaultMaxBackoff)
	defd(&cfg.MaxBacklogAge, DefaultMaxBacklogAge)
	if cfg.MaxBacklogBytes <= 0 {
		cfg.MaxBacklogBytes = DefaultMaxBacklogBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Shipper{
		cfg: cfg, log: log.With(logattr.Component("events/shipper")),
		dropped: map[Type]int64{}, batchLimit: cfg.MaxBatchEvents,
	}, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run ships until ctx ends: a full batch is followed at once by the next, a
// partial one waits FlushInterval, a failure waits an exponential backoff
// capped at MaxBackoff. It returns nil when ctx ends.
func (s *Shipper) Run(ctx context.Context) error {
	var enforced time.Time
	for ctx.Err() == nil {
		// The limits are checked once per flush interval, not per batch: a
		// large backlog drains in hundreds of batches.
		if now := s.cfg.Now(); now.Sub(enforced) >= s.cfg.FlushInterval {
			enforced = now
			if err := s.EnforceBacklogLimits(ctx); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "enforcing central log backlog limits", logattr.Err(err))
			}
		}
		_, full, err := s.ShipOnce(ctx)
		var wait time.Duration
		switch {
		case err != nil:
			wait = s.backoff()
			s.log.WarnContext(ctx, "shipping events to central log", logattr.Err(err),
				logattr.Duration("retry_in_seconds", wait))
		case full:
			continue
		default:
			wait = s.cfg.FlushInterval
		}
		if err := s.cfg.Sleep(ctx, wait); err != nil {
			break
		}
	}
	return nil
}

// backoff doubles from MinBackoff per consecutive failure, capped at MaxBackoff.
func (s *Shipper) backoff() time.Duration {
	d := s.cfg.MinBackoff
	for i := int64(1); i < s.fails.Load() && d < s.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, s.cfg.MaxBackoff)
}

// IngestResponse is pakkesporing's answer to POST /v1/events: 200 when every
// event was stored or already known, 422 when some were rejected (the rest
// are stored and the shipper may delete them).
type IngestResponse struct {
	Accepted   int             `json:"accepted"`
	Duplicates int             `json:"duplicates"`
	Rejected   []RejectedEvent `json:"rejected,omitempty"`
}

// RejectedEvent names one refused event by its line in the batch (0-based)
// and the field at fault. Error never echoes the value.
type RejectedEvent struct {
	Line    int    `json:"line"`
	EventID string `json:"event_id,omitempty"`
	Field   string `json:"field,omitempty"`
	Error   string `json:"error"`
}

// ErrSend is wrapped by a batch the central service did not take (5xx,
// network, authentication); the batch stays in the outbox.
var ErrSend = errors.New("central log did not accept the batch")

// ShipOnce sends one batch. full says the batch was at a limit, so more may be
// waiting. A 4xx for single events moves them to event_rejected and is not an
// error; an error leaves the batch in the outbox for the next try.
func (s *Shipper) ShipOnce(ctx context.Context) (sent int, full bool, err error) {
	rows, err := s.cfg.Outbox.Pending(ctx, s.batchLimit, s.cfg.MaxBatchBytes)
	if err != nil {
		return 0, false, fmt.Errorf("reading event outbox: %w", err)
	}
	if len(rows) == 0 {
		s.batchLimit = s.cfg.MaxBatchEvents
		s.fails.Store(0)
		s.updateBacklog(ctx)
		return 0, false, nil
	}
	size := 0
	for _, r := range rows {
		size += len(r.Body) + 1
	}
	full = len(rows) >= s.batchLimit || size >= s.cfg.MaxBatchBytes*9/10

	if !s.schemaOK.Load() {
		if err := s.checkSchema(ctx); err != nil {
			return s.failed(err)
		}
	}
	code, resp, err := s.post(ctx, rows)
	if err != nil {
		return s.failed(err)
	}
	switch {
	case code >= 200 && code < 300:
		if err := s.cfg.Outbox.Delete(ctx, ids(rows)); err != nil {
			return 0, false, fmt.Errorf("deleting shipped events: %w", err)
		}
		s.succeeded(len(rows))
		bisecting := s.batchLimit < s.cfg.MaxBatchEvents
		s.batchLimit = s.cfg.MaxBatchEvents
		return len(rows), full || bisecting, nil

	case (code == http.StatusUnprocessableEntity || code == http.StatusBadRequest) && resp != nil && len(resp.Rejected) > 0:
		bad := map[int]RejectedEvent{}
		for _, r := range resp.Rejected {
			if r.Line >= 0 && r.Line < len(rows) {
				bad[r.Line] = r
			}
		}
		if len(bad) == 0 {
			return s.failed(fmt.Errorf("%w: status %d naming no event of the batch", ErrSend, code))
		}
		keep := make([]int64, 0, len(rows))
		for i, r := range rows {
			rej, ok := bad[i]
			if !ok {
				keep = append(keep, r.ID)
				continue
			}
			if err := s.cfg.Outbox.Reject(ctx, r.ID, rejectReason(code, rej)); err != nil {
				return 0, false, fmt.Errorf("moving rejected event: %w", err)
			}
			s.rejected.Add(1)
			s.log.ErrorContext(ctx, "central log rejected an event", slog.String("event_type", string(r.Type)),
				slog.String("field", rej.Field))
		}
		if err := s.cfg.Outbox.Delete(ctx, keep); err != nil {
			return 0, false, fmt.Errorf("deleting shipped events: %w", err)
		}
		s.succeeded(len(keep))
		return len(keep), true, nil

	case code == http.StatusBadRequest || code == http.StatusUnprocessableEntity || code == http.StatusRequestEntityTooLarge:
		// Refused as a whole without naming an event: halve until the one
		// bad event is alone, then set it aside so it never blocks the rest.
		if len(rows) == 1 {
			if err := s.cfg.Outbox.Reject(ctx, rows[0].ID, fmt.Sprintf("http %d", code)); err != nil {
				return 0, false, fmt.Errorf("moving rejected event: %w", err)
			}
			s.rejected.Add(1)
			s.batchLimit = s.cfg.MaxBatchEvents
			return 0, true, nil
		}
		s.batchLimit = max(1, len(rows)/2)
		return 0, true, nil

	default:
		// 401/403 (certificate), 404, 408, 429 and 5xx: nothing is wrong with
		// the events themselves, so keep them and retry.
		return s.failed(fmt.Errorf("%w: status %d", ErrSend, code))
	}
}

func rejectReason(code int, r RejectedEvent) string {
	reason := fmt.Sprintf("http %d", code)
	if r.Field != "" {
		reason += " field " + r.Field
	}
	if r.Error != "" {
		reason += ": " + r.Error
	}
	if len(reason) > 200 {
		reason = reason[:200]
	}
	return reason
}

func (s *Shipper) failed(err error) (int, bool, error) {
	s.sendErrors.Add(1)
	s.fails.Add(1)
	return 0, false, err
}

func (s *Shipper) succeeded(n int) {
	s.shipped.Add(int64(n))
	s.batches.Add(1)
	s.fails.Store(0)
	s.lastSuccess.Store(s.cfg.Now().UnixNano())
}

func ids(rows []Row) []int64 {
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = r.ID
	}
	return out
}

// ErrSchemaNotAnnounced means central's /v1/schema does not list the schema
// version this binary writes (operations.md §6 rule 8): the events wait in
// the outbox until central is upgraded.
var ErrSchemaNotAnnounced = errors.New("central log does not announce this event schema version")

// checkSchema asks central which schema versions it accepts.
func (s *Shipper) checkSchema(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.URL+"/v1/schema", nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSend, err)
	}
	res, err := s.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: reading schema listing: %w", ErrSend, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: schema listing status %d", ErrSend, res.StatusCode)
	}
	var listing struct {
		Supported []int `json:"supported"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, maxResponseBytes)).Decode(&listing); err != nil {
		return fmt.Errorf("%w: reading schema listing: %w", ErrSend, err)
	}
	if !slices.Contains(listing.Supported, SchemaVersion) {
		return fmt.Errorf("%w: version %d, central lists %v", ErrSchemaNotAnnounced, SchemaVersion, listing.Supported)
	}
	s.schemaOK.Store(true)
	return nil
}

// maxResponseBytes caps what we read of the central answer.
const maxResponseBytes = 1 << 20

func (s *Shipper) post(ctx context.Context, rows []Row) (int, *IngestResponse, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for _, r := range rows {
		zw.Write(r.Body)
		zw.Write([]byte{'\n'})
	}
	if err := zw.Close(); err != nil {
		return 0, nil, fmt.Errorf("compressing batch: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL+"/v1/events", &buf)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %w", ErrSend, err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Content-Encoding", "gzip")
	res, err := s.cfg.Client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %w", ErrSend, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxResponseBytes))
	if err != nil {
		return 0, nil, fmt.Errorf("%w: reading response: %w", ErrSend, err)
	}
	var ir IngestResponse
	if json.Unmarshal(body, &ir) != nil {
		return res.StatusCode, nil, nil
	}
	return res.StatusCode, &ir, nil
}

// EnforceBacklogLimits drops what the backlog may no longer hold
// (operations.md §5.4): rows older than MaxBacklogAge, then, while the
// backlog is over MaxBacklogBytes, the oldest rows by type in Types order
// (heartbeats first, message.status last). Every drop is counted.
func (s *Shipper) EnforceBacklogLimits(ctx context.Context) error {
	cutoff := s.cfg.Now().Add(-s.cfg.MaxBacklogAge)
	for _, t := range Types {
		n, _, err := s.cfg.Outbox.DropOldest(ctx, t, cutoff, 1<<30)
		if err != nil {
			return fmt.Errorf("dropping events older than the backlog age: %w", err)
		}
		s.countDrop(ctx, t, n)
	}
	b, err := s.cfg.Outbox.Backlog(ctx)
	if err != nil {
		return fmt.Errorf("measuring event backlog: %w", err)
	}
	over := b.Bytes - s.cfg.MaxBacklogBytes
	for _, t := range Types {
		for over > 0 {
			n, freed, err := s.cfg.Outbox.DropOldest(ctx, t, time.Time{}, 1000)
			if err != nil {
				return fmt.Errorf("dropping events over the backlog size: %w", err)
			}
			s.countDrop(ctx, t, n)
			over -= freed
			if n == 0 {
				break
			}
		}
	}
	s.updateBacklog(ctx)
	return nil
}

func (s *Shipper) countDrop(ctx context.Context, t Type, n int) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	s.dropped[t] += int64(n)
	s.mu.Unlock()
	s.log.WarnContext(ctx, "dropped events from central log backlog", slog.String("event_type", string(t)),
		slog.Int("count", n))
}

func (s *Shipper) updateBacklog(ctx context.Context) {
	b, err := s.cfg.Outbox.Backlog(ctx)
	if err != nil {
		return
	}
	s.backlog.Store(int64(b.Count))
	if b.Count == 0 || b.Oldest.IsZero() {
		s.backlogOldest.Store(0)
	} else {
		s.backlogOldest.Store(b.Oldest.UnixNano())
	}
}

// Metrics returns a snapshot of the counters.
func (s *Shipper) Metrics() Metrics {
	m := Metrics{
		ShippedEvents:   s.shipped.Load(),
		ShippedBatches:  s.batches.Load(),
		RejectedEvents:  s.rejected.Load(),
		SendErrors:      s.sendErrors.Load(),
		BacklogEvents:   s.backlog.Load(),
		ConsecutiveFail: s.fails.Load(),
		DroppedEvents:   map[Type]int64{},
	}
	if v := s.lastSuccess.Load(); v != 0 {
		m.LastSuccess = time.Unix(0, v).UTC()
	}
	if v := s.backlogOldest.Load(); v != 0 {
		m.BacklogOldest = time.Unix(0, v).UTC()
	}
	s.mu.Lock()
	for t, n := range s.dropped {
		m.DroppedEvents[t] = n
	}
	s.mu.Unlock()
	return m
}

// Health is the central-log component of /manage/health.
type Health struct {
	Status        string    `json:"status"` // UP or DEGRADED; never DOWN: the daemon still works
	BacklogEvents int       `json:"backlog_events"`
	OldestAge     string    `json:"oldest_age,omitempty"`
	LastSuccess   time.Time `json:"last_success,omitzero"`
	Reason        string    `json:"reason,omitempty"`
}

// Health reads the backlog now: DEGRADED when its oldest event is older than
// an hour or it holds more than 10 000 events (operations.md §2.2).
func (s *Shipper) Health(ctx context.Context) Health {
	h := Health{Status: "UP"}
	if v := s.lastSuccess.Load(); v != 0 {
		h.LastSuccess = time.Unix(0, v).UTC()
	}
	b, err := s.cfg.Outbox.Backlog(ctx)
	if err != nil {
		h.Status, h.Reason = "DEGRADED", "event outbox unreadable"
		return h
	}
	h.BacklogEvents = b.Count
	if b.Count > 0 && !b.Oldest.IsZero() {
		age := s.cfg.Now().Sub(b.Oldest)
		h.OldestAge = age.Truncate(time.Second).String()
		if age > DegradedBacklogAge {
			h.Status, h.Reason = "DEGRADED", "central log backlog older than 1h: is the firewall to efm.events.url open?"
		}
	}
	if b.Count > DegradedBacklogEvents {
		h.Status, h.Reason = "DEGRADED", "central log backlog above 10000 events"
	}
	return h
}

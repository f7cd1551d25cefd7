package events_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/pakkesporing"
	"github.com/efm-go/efm/pakkesporing/pakkesporingtest"
)

const (
	org      = "991825827"
	receiver = "974760673"
)

var start = time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)

func builder(t testing.TB, now func() time.Time) *events.Builder {
	k, err := events.NewPseudonymKey(bytes.Repeat([]byte{9}, events.KeySize))
	require.NoError(t, err)
	b, err := events.NewBuilder(events.BuilderConfig{
		InstallationID: events.NewID(), OrgNr: org, Version: "1.0.0", Key: k, Now: now,
	})
	require.NoError(t, err)
	return b
}

// fill puts n message.status events in the outbox, as the store does in the
// status transactions, and returns their event ids.
func fill(t testing.TB, o *events.SQLiteOutbox, b *events.Builder, n int) []string {
	t.Helper()
	ids := make([]string, 0, n)
	for range n {
		typ, body, err := b.MessageStatus(events.StatusInput{
			MessageID: events.NewID(), ConversationID: events.NewID(), Direction: events.Outgoing,
			Service: events.DPO, Status: events.Sendt, SenderOrgNr: org,
			Receiver: events.OrganisationReceiver(receiver), Client: "P360/7.2",
		})
		require.NoError(t, err)
		require.NoError(t, o.Insert(context.Background(), typ, body))
		var h events.Header
		require.NoError(t, json.Unmarshal(body, &h))
		ids = append(ids, h.EventID)
	}
	return ids
}

// centralEventIDs pages through every event pakkesporing holds.
func centralEventIDs(t testing.TB, ps *pakkesporingtest.Instance) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for {
		req, err := http.NewRequest(http.MethodGet, ps.URL+"/v1/events?limit=1000&cursor="+url.QueryEscape(cursor), nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+pakkesporingtest.Token)
		res, err := ps.OpsClient().Do(req)
		require.NoError(t, err)
		var p pakkesporing.EventPage
		require.NoError(t, json.NewDecoder(res.Body).Decode(&p))
		res.Body.Close()
		for _, e := range p.Events {
			var h events.Header
			require.NoError(t, json.Unmarshal(e.Event, &h))
			ids = append(ids, h.EventID)
		}
		if p.NextCursor == "" {
			return ids
		}
		cursor = p.NextCursor
	}
}

// batchLog records what reached pakkesporing and what it answered.
type batchLog struct {
	mu        sync.Mutex
	lines     []int
	answers   []events.IngestResponse
	loseNext  int    // answers to swallow after the batch is stored
	bareBadIf string // answer a proxy-style bare 400 to batches containing this
}

func (l *batchLog) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/events" {
			next.ServeHTTP(w, r)
			return
		}
		raw, _ := io.ReadAll(r.Body)
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			http.Error(w, "bad gzip", http.StatusBadRequest)
			return
		}
		plain, _ := io.ReadAll(zr)
		n := 0
		for sc := bufio.NewScanner(bytes.NewReader(plain)); sc.Scan(); {
			n++
		}
		l.mu.Lock()
		l.lines = append(l.lines, n)
		bad := l.bareBadIf != "" && bytes.Contains(plain, []byte(l.bareBadIf))
		lose := l.loseNext > 0
		if lose {
			l.loseNext--
		}
		l.mu.Unlock()
		if bad {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(raw))
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var ir events.IngestResponse
		_ = json.Unmarshal(rec.Body.Bytes(), &ir)
		l.mu.Lock()
		l.answers = append(l.answers, ir)
		l.mu.Unlock()
		if lose {
			// Stored centrally, but the answer never reaches the daemon.
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
}

func (l *batchLog) duplicates() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, a := range l.answers {
		n += a.Duplicates
	}
	return n
}

func newShipper(t testing.TB, ps *pakkesporingtest.Instance, o events.Outbox, clk *events.FakeClock, edit func(*events.ShipperConfig)) *events.Shipper {
	t.Helper()
	cfg := events.ShipperConfig{
		URL:    ps.URL,
		Client: events.MutualTLSClient(ps.CA.BusinessCert(t, org), ps.CA.Pool),
		Outbox: o,
		Now:    clk.Now,
		Sleep:  clk.Sleep,
	}
	if edit != nil {
		edit(&cfg)
	}
	s, err := events.NewShipper(cfg)
	require.NoError(t, err)
	return s
}

// runUntilEmpty runs the shipper until the outbox is empty (real time bound).
func runUntilEmpty(t *testing.T, s *events.Shipper, o *events.SQLiteOutbox) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	require.Eventually(t, func() bool { return o.Count(t) == 0 }, 45*time.Second, 20*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
}

// TestShipper_CentralDownTenMinutes is must-show 2: pakkesporing is down for
// ten minutes; nothing is lost, and the batch whose answer was lost when it
// came back is stored once.
func TestShipper_CentralDownTenMinutes(t *testing.T) {
	clk := events.NewFakeClock(start)
	o := events.NewSQLiteOutbox(t, clk.Now)
	log := &batchLog{loseNext: 1}
	first := pakkesporingtest.New(t, pakkesporingtest.Options{Config: pakkesporing.Config{Now: clk.Now}})
	ca, dbPath, addr := first.CA, first.DBPath, first.Addr
	first.Stop(t) // down from the start

	var mu sync.Mutex
	var back *pakkesporingtest.Instance
	clk.OnSleep = func(now time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if back == nil && now.Sub(start) >= 10*time.Minute {
			back = pakkesporingtest.New(t, pakkesporingtest.Options{Config: pakkesporing.Config{Now: clk.Now}, CA: ca, DBPath: dbPath, Addr: addr, Middleware: log.middleware})
		}
	}
	ids := fill(t, o, builder(t, clk.Now), 1200)
	s := newShipper(t, first, o, clk, nil)

	// While down, the daemon keeps everything and reports it.
	_, _, err := s.ShipOnce(context.Background())
	require.ErrorIs(t, err, events.ErrSend)
	assert.Equal(t, 1200, o.Count(t))

	runUntilEmpty(t, s, o)

	mu.Lock()
	require.NotNil(t, back, "pakkesporing came back")
	mu.Unlock()
	got := centralEventIDs(t, back)
	assert.Len(t, got, 1200, "no event lost, none stored twice")
	assert.ElementsMatch(t, ids, got)
	assert.Equal(t, 500, log.duplicates(), "the batch whose answer was lost came again and was ignored")

	var waited time.Duration
	sleeps := clk.Sleeps()
	for _, d := range sleeps {
		assert.LessOrEqual(t, d, events.DefaultMaxBackoff)
		waited += d
	}
	assert.GreaterOrEqual(t, waited, 10*time.Minute)
	// The ShipOnce above was the first failure, so Run starts at the second step.
	assert.Equal(t, []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second}, sleeps[:3], "exponential backoff")
	m := s.Metrics()
	assert.EqualValues(t, 1200, m.ShippedEvents)
	assert.GreaterOrEqual(t, m.SendErrors, int64(10))
	assert.Zero(t, m.RejectedEvents)
	assert.Equal(t, "UP", s.Health(context.Background()).Status)
}

func TestShipper_BackoffCapAndHealth(t *testing.T) {
	clk := events.NewFakeClock(start)
	o := events.NewSQLiteOutbox(t, clk.Now)
	ps := pakkesporingtest.New(t, pakkesporingtest.Options{Config: pakkesporing.Config{Now: clk.Now}})
	ca, dbPath, addr := ps.CA, ps.DBPath, ps.Addr
	ps.Stop(t)
	fill(t, o, builder(t, clk.Now), 3)
	s := newShipper(t, ps, o, clk, nil)

	// Three hours down: the backoff reaches its 15-minute cap.
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	clk.OnSleep = func(now time.Time) {
		if now.Sub(start) > 3*time.Hour {
			once.Do(cancel)
		}
	}
	require.NoError(t, s.Run(ctx))
	sleeps := clk.Sleeps()
	assert.Equal(t, events.DefaultMaxBackoff, sleeps[len(sleeps)-1])
	for _, d := range sleeps {
		assert.LessOrEqual(t, d, events.DefaultMaxBackoff)
	}
	h := s.Health(context.Background())
	assert.Equal(t, "DEGRADED", h.Status, "backlog older than an hour")
	assert.Equal(t, 3, h.BacklogEvents)

	clk.OnSleep = nil
	back := pakkesporingtest.New(t, pakkesporingtest.Options{Config: pakkesporing.Config{Now: clk.Now}, CA: ca, DBPath: dbPath, Addr: addr})
	_, _, err := s.ShipOnce(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "UP", s.Health(context.Background()).Status)
	assert.Len(t, centralEventIDs(t, back), 3)
}

func TestShipper_BatchesAndFlushInterval(t *testing.T) {
	clk := events.NewFakeClock(start)
	o := events.NewSQLiteOutbox(t, clk.Now)
	log := &batchLog{}
	ps := pakkesporingtest.New(t, pakkesporingtest.Options{Config: pakkesporing.Config{Now: clk.Now}, Middleware: log.middleware})
	fill(t, o, builder(t, clk.Now), 1200)
	s := newShipper(t, ps, o, clk, nil)
	runUntilEmpty(t, s, o)
	log.mu.Lock()
	assert.Equal(t, []int{500, 500, 200}, log.lines[:3], "up to 500 events per batch")
	log.mu.Unlock()
	assert.Contains(t, clk.Sleeps(), events.DefaultFlushInterval, "a partial batch waits the flush interval")

	// The byte limit cuts batches too.
	o2 := events.NewSQLiteOutbox(t, clk.Now)
	fill(t, o2, builder(t, clk.Now), 50)
	log2 := &batchLog{}
	ps2 := pakkesporingtest.New(t, pakkesporingtest.Options{Config: pakkesporing.Config{Now: clk.Now}, Middleware: log2.middleware})
	s2 := newShipper(t, ps2, o2, clk, func(c *events.ShipperConfig) { c.MaxBatchBytes = 8 << 10 })
	runUntilEmpty(t, s2, o2)
	log2.mu.Lock()
	defer log2.mu.Unlock()
	assert.Greater(t, len(log2.lines), 3)
	total := 0
	for _, n := range log2.lines {
		total += n
		assert.Less(t, n, 50)
	}
	assert.Equal(t, 50, total)
}

func TestShipper_RejectedEventDoesNotBlock(t *testing.T) {
	clk := events.NewFakeClock(start)
	o := events.NewSQLiteOutbox(t, clk.Now)
	ps := pakkesporingtest.New(t, pakkesporingtest.Options{Config: pakkesporing.Config{Now: clk.Now}})
	b := builder(t, clk.Now)
	fill(t, o, b, 2)
	// An event pakkesporing's schema does not know (e.g. from a newer
	// daemon than the central service announced).
	require.NoError(t, o.Insert(context.Background(), events.TypeMessageStatus,
		[]byte(`{"schema_version":1,"type":"message.status","future_field":1}`)))
	fill(t, o, b, 2)
	s := newShipper(t, ps, o, clk, nil)
	sent, _, err := s.ShipOnce(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 4, sent)
	assert.Zero(t, o.Count(t))
	rej := o.Rejected(t)
	require.Len(t, rej, 1)
	assert.Contains(t, rej[0], "http 422")
	assert.Contains(t, rej[0], "future_field")
	assert.EqualValues(t, 1, s.Metrics().RejectedEvents)
	assert.Len(t, centralEventIDs(t, ps), 4)
}

func TestShipper_BisectsABareRejection(t *testing.T) {
	clk := events.NewFakeClock(start)
	o := events.NewSQLiteOutbox(t, clk.Now)
	b := builder(t, clk.Now)
	fill(t, o, b, 40)
	typ, body, err := b.MessageStatus(events.StatusInput{
		MessageID: "poison-" + events.NewID(), ConversationID: events.NewID(), Direction: events.Outgoing,
		Service: events.DPO, Status: events.Sendt, Receiver: events.OrganisationReceiver(receiver),
	})
	require.NoError(t, err)
	require.NoError(t, o.Insert(context.Background(), typ, body))
	fill(t, o, b, 40)
	log := &batchLog{bareBadIf: "poison-"}
	ps := pakkesporingtest.New(t, pakkesporingtest.Options{Config: pakkesporing.Config{Now: clk.Now}, Middleware: log.middleware})
	s := newShipper(t, ps, o, clk, nil)
	runUntilEmpty(t, s, o)
	rej := o.Rejected(t)
	require.Len(t, rej, 1)
	assert.Equal(t, "http 400", rej[0])
	assert.Len(t, centralEventIDs(t, ps), 80, "everything but the poison event got through")
}

func TestShipper_ForbiddenKeepsEvents(t *testing.T) {
	clk := events.NewFakeClock(start)
	o := events.NewSQLiteOutbox(t, clk.Now)
	ps := pakkesporingtest.New(t, pakkesporingtest.Options{Config: pakkesporing.Config{Now: clk.Now}})
	fill(t, o, builder(t, clk.Now), 5)
	// Misconfigured: the certificate is another org's than the events'.
	s := newShipper(t, ps, o, clk, func(c *events.ShipperConfig) {
		c.Client = events.MutualTLSClient(ps.CA.BusinessCert(t, receiver), ps.CA.Pool)
	})
	_, _, err := s.ShipOnce(context.Background())
	require.ErrorIs(t, err, events.ErrSend)
	assert.Equal(t, 5, o.Count(t), "a refused certificate never discards events")
	assert.Empty(t, o.Rejected(t))
}

func TestShipper_BacklogLimits(t *testing.T) {
	clk := events.NewFakeClock(start)
	o := events.NewSQLiteOutbox(t, clk.Now)
	b := builder(t, clk.Now)
	ctx := context.Background()
	for range 10 {
		typ, body, err := b.InstallationHeartbeat(nil, start.AddDate(1, 0, 0))
		require.NoError(t, err)
		require.NoError(t, o.Insert(ctx, typ, body))
	}
	fill(t, o, b, 10)
	before, err := o.Backlog(ctx)
	require.NoError(t, err)

	// Over the byte limit: heartbeats go first, statuses stay.
	s, err := events.NewShipper(events.ShipperConfig{
		URL: "https://127.0.0.1:1", Client: http.DefaultClient, Outbox: o, Now: clk.Now, Sleep: clk.Sleep,
		MaxBacklogBytes: before.Bytes - 1,
	})
	require.NoError(t, err)
	require.NoError(t, s.EnforceBacklogLimits(ctx))
	m := s.Metrics()
	assert.Positive(t, m.DroppedEvents[events.TypeInstallationHeartbeat])
	assert.Zero(t, m.DroppedEvents[events.TypeMessageStatus])
	rows, err := o.Pending(ctx, 100, 1<<20)
	require.NoError(t, err)
	statuses := 0
	for _, r := range rows {
		if r.Type == events.TypeMessageStatus {
			statuses++
		}
	}
	assert.Equal(t, 10, statuses)

	// Past the age limit everything old goes, each drop counted.
	clk.Advance(31 * 24 * time.Hour)
	fill(t, o, b, 2)
	require.NoError(t, s.EnforceBacklogLimits(ctx))
	assert.Equal(t, 2, o.Count(t))
	assert.EqualValues(t, 10, s.Metrics().DroppedEvents[events.TypeMessageStatus])
}

func TestNewShipper_Config(t *testing.T) {
	_, err := events.NewShipper(events.ShipperConfig{URL: "ftp://x"})
	require.ErrorIs(t, err, events.ErrConfig)
	for _, want := range []string{"efm.events.url", "HTTP client", "outbox"} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestShipper_WaitsForAnnouncedSchema(t *testing.T) {
	clk := events.NewFakeClock(start)
	o := events.NewSQLiteOutbox(t, clk.Now)
	fill(t, o, builder(t, clk.Now), 3)
	var mu sync.Mutex
	announced := `{"current":2,"supported":[2]}`
	ps := pakkesporingtest.New(t, pakkesporingtest.Options{
		Config: pakkesporing.Config{Now: clk.Now},
		Middleware: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				body := announced
				mu.Unlock()
				if r.URL.Path == "/v1/schema" && body != "" {
					w.Write([]byte(body))
					return
				}
				next.ServeHTTP(w, r)
			})
		},
	})
	s := newShipper(t, ps, o, clk, nil)
	_, _, err := s.ShipOnce(context.Background())
	require.ErrorIs(t, err, events.ErrSchemaNotAnnounced)
	assert.Equal(t, 3, o.Count(t), "events wait for central to accept their schema")

	mu.Lock()
	announced = "" // the real listing
	mu.Unlock()
	sent, _, err := s.ShipOnce(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 3, sent)
}

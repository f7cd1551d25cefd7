package integrasjonspunkt

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt/api"
	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/integrasjonspunkt/message"
	"github.com/efm-go/efm/integrasjonspunkt/payload"
	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/internal/pgtest"
)

type noQueue struct{}

func (noQueue) Enqueue(context.Context, string) error { return nil }

// retentionDaemon is the part of a daemon the retention job works with: its
// store, message core and payload files, on a clock the test moves.
func retentionDaemon(t *testing.T, st *store.Store, dir string, now func() time.Time) *retention {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	ps, err := payload.Open(filepath.Join(dir, "payload"), filepath.Join(dir, "payload.key"))
	require.NoError(t, err)
	key, err := events.NewPseudonymKey(make([]byte, 32))
	require.NoError(t, err)
	b, err := events.NewBuilder(events.BuilderConfig{InstallationID: events.NewID(), OrgNr: "910077473", Version: "1.0.0", Key: key})
	require.NoError(t, err)
	core, err := message.New(message.Config{Store: st, Payloads: ps, Queue: noQueue{}, Events: b, Registry: message.NoRegistry{},
		Logger: log, OrgNumber: "910077473", Now: now})
	require.NoError(t, err)
	return &retention{st: st, core: core, interval: 24 * time.Hour, now: now, log: log,
		policy: message.Retention{History: 730 * 24 * time.Hour, IncomingUnfetched: 90 * 24 * time.Hour}}
}

// receiveOne queues an incoming message with its conversation, as a
// channel's delivery leaves it.
func receiveOne(t *testing.T, r *retention) {
	t.Helper()
	now := r.now()
	id := fmt.Sprintf("in-%d", now.UnixNano())
	require.NoError(t, r.st.Update(context.Background(), func(tx *store.Tx) error {
		c := &store.Conversation{MessageID: id, ConversationID: "c", Direction: message.Incoming, ServiceIdentifier: "DPO",
			Status: "INNKOMMENDE_MOTTATT", LastUpdate: now}
		if err := tx.InsertConversation(c); err != nil {
			return err
		}
		return tx.InsertIncoming(&store.Incoming{MessageID: id, ConversationID: "c", ServiceIdentifier: "DPO",
			DocumentType: "arkivmelding", SBD: []byte("{}"), LastUpdated: now})
	}))
}

// openStore opens a SQLite store in dir.
func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Path: filepath.Join(dir, "store.db"), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return st
}

// TestRetention_HealthWarnsBeforeDeleting: an unfetched incoming message
// turns health DEGRADED at 80 % of efm.retention.incoming-unfetched (day
// 72 of 90) and is deleted, counted and logged by the run after day 90.
func TestRetention_HealthWarnsBeforeDeleting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openStore(t, dir)
	clk := time.Now()
	r := retentionDaemon(t, st, dir, func() time.Time { return clk })
	receiveOne(t, r)

	day := 24 * time.Hour
	clk = clk.Add(71 * day)
	assert.Equal(t, api.Up, r.health(ctx).Status)
	clk = clk.Add(2 * day)
	h := r.health(ctx)
	assert.Equal(t, api.Degraded, h.Status)
	assert.Equal(t, 1, h.Details["unfetchedIncoming"])
	assert.Contains(t, h.Details["reason"], "not fetched for 73 days")
	base := func(context.Context) api.Health {
		return api.Health{Status: api.Up, Components: map[string]api.Component{}}
	}
	assert.Equal(t, api.Degraded, withRetention(base, r)(ctx).Status)

	run := r.runOnce(ctx)
	assert.Zero(t, run.Incoming, "not yet")
	clk = clk.Add(18 * day)
	run = r.runOnce(ctx)
	assert.Equal(t, 1, run.Incoming)
	assert.Equal(t, api.Up, r.health(ctx).Status, "nothing left to warn about")
	assert.Contains(t, r.samples(ctx), api.Sample{Name: "efm_retention_deleted_total", Type: "counter",
		Help: "rows and files the retention job deleted since start, by kind", Labels: map[string]string{"kind": "incoming"}, Value: 1})
	rep := r.report(ctx)
	require.NotNil(t, rep.Last)
	assert.Equal(t, 1, rep.Last.Incoming)
}

// TestRetention_OnceAcrossTheGroup: two daemons sharing one store (on
// PostgreSQL, a group) run the daily job once a day between them, whichever
// holds the lease: the last run is read from the store.
func TestRetention_OnceAcrossTheGroup(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			cfg := store.Config{Path: filepath.Join(dir, "store.db"), Logger: slog.New(slog.DiscardHandler)}
			if backend == "postgres" {
				srv := pgtest.Require(t)
				cfg.Postgres = srv.URL(srv.CreateDB(t))
			}
			open := func() *store.Store {
				st, err := store.Open(ctx, cfg)
				require.NoError(t, err)
				t.Cleanup(func() { st.Close() })
				return st
			}
			clk := time.Now()
			now := func() time.Time { return clk }
			a := retentionDaemon(t, open(), dir, now)
			b := a
			if backend == "postgres" {
				b = retentionDaemon(t, open(), dir, now)
			}
			assert.True(t, a.due(ctx), "never ran")
			a.runOnce(ctx)
			assert.False(t, a.due(ctx))
			clk = clk.Add(23 * time.Hour)
			assert.False(t, b.due(ctx), "the other daemon took the lease over: it ran today")
			clk = clk.Add(time.Hour)
			assert.True(t, b.due(ctx))
		})
	}
}

// TestRetention_StatusPage: the status page lists old unfinished
// conversations and the last run, and names no receiver.
func TestRetention_StatusPage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openStore(t, dir)
	clk := time.Now()
	r := retentionDaemon(t, st, dir, func() time.Time { return clk })
	require.NoError(t, st.Update(ctx, func(tx *store.Tx) error {
		c := &store.Conversation{MessageID: "0f6c9a3e-1d2b-4b8e-9f31-6a5d2c7e8b42", ConversationID: "c", Direction: "OUTGOING",
			Receiver: "0192:01017012345", ServiceIdentifier: "DPI", Status: "SENDT", LastUpdate: clk}
		return tx.InsertConversation(c)
	}))
	clk = clk.Add(91 * 24 * time.Hour)
	r.runOnce(ctx)
	srv := api.New(api.Deps{Logger: slog.New(slog.DiscardHandler), Info: func() any { return map[string]any{} },
		Ready: func(context.Context) error { return nil },
		Health: withRetention(func(context.Context) api.Health {
			return api.Health{Status: api.Up, Components: map[string]api.Component{}}
		}, r),
		Retention: r.report, Loopback: true})
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "http://localhost/", nil))
	require.Equal(t, 200, rec.Code, rec.Body.String())
	body := rec.Body.String()
	assert.Contains(t, body, "1 unfinished conversation(s) older than 90 days")
	assert.Contains(t, body, "0f6c9a3e-1d2b-4b8e-9f31-6a5d2c7e8b42")
	assert.Contains(t, body, "Last run")
	assert.NotContains(t, body, "01017012345")
	assert.True(t, strings.Contains(body, `data-component="retention"`))
}

package integrasjonspunkt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/api"
	"github.com/efm-go/efm/integrasjonspunkt/config"
	"github.com/efm-go/efm/integrasjonspunkt/message"
	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/internal/logattr"
)

// retention runs the daily retention job (operations.md §3.2) and reports
// on what it keeps: the health component that warns before unfetched
// incoming messages are deleted, the status page's list of old unfinished
// conversations, and the job's counts as metrics.
type retention struct {
	st       *store.Store
	core     *message.Service
	policy   message.Retention
	interval time.Duration
	now      func() time.Time
	log      *slog.Logger

	mu    sync.Mutex
	total message.Pruned // since start, for the counters
}

// staleAfter is when the status page lists an unfinished conversation
// (operations.md §3.2: never purged, reported after 90 days).
const staleAfter = 90 * 24 * time.Hour

// warnAt is the share of efm.retention.incoming-unfetched after which an
// unfetched incoming message makes health DEGRADED: at 90 days, day 72,
// which leaves the operator weeks to get the client system fetching again.
const warnAt = 0.8

func newRetention(cfg *config.Config, st *store.Store, core *message.Service, shipping bool, log *slog.Logger) *retention {
	p := message.Retention{
		History:           cfg.Duration("efm.retention.history", 17520*time.Hour),
		IncomingUnfetched: cfg.Duration("efm.retention.incoming-unfetched", 2160*time.Hour),
	}
	if !shipping {
		// With no shipper nothing else bounds the outbox: it keeps what a
		// shipper would, then the oldest go (the same rule, operations.md §5.4).
		p.Events = cfg.Duration("efm.events.max-backlog-age", 30*24*time.Hour)
		if cfg.Value("efm.events.enabled") == "false" {
			p.Events = time.Nanosecond // nothing will ever send them
		}
	}
	every := cfg.Duration("efm.retention.interval", 24*time.Hour)
	if every <= 0 {
		every = 24 * time.Hour
	}
	return &retention{st: st, core: core, policy: p, interval: every, now: time.Now, log: log.With(logattr.Component("retention"))}
}

// Run runs the job every interval until ctx ends. The last run is read from
// the store, so a restarted daemon, or another daemon of the group taking
// the lease over, does not run it again before it is due.
func (r *retention) Run(ctx context.Context) error {
	check := min(r.interval, time.Hour)
	t := time.NewTicker(check)
	defer t.Stop()
	for {
		if r.due(ctx) {
			r.runOnce(ctx)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// due says whether interval has passed since the last run of any daemon
// sharing the store.
func (r *retention) due(ctx context.Context) bool {
	last, err := r.st.LastRetentionRun(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return true
	}
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("reading the last retention run", logattr.Err(err))
		}
		return false
	}
	return !r.now().Before(last.Started.Add(r.interval))
}

// runOnce prunes, logs the counts and records the run.
func (r *retention) runOnce(ctx context.Context) store.RetentionRun {
	run := store.RetentionRun{Started: r.now()}
	p, err := r.core.Prune(ctx, r.policy)
	run.Finished = r.now()
	run.Conversations, run.Statuses, run.Incoming, run.Payloads, run.Files, run.Events = p.Conversations, p.Statuses, p.Incoming, p.Payloads, p.Files, p.Events
	r.mu.Lock()
	r.total.Conversations += p.Conversations
	r.total.Statuses += p.Statuses
	r.total.Incoming += p.Incoming
	r.total.Payloads += p.Payloads
	r.total.Files += p.Files
	r.total.Events += p.Events
	r.mu.Unlock()
	attrs := []any{slog.Int("conversations", p.Conversations), slog.Int("statuses", p.Statuses), slog.Int("incoming", p.Incoming),
		slog.Int("payloads", p.Payloads), slog.Int("files", p.Files), slog.Int("events", p.Events),
		logattr.Duration("seconds", run.Finished.Sub(run.Started))}
	if err != nil {
		if ctx.Err() != nil {
			return run // stopping: the next start runs it again
		}
		run.Error = "retention run failed; see the daemon's log"
		r.log.Warn("retention run failed", append(attrs, logattr.Err(err))...)
	} else {
		r.log.Info("retention run", attrs...)
	}
	if err := r.st.RecordRetentionRun(context.WithoutCancel(ctx), run, 100); err != nil {
		r.log.Warn("recording the retention run", logattr.Err(err))
	}
	return run
}

// health is the retention component: DEGRADED once an incoming message has
// waited warnAt of efm.retention.incoming-unfetched, since it will be
// deleted unread at the limit.
func (r *retention) health(ctx context.Context) api.Component {
	d := map[string]any{}
	c := api.Component{Status: api.Up, Details: d}
	if last, err := r.st.LastRetentionRun(ctx); err == nil {
		d["lastRun"] = last.Started.UTC().Format(time.RFC3339)
	}
	limit := r.policy.IncomingUnfetched
	if limit <= 0 {
		return c
	}
	now := r.now()
	warn := now.Add(-time.Duration(float64(limit) * warnAt))
	a, err := r.st.IncomingAgeBefore(ctx, warn)
	if err != nil {
		d["error"] = "incoming queue unreadable"
		return c
	}
	if a.Before > 0 {
		c.Status = api.Degraded
		d["unfetchedIncoming"] = a.Before
		d["oldestIncoming"] = a.Oldest.UTC().Format(time.RFC3339)
		d["deletedAt"] = a.Oldest.Add(limit).UTC().Format(time.RFC3339)
		d["reason"] = fmt.Sprintf("%d incoming message(s) not fetched for %.0f days; they are deleted unread after %.0f days (efm.retention.incoming-unfetched)",
			a.Before, now.Sub(a.Oldest).Hours()/24, limit.Hours()/24)
	}
	return c
}

// report is the status page's retention section.
func (r *retention) report(ctx context.Context) *api.RetentionReport {
	rep := &api.RetentionReport{History: r.policy.History, IncomingUnfetched: r.policy.IncomingUnfetched, StaleAfter: staleAfter}
	if last, err := r.st.LastRetentionRun(ctx); err == nil {
		rep.Last = &last
	}
	n, list, err := r.st.StaleUnfinished(ctx, r.now().Add(-staleAfter), 10000, 20)
	if err == nil {
		rep.StaleCount, rep.Stale = n, list
	}
	return rep
}

// samples are the job's counters since start (operations.md §2.2 style).
func (r *retention) samples(ctx context.Context) []api.Sample {
	r.mu.Lock()
	t := r.total
	r.mu.Unlock()
	var s []api.Sample
	for _, k := range []struct {
		kind string
		n    int
	}{{"conversations", t.Conversations}, {"statuses", t.Statuses}, {"incoming", t.Incoming}, {"payloads", t.Payloads},
		{"files", t.Files}, {"events", t.Events}} {
		s = append(s, api.Sample{Name: "efm_retention_deleted_total", Help: "rows and files the retention job deleted since start, by kind",
			Type: "counter", Labels: map[string]string{"kind": k.kind}, Value: float64(k.n)})
	}
	if last, err := r.st.LastRetentionRun(ctx); err == nil {
		s = append(s, api.Sample{Name: "efm_retention_last_run_timestamp_seconds", Help: "start of the last retention run (any daemon of the group)",
			Value: float64(last.Started.Unix())})
	}
	return s
}

// withRetention adds the retention component to health.
func withRetention(h func(context.Context) api.Health, r *retention) func(context.Context) api.Health {
	return func(ctx context.Context) api.Health {
		out := h(ctx)
		out.Components["retention"] = r.health(ctx)
		out.Status = api.Overall(out.Components)
		return out
	}
}

// withRetentionMetrics adds the job's samples to the metrics.
func withRetentionMetrics(m func(context.Context) []api.Sample, r *retention) func(context.Context) []api.Sample {
	return func(ctx context.Context) []api.Sample { return append(m(ctx), r.samples(ctx)...) }
}

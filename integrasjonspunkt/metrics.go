package integrasjonspunkt

import (
	"context"
	"runtime"
	"runtime/metrics"
	"time"

	"github.com/efm-go/efm/addressing"
	"github.com/efm-go/efm/integrasjonspunkt/api"
	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/integrasjonspunkt/message"
	"github.com/efm-go/efm/integrasjonspunkt/pipeline"
	"github.com/efm-go/efm/integrasjonspunkt/queue"
	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/internal/buildinfo"
	"github.com/efm-go/efm/packaging/keystore"
	"github.com/efm-go/efm/update"
)

// metricsOf gathers the numbers of operations.md §2.2 that the daemon keeps
// today. None carries personal data or message titles.
func metricsOf(started time.Time, dataDir string, st *store.Store, q *queue.Queue, ks *keystore.Keystore, b *events.Builder, sh *events.Shipper, am *addressing.Metrics, core *message.Service, channels func() []pipeline.ChannelState) func(context.Context) []api.Sample {
	return func(ctx context.Context) []api.Sample {
		s := []api.Sample{
			{Name: "efm_build_info", Help: "build of the running daemon", Labels: map[string]string{"version": buildinfo.Version, "commit": buildinfo.CommitOrVCS()}, Value: 1},
			{Name: "efm_start_time_seconds", Help: "process start, Unix seconds", Value: float64(started.Unix())},
			{Name: "efm_central_log_redactions_total", Help: "event fields dropped by the person-number scan", Type: "counter", Value: float64(b.Redactions())},
			{Name: "go_goroutines", Help: "goroutines", Value: float64(runtime.NumGoroutine())},
		}
		if c, err := st.Unfinished(ctx); err == nil {
			s = append(s,
				api.Sample{Name: "efm_messages_unfinished", Help: "messages not in a final status", Labels: map[string]string{"direction": "OUTGOING"}, Value: float64(c.Outgoing)},
				api.Sample{Name: "efm_messages_unfinished", Labels: map[string]string{"direction": "INCOMING"}, Value: float64(c.Incoming)})
		}
		if n, err := q.Pending(ctx); err == nil {
			s = append(s, api.Sample{Name: "efm_queue_pending", Help: "work-queue entries waiting", Labels: map[string]string{"stream": "OUTGOING"}, Value: float64(n)})
		}
		if free, err := store.FreeSpace(dataDir); err == nil {
			s = append(s, api.Sample{Name: "efm_disk_free_bytes", Help: "free space for the data dir", Value: float64(free)})
		}
		if ks != nil {
			s = append(s, api.Sample{Name: "efm_certificate_not_after_seconds", Help: "business certificate expiry, Unix seconds", Value: float64(ks.Cert.NotAfter.Unix())})
		}
		if sh != nil {
			m := sh.Metrics()
			s = append(s,
				api.Sample{Name: "efm_central_log_backlog_events", Help: "events waiting in the outbox", Value: float64(m.BacklogEvents)},
				api.Sample{Name: "efm_central_log_shipped_events_total", Help: "events the central log accepted", Type: "counter", Value: float64(m.ShippedEvents)},
				api.Sample{Name: "efm_central_log_rejected_events_total", Help: "events the central log refused", Type: "counter", Value: float64(m.RejectedEvents)},
				api.Sample{Name: "efm_central_log_send_errors_total", Help: "failed batch attempts", Type: "counter", Value: float64(m.SendErrors)})
			if !m.LastSuccess.IsZero() {
				s = append(s, api.Sample{Name: "efm_central_log_last_success_timestamp_seconds", Help: "last batch the central log accepted", Value: float64(m.LastSuccess.Unix())})
			}
			for t, n := range m.DroppedEvents {
				s = append(s, api.Sample{Name: "efm_central_log_dropped_events_total", Help: "events dropped by the backlog limits", Type: "counter", Labels: map[string]string{"type": string(t)}, Value: float64(n)})
			}
		}
		if am != nil {
			s = append(s,
				api.Sample{Name: "efm_registry_lookups_total", Help: "identifier requests sent to the Service Registry", Type: "counter", Value: float64(am.SRLookups.Load())},
				api.Sample{Name: "efm_registry_cache_hits_total", Help: "organisation answers served from the 5-minute cache", Type: "counter", Value: float64(am.CacheHits.Load())},
				api.Sample{Name: "efm_registry_failures_total", Help: "lookups that failed because a register was down, slow or answered badly", Type: "counter", Value: float64(am.RegistryFailures.Load())},
				api.Sample{Name: "efm_registry_not_found_total", Help: "receivers the Service Registry did not know", Type: "counter", Value: float64(am.NotFound.Load())})
		}
		s = append(s, flowSamples(ctx, st, core, channels)...)
		if rss, fds, ok := processStats(); ok {
			s = append(s,
				api.Sample{Name: "process_resident_memory_bytes", Help: "resident set size", Value: float64(rss)},
				api.Sample{Name: "process_open_fds", Help: "open file descriptors, sockets included", Value: float64(fds)})
		}
		s = append(s, api.Sample{Name: "go_memstats_heap_inuse_bytes", Help: "heap in use", Value: float64(heapInuse())})
		return s
	}
}

// heapInuse is MemStats.HeapInuse read through runtime/metrics: the heap's
// object bytes and the unused bytes of its spans add up to it, and reading
// them does not stop the world as ReadMemStats does on every scrape.
func heapInuse() uint64 {
	ms := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	metrics.Read(ms)
	var n uint64
	for _, m := range ms {
		if m.Value.Kind() == metrics.KindUint64 {
			n += m.Value.Uint64()
		}
	}
	return n
}

// resolverMetrics are the addressing counters when a resolver runs.
func resolverMetrics(w *pipeline.Wiring) *addressing.Metrics {
	if w == nil || w.Resolver == nil {
		return nil
	}
	return w.Resolver.Metrics()
}

// flowSamples are the message and channel counters: status transitions,
// channel errors by kind, and the dead letters.
func flowSamples(ctx context.Context, st *store.Store, core *message.Service, channels func() []pipeline.ChannelState) []api.Sample {
	var s []api.Sample
	for _, t := range core.Transitions() {
		s = append(s, api.Sample{Name: "efm_messages_total", Help: "status transitions since start", Type: "counter",
			Labels: map[string]string{"direction": t.Direction, "service": t.Service, "status": t.Status}, Value: float64(t.Count)})
	}
	for _, c := range channels() {
		for _, kind := range []string{pipeline.KindAuth, pipeline.KindClient4xx, pipeline.KindServer5xx, pipeline.KindTimeout, pipeline.KindNetwork, pipeline.KindOther} {
			s = append(s, api.Sample{Name: "efm_channel_errors_total", Help: "failed calls to a channel's service, by kind", Type: "counter",
				Labels: map[string]string{"service": c.Service, "kind": kind}, Value: float64(c.Errors[kind])})
		}
		s = append(s, api.Sample{Name: "efm_channel_consecutive_failures", Help: "failed calls in a row to a channel's service",
			Labels: map[string]string{"service": c.Service}, Value: float64(c.ConsecutiveFailures)})
		if !c.LastSuccess.IsZero() {
			s = append(s, api.Sample{Name: "efm_channel_last_success_timestamp_seconds", Help: "last call a channel's service answered",
				Labels: map[string]string{"service": c.Service}, Value: float64(c.LastSuccess.Unix())})
		}
	}
	if n, err := st.DeadLetters(ctx); err == nil {
		s = append(s, api.Sample{Name: "efm_queue_dead_letters", Help: "messages that ran out of retries (FEIL, moved to DLQ)", Value: float64(n)})
	}
	return s
}

// checkCounter is the part of *update.Updater that counts checks.
type checkCounter interface {
	Checks() map[update.CheckOutcome]int64
}

// withUpdateMetrics adds efm_update_checks_total when the self-update runs.
func withUpdateMetrics(base func(context.Context) []api.Sample, u Updater) func(context.Context) []api.Sample {
	cc, ok := u.(checkCounter)
	if !ok {
		return base
	}
	return func(ctx context.Context) []api.Sample {
		s := base(ctx)
		for o, n := range cc.Checks() {
			s = append(s, api.Sample{Name: "efm_update_checks_total", Help: "update checks by result and reason (clock_behind: this machine's clock is behind the release server's)",
				Type: "counter", Labels: map[string]string{"result": o.Result, "reason": o.Reason}, Value: float64(n)})
		}
		return s
	}
}

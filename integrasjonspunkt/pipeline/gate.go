package pipeline

import "sync"

// gate keeps one channel's trouble from taking every worker (issue 14,
// point 5). A channel may hold all workers but one, so another channel
// always has a worker even while the first hangs on timeouts; and while its
// last send failed as retryable, one send at a time probes it and the
// others of that channel go back on the queue at once, without an attempt.
type gate struct {
	workers  int
	mu       sync.Mutex
	inflight map[string]int
	failing  map[string]bool
}

func newGate(workers int) *gate {
	return &gate{workers: workers, inflight: map[string]int{}, failing: map[string]bool{}}
}

// admit reports whether a send on channel may start now; when it does, the
// caller must call done.
func (g *gate) admit(channel string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	limit := max(1, g.workers-1)
	if g.failing[channel] {
		limit = 1
	}
	if g.inflight[channel] >= limit {
		return false
	}
	g.inflight[channel]++
	return true
}

// done ends an admitted send; failed says the channel failed it in a way a
// retry may mend (an outage).
func (g *gate) done(channel string, failed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inflight[channel]--
	g.failing[channel] = failed
}

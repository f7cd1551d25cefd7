package pipeline

import (
	"context"
	"sync"
	"time"
)

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
	freed    chan struct{} // closed and replaced whenever a send ends
}

func newGate(workers int) *gate {
	return &gate{workers: workers, inflight: map[string]int{}, failing: map[string]bool{}, freed: make(chan struct{})}
}

// admit reports whether a send on channel may start now; when it does, the
// caller must call done.
func (g *gate) admit(channel string) bool {
	ok, _, _ := g.try(channel)
	return ok
}

func (g *gate) try(channel string) (ok, failing bool, freed <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	limit := max(1, g.workers-1)
	if g.failing[channel] {
		limit = 1
	}
	if g.inflight[channel] >= limit {
		return false, g.failing[channel], g.freed
	}
	g.inflight[channel]++
	return true, false, nil
}

// admitWithin is admit that waits up to wait for a send of a healthy
// channel to end. A busy channel frees a worker within a send's time, so
// the message goes out in its turn; put back on the queue it came back only
// after the first backoff, behind later messages, and a backlog of one
// channel kept the spare worker turning its entries away (issue 18). A
// failing channel's messages are not waited for.
func (g *gate) admitWithin(ctx context.Context, channel string, wait time.Duration) bool {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		ok, failing, freed := g.try(channel)
		if ok || failing {
			return ok
		}
		select {
		case <-freed:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// done ends an admitted send; failed says the channel failed it in a way a
// retry may mend (an outage).
func (g *gate) done(channel string, failed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inflight[channel]--
	g.failing[channel] = failed
	close(g.freed)
	g.freed = make(chan struct{})
}

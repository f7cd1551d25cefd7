package simfault

import (
	"sync"
	"time"
)

// Timers runs a simulator's delayed work (receipts on a schedule) so that a
// reset or close cancels whatever has not fired yet. The zero value is ready;
// it is safe for concurrent use and never calls f with its own lock held.
type Timers struct {
	mu     sync.Mutex
	set    map[*time.Timer]bool
	closed bool
}

// After runs f after d unless Reset or Close comes first.
func (ts *Timers) After(d time.Duration, f func()) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed {
		return
	}
	if ts.set == nil {
		ts.set = map[*time.Timer]bool{}
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		ts.mu.Lock()
		live := ts.set[t]
		delete(ts.set, t)
		ts.mu.Unlock()
		if live {
			f()
		}
	})
	ts.set[t] = true
}

// Reset cancels everything pending; later After calls run as usual.
func (ts *Timers) Reset() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.stopLocked()
}

// Close cancels everything pending and every later After.
func (ts *Timers) Close() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.closed = true
	ts.stopLocked()
}

func (ts *Timers) stopLocked() {
	for t := range ts.set {
		t.Stop()
	}
	ts.set = nil
}

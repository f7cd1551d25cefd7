package message

import (
	"slices"
	"strings"
	"sync"
)

// Transition is how many times messages of one direction and service have
// reached one status since the daemon started: efm_messages_total
// (operations.md §2.2).
type Transition struct {
	Direction, Service, Status string
	Count                      uint64
}

// transitions counts committed statuses. It counts in process rather than
// from the store so that deleting conversations never makes the counter go
// back.
type transitions struct {
	mu sync.Mutex
	m  map[[3]string]uint64
}

func (t *transitions) add(evs []StatusEvent) {
	if len(evs) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[[3]string]uint64{}
	}
	for _, e := range evs {
		t.m[[3]string{e.Direction, e.Service, e.Status}]++
	}
}

// Transitions lists the status counts, ordered.
func (s *Service) Transitions() []Transition {
	s.counts.mu.Lock()
	defer s.counts.mu.Unlock()
	out := make([]Transition, 0, len(s.counts.m))
	for k, n := range s.counts.m {
		out = append(out, Transition{Direction: k[0], Service: k[1], Status: k[2], Count: n})
	}
	slices.SortFunc(out, func(a, b Transition) int {
		return strings.Compare(a.Direction+a.Service+a.Status, b.Direction+b.Service+b.Status)
	})
	return out
}

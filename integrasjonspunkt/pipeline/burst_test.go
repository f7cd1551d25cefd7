package pipeline

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// While the API serves a burst, sends start one per burstPace; when it
// ends, every waiting send goes at once.
func TestYieldToAPI_PacesSendsDuringABurst(t *testing.T) {
	var burst atomic.Bool
	burst.Store(true)
	p := &Pipeline{cfg: Config{APIBurst: burst.Load}}
	ctx := context.Background()

	var mu sync.Mutex
	var started []time.Time
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.yieldToAPI(ctx)
			mu.Lock()
			started = append(started, time.Now())
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.SortFunc(started, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(started); i++ {
		assert.GreaterOrEqual(t, started[i].Sub(started[i-1]), burstPace-5*time.Millisecond, "two sends started within one pace")
	}

	// The next turn is a pace away: these wait until the burst ends.
	done := make(chan struct{})
	for range 5 {
		go func() { p.yieldToAPI(ctx); done <- struct{}{} }()
	}
	burst.Store(false)
	for range 5 {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			require.Fail(t, "a send still waits after the burst ended")
		}
	}
}

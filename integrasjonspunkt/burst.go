package integrasjonspunkt

import (
	"context"
	"sync/atomic"
	"time"
)

// burstMeter tells the pipeline when the local API serves a burst of sends:
// at least perSecond send requests (E2-E5) started within the last second
// (efm.pipeline.api-burst). The pipeline then paces its sends and leaves
// the cores to the burst (pipeline.Config.APIBurst). A rate, not the
// requests in flight: on busy cores a request waits to be scheduled before
// its handler counts it, so in-flight counts stayed low exactly when the
// cores were short.
type burstMeter struct {
	started   atomic.Int64 // send requests started; the API adds to it
	burst     atomic.Bool
	perSecond int64
	window    [burstTicks]int64 // started, at each of the last ticks
	tick      int
}

const (
	burstTicks    = 10
	burstInterval = time.Second / burstTicks
)

func (m *burstMeter) run(ctx context.Context) {
	t := time.NewTicker(burstInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			m.burst.Store(false)
			return
		case <-t.C:
			m.sample()
		}
	}
}

// sample is one tick: the sends started since the tick one second ago.
func (m *burstMeter) sample() {
	n := m.started.Load()
	i := m.tick % burstTicks
	m.burst.Store(n-m.window[i] >= m.perSecond)
	m.window[i] = n
	m.tick++
}

func (m *burstMeter) inBurst() bool { return m.burst.Load() }

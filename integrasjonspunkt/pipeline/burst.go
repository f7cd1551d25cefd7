package pipeline

import (
	"context"
	"time"
)

// burstPace is how often a send may start while the local API serves a
// burst of sends.
const burstPace = 100 * time.Millisecond

// yieldToAPI waits while the local API serves a burst of sends, letting one
// send start every burstPace. Delivery and accepting share the cores, and a
// delivered message costs several times an accepted one (the signature, the
// upload, the receipts): with the pipeline running at full speed a client
// sending in bulk got a tenth of the rate it gets with the pipeline idle
// (issue 18, row 2). The backlog is sent at full speed once the burst ends;
// during it delivery keeps moving. The entry stays this daemon's meanwhile
// (the queue marks it in progress).
func (p *Pipeline) yieldToAPI(ctx context.Context) {
	if p.cfg.APIBurst == nil {
		return
	}
	for p.cfg.APIBurst() {
		p.burstMu.Lock()
		now := time.Now()
		wait := p.burstNext.Sub(now)
		if wait <= 0 {
			p.burstNext = now.Add(burstPace)
		}
		p.burstMu.Unlock()
		if wait <= 0 {
			return
		}
		select {
		case <-time.After(min(wait, 10*time.Millisecond)):
		case <-ctx.Done():
			return
		}
	}
}

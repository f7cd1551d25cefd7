package integrasjonspunkt

import (
	"context"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/efm-go/efm/integrasjonspunkt/api"
	"github.com/efm-go/efm/update"
)

type countingUpdater struct{ Updater }

func (countingUpdater) Checks() map[update.CheckOutcome]int64 {
	return map[update.CheckOutcome]int64{{Result: update.ResultFailed, Reason: update.ReasonClockBehind}: 3}
}

func TestUpdateMetrics_CountChecksByReason(t *testing.T) {
	base := func(context.Context) []api.Sample { return []api.Sample{{Name: "go_goroutines", Value: 1}} }
	got := withUpdateMetrics(base, countingUpdater{})(context.Background())
	assert.Contains(t, got, api.Sample{Name: "efm_update_checks_total", Type: "counter", Value: 3,
		Help:   got[len(got)-1].Help,
		Labels: map[string]string{"result": "failed", "reason": "clock_behind"}})
	assert.Len(t, withUpdateMetrics(base, nil)(context.Background()), 1, "no updater, no update metrics")
}

// TestHeapInuse_IsMemStats: the metric read without stopping the world is
// the one ReadMemStats reports, read at the same moment.
func TestHeapInuse_IsMemStats(t *testing.T) {
	var ms runtime.MemStats
	for range 5 {
		runtime.ReadMemStats(&ms)
		if got := heapInuse(); got == ms.HeapInuse {
			return
		}
	}
	// An allocation between the two reads may move the span counts; the
	// figures must still be of one kind.
	got := heapInuse()
	runtime.ReadMemStats(&ms)
	if diff := int64(got) - int64(ms.HeapInuse); diff > 1<<20 || diff < -(1<<20) {
		t.Fatalf("heapInuse %d, MemStats.HeapInuse %d", got, ms.HeapInuse)
	}
}

package integrasjonspunkt

import (
	"context"
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

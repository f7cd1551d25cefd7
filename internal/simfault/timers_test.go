package simfault

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestTimers_ResetAndCloseCancelPendingWork(t *testing.T) {
	var ts Timers
	var ran atomic.Int32
	ts.After(time.Hour, func() { ran.Add(100) })
	ts.Reset()
	done := make(chan struct{})
	ts.After(time.Millisecond, func() { ran.Add(1); close(done) })
	<-done
	ts.After(time.Hour, func() { ran.Add(100) })
	ts.Close()
	ts.After(0, func() { ran.Add(100) })
	time.Sleep(20 * time.Millisecond)
	assert.EqualValues(t, 1, ran.Load(), "only the work scheduled after the reset and before the close runs")
}

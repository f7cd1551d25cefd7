package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestGate(t *testing.T) {
	g := newGate(4)
	for range 3 {
		assert.True(t, g.admit("DPO"))
	}
	assert.False(t, g.admit("DPO"), "the last worker is kept for the other channels")
	assert.True(t, g.admit("DPV"))

	// DPO fails: while it is down, one send at a time probes it.
	g.done("DPO", true)
	g.done("DPO", true)
	assert.False(t, g.admit("DPO"), "one DPO send is still out")
	g.done("DPO", true)
	assert.True(t, g.admit("DPO"))
	assert.False(t, g.admit("DPO"))
	// The probe gets through: the channel is back at full width.
	g.done("DPO", false)
	for range 3 {
		assert.True(t, g.admit("DPO"))
	}
	g.done("DPV", false)

	one := newGate(1)
	assert.True(t, one.admit("DPO"), "a single worker still works")
	assert.False(t, one.admit("DPO"))
}

// A message of a busy channel waits for a worker of it to end; one of a
// failing channel does not wait, and none waits past its limit.
func TestGate_AdmitWithin(t *testing.T) {
	ctx := context.Background()
	g := newGate(2)
	assert.True(t, g.admit("DPO"))
	go func() {
		time.Sleep(20 * time.Millisecond)
		g.done("DPO", false)
	}()
	assert.True(t, g.admitWithin(ctx, "DPO", 10*time.Second), "admitted when the running send ends")
	assert.False(t, g.admitWithin(ctx, "DPO", 20*time.Millisecond), "nothing ends within the wait")

	g.done("DPO", true)
	assert.True(t, g.admit("DPO"), "the probe of a failing channel")
	start := time.Now()
	assert.False(t, g.admitWithin(ctx, "DPO", 10*time.Second))
	assert.Less(t, time.Since(start), 5*time.Second, "a failing channel's message goes back at once")
}

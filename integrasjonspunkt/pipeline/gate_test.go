package pipeline

import (
	"testing"

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

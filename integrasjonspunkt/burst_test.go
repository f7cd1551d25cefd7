package integrasjonspunkt

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestBurstMeter_RateOverTheLastSecond(t *testing.T) {
	m := &burstMeter{perSecond: 200}
	steady := func(perTick int64, ticks int) {
		for range ticks {
			m.started.Add(perTick)
			m.sample()
		}
	}
	steady(10, 30) // 100 sends a second, row 5's load
	assert.False(t, m.inBurst())
	steady(25, 5) // 175 in the last second
	assert.False(t, m.inBurst())
	steady(25, 5) // 250
	assert.True(t, m.inBurst())
	steady(0, 2) // the burst ends: 200 still within the last second
	assert.True(t, m.inBurst())
	steady(0, 1)
	assert.False(t, m.inBurst(), "the pipeline is held back after the rate fell")
}

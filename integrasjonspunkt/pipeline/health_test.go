package pipeline

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/efm-go/efm/transport"
)

func TestErrorKind(t *testing.T) {
	for want, err := range map[string]error{
		KindAuth:      fmt.Errorf("sending: %w", &transport.StatusError{Op: "x", StatusCode: 401}),
		KindServer5xx: &transport.StatusError{Op: "x", StatusCode: 503},
		KindClient4xx: &transport.StatusError{Op: "x", StatusCode: 400},
		KindTimeout:   fmt.Errorf("x: %w", context.DeadlineExceeded),
		KindNetwork:   &net.OpError{Op: "dial", Err: fmt.Errorf("connection refused")},
		KindOther:     fmt.Errorf("something else"),
	} {
		assert.Equal(t, want, ErrorKind(err), "%v", err)
	}
}

// TestChannelStates: failures in a row are counted until a success; a
// refusal of one message counts as an error but not as an outage.
func TestChannelStates(t *testing.T) {
	c := newChannelStates([]string{"DPO", "DPV"})
	ctx := context.Background()
	now := time.Unix(1700000000, 0)
	for range 3 {
		c.observe(ctx, "DPO", &transport.StatusError{StatusCode: 503}, now)
	}
	c.observe(ctx, "DPO", &transport.StatusError{StatusCode: 400}, now)
	c.observe(ctx, "DPO", fmt.Errorf("%w: bad package", transport.ErrMalformed), now)
	c.observe(ctx, "DPV", nil, now)
	got := c.list()
	assert.Equal(t, "DPO", got[0].Service)
	assert.Equal(t, 3, got[0].ConsecutiveFailures)
	assert.Equal(t, map[string]uint64{KindServer5xx: 3, KindClient4xx: 1}, got[0].Errors)
	assert.True(t, got[0].LastSuccess.IsZero())
	assert.Equal(t, now, got[1].LastSuccess)

	c.observe(ctx, "DPO", nil, now.Add(time.Second))
	assert.Equal(t, 0, c.list()[0].ConsecutiveFailures)
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	c.observe(canceled, "DPO", context.Canceled, now)
	assert.Equal(t, 0, c.list()[0].ConsecutiveFailures, "our own stop is no channel failure")
}

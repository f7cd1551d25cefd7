package queue

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// EnqueueAsync returns before JetStream's ack, yet its entries land and
// deduplicate as Enqueue's do, and a closed queue refuses at once (the
// caller then falls back to the synchronous publish).
func TestQueue_EnqueueAsync(t *testing.T) {
	ctx := context.Background()
	q := open(t, t.TempDir())
	for _, id := range []string{"m1", "m1", "m2"} {
		require.NoError(t, q.EnqueueAsync(id))
	}
	require.NoError(t, q.Enqueue(ctx, "m2"), "a synchronous publish of the same id")
	require.Eventually(t, func() bool {
		n, err := q.Pending(ctx)
		return err == nil && n == 2
	}, 10*time.Second, 10*time.Millisecond, "the same message id twice must be stored once")
	n, err := q.Pending(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 2, n)
	require.NoError(t, q.Close())
	assert.Error(t, q.EnqueueAsync("m3"), "a closed queue")
}

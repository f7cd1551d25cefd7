package queue

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/internal/natstest"
)

func openExt(t *testing.T, c *natstest.Cluster, name string) *Queue {
	t.Helper()
	q, err := Open(context.Background(), Config{URLs: c.URLs(), Replicas: 3, Name: name, AckWait: 3 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	return q
}

// TestCluster_SharedWorkQueueSurvivesANode: three daemons on a 3-node
// cluster share one replicated work queue; every entry is worked once, also
// while one node is down and after it is back.
func TestCluster_SharedWorkQueueSurvivesANode(t *testing.T) {
	c := natstest.Start(t, t.TempDir(), 3)
	defer c.Shutdown()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var qs []*Queue
	for i := range 3 {
		q := openExt(t, c, fmt.Sprint("d", i))
		defer q.Close()
		qs = append(qs, q)
	}
	info, err := qs[0].st.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, info.Config.Replicas)

	var mu sync.Mutex
	seen := map[string][]int{}
	var wg sync.WaitGroup
	for i, q := range qs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = q.Consume(ctx, 4, func(_ context.Context, id string) error {
				mu.Lock()
				seen[id] = append(seen[id], i)
				mu.Unlock()
				return nil
			})
		}()
	}
	const n = 60
	enqueue := func(from, to int) {
		for k := from; k < to; k++ {
			require.Eventually(t, func() bool {
				return qs[k%3].Enqueue(ctx, fmt.Sprint("m", k)) == nil
			}, 30*time.Second, 100*time.Millisecond)
		}
	}
	enqueue(0, n/3)
	c.Nodes[1].Stop()
	enqueue(n/3, 2*n/3)
	require.NoError(t, c.Nodes[1].Start())
	enqueue(2*n/3, n)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == n
	}, 60*time.Second, 50*time.Millisecond)
	cancel()
	wg.Wait()
	workers := map[int]bool{}
	for id, by := range seen {
		assert.Len(t, by, 1, "%s worked more than once: %v", id, by)
		workers[by[0]] = true
	}
	assert.Greater(t, len(workers), 1, "the work was shared")
}

// TestLease_OneHolderAndFailOver: of three daemons exactly one holds a
// lease; when it stops, another takes it within the TTL.
func TestLease_OneHolderAndFailOver(t *testing.T) {
	c := natstest.Start(t, t.TempDir(), 3)
	defer c.Shutdown()
	var ls []*Lease
	var cancels []context.CancelFunc
	var wg sync.WaitGroup
	for i := range 3 {
		q := openExt(t, c, fmt.Sprint("d", i))
		defer q.Close()
		l, err := q.Lease(context.Background(), "sweep", fmt.Sprint("d", i))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		wg.Add(1)
		go func() { defer wg.Done(); l.Run(ctx) }()
		ls, cancels = append(ls, l), append(cancels, cancel)
	}
	holders := func() []int {
		var h []int
		for i, l := range ls {
			if l.Held() {
				h = append(h, i)
			}
		}
		return h
	}
	require.Eventually(t, func() bool { return len(holders()) == 1 }, 10*time.Second, 20*time.Millisecond)
	first := holders()[0]
	// Checked over a few renewals: never two at once.
	for range 20 {
		assert.LessOrEqual(t, len(holders()), 1)
		time.Sleep(LeaseTTL / 20)
	}
	cancels[first]()
	require.Eventually(t, func() bool {
		h := holders()
		return len(h) == 1 && h[0] != first
	}, 2*LeaseTTL, 20*time.Millisecond, "another daemon takes the lease")
	cancel := cancels
	for _, c := range cancel {
		c()
	}
	wg.Wait()
}

// TestLease_Embedded: a single daemon on the embedded server takes its
// leases at once.
func TestLease_Embedded(t *testing.T) {
	q := open(t, t.TempDir())
	defer q.Close()
	l, err := q.Lease(context.Background(), "sweep", "only")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	require.Eventually(t, l.Held, 5*time.Second, 10*time.Millisecond)
	cancel()
	<-done
	assert.False(t, l.Held())
}

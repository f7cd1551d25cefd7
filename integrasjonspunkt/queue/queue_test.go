package queue

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func open(t *testing.T, dir string) *Queue {
	t.Helper()
	q, err := Open(context.Background(), Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	return q
}

func TestQueue_DeduplicatesAndSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	q := open(t, dir)
	require.NoError(t, q.Enqueue(ctx, "m1"))
	require.NoError(t, q.Enqueue(ctx, "m1"))
	require.NoError(t, q.Enqueue(ctx, "m2"))
	n, err := q.Pending(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 2, n, "the same message id twice must be stored once")
	require.NoError(t, q.Close())

	q = open(t, dir)
	defer q.Close()
	n, err = q.Pending(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 2, n, "entries must survive a restart")
	require.NoError(t, q.Check(ctx))
}

func TestQueue_ConsumeAcksAndRetries(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	q := open(t, t.TempDir())
	defer q.Close()
	for _, id := range []string{"a", "b", "c"} {
		require.NoError(t, q.Enqueue(ctx, id))
	}
	var mu sync.Mutex
	seen := map[string]int{}
	done := make(chan error, 1)
	go func() {
		done <- q.Consume(ctx, 2, func(_ context.Context, id string) error {
			mu.Lock()
			defer mu.Unlock()
			seen[id]++
			if id == "b" && seen[id] == 1 {
				return &RetryError{Delay: 10 * time.Millisecond, Err: errors.New("channel down")}
			}
			return nil
		})
	}()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen["a"] == 1 && seen["b"] == 2 && seen["c"] == 1
	}, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		n, err := q.Pending(ctx)
		return err == nil && n == 0
	}, 5*time.Second, 20*time.Millisecond, "acknowledged entries leave the work queue")
	cancel()
	require.NoError(t, <-done)
}

// TestQueue_RemoveDropsOneEntry: the sweep's Remove takes exactly its
// message's entry; an entry an older version wrote on the bare subject is
// still consumed.
func TestQueue_RemoveDropsOneEntry(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	q := open(t, t.TempDir())
	defer q.Close()
	require.NoError(t, q.Enqueue(ctx, "a"))
	require.NoError(t, q.Enqueue(ctx, "b"))
	_, err := q.js.Publish(ctx, subject, []byte("old"))
	require.NoError(t, err)
	require.NoError(t, q.Remove(ctx, "a"))
	require.NoError(t, q.Remove(ctx, "never-queued"))
	n, err := q.Pending(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 2, n)

	var mu sync.Mutex
	var seen []string
	done := make(chan error, 1)
	go func() {
		done <- q.Consume(ctx, 2, func(_ context.Context, id string) error {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, id)
			return nil
		})
	}()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 2
	}, 10*time.Second, 20*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	assert.ElementsMatch(t, []string{"b", "old"}, seen)
}

// Entries waiting for a retry must not hold the consumer's slots: with a
// channel down, its entries are put back with a long delay, and the
// entries of every other channel must still be handed out at once
// (issue 14, point 5).
func TestQueue_RetriesDoNotBlockOthers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	q := open(t, t.TempDir())
	defer q.Close()
	const concurrency = 2
	for i := range 3 * concurrency {
		require.NoError(t, q.Enqueue(ctx, "down-"+string(rune('a'+i))))
	}
	require.NoError(t, q.Enqueue(ctx, "healthy"))
	handled := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- q.Consume(ctx, concurrency, func(_ context.Context, id string) error {
			if id == "healthy" {
				close(handled)
				return nil
			}
			return &RetryError{Delay: time.Hour, Err: errors.New("channel down")}
		})
	}()
	select {
	case <-handled:
	case <-time.After(20 * time.Second):
		t.Fatal("an entry of a healthy channel waited behind entries put back for an hour")
	}
	cancel()
	require.NoError(t, <-done)
}

// TestQueue_RequeueAddsOnlyWhatIsMissing is the start's rebuild: a message
// whose entry is still in the stream gets no second one, however old the
// entry (here one published without the guard, as a start long after the
// publish finds it), and the missing ones are added once.
func TestQueue_RequeueAddsOnlyWhatIsMissing(t *testing.T) {
	ctx := context.Background()
	q := open(t, t.TempDir())
	defer q.Close()
	_, err := q.js.Publish(ctx, entrySubject("a"), []byte("a"))
	require.NoError(t, err)

	added, err := q.Requeue(ctx, []string{"a", "b", "c"})
	require.NoError(t, err)
	require.Equal(t, 2, added)
	added, err = q.Requeue(ctx, []string{"a", "b", "c"})
	require.NoError(t, err)
	require.Zero(t, added)
	require.NoError(t, q.Enqueue(ctx, "c"))
	n, err := q.Pending(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 3, n)

	// An entry taken away (worked, or removed by the sweep) lets the
	// message be queued again at once.
	require.NoError(t, q.Remove(ctx, "b"))
	added, err = q.Requeue(ctx, []string{"b"})
	require.NoError(t, err)
	require.Equal(t, 1, added)
	n, err = q.Pending(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 3, n)
}

// TestQueue_EnqueueWhileWorkedAndAfter: a send repeated while the message's
// entry is being worked on, or put back for a retry, adds no second entry;
// once the entry is acknowledged the message can be queued again (its own
// later send), with no window to wait out.
func TestQueue_EnqueueWhileWorkedAndAfter(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	q := open(t, t.TempDir())
	defer q.Close()
	require.NoError(t, q.Enqueue(ctx, "m"))
	working, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	calls := 0
	done := make(chan error, 1)
	go func() {
		done <- q.Consume(ctx, 2, func(_ context.Context, id string) error {
			mu.Lock()
			calls++
			c := calls
			mu.Unlock()
			switch c {
			case 1:
				close(working)
				<-release
				return &RetryError{Delay: 200 * time.Millisecond, Err: errors.New("channel down")}
			}
			return nil
		})
	}()
	<-working
	require.NoError(t, q.Enqueue(ctx, "m"), "in flight")
	close(release)
	require.NoError(t, q.Enqueue(ctx, "m"), "put back for a retry")
	require.Eventually(t, func() bool {
		n, err := q.Pending(ctx)
		mu.Lock()
		defer mu.Unlock()
		return err == nil && n == 0 && calls == 2
	}, 10*time.Second, 20*time.Millisecond, "one entry, worked twice (the retry), then gone")
	require.NoError(t, q.Enqueue(ctx, "m"), "after the ack")
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls == 3
	}, 10*time.Second, 20*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 3, calls)
}

// TestQueue_OpensAnOlderStream: the stream as the version before issue 18
// left it (a 10-minute duplicates window, entries carrying their message id,
// one on the bare subject) is taken over: the window is shortened, every
// entry is kept and worked once, and a repeated send adds none.
func TestQueue_OpensAnOlderStream(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	q := open(t, dir)
	_, err := q.js.UpdateStream(ctx, jetstream.StreamConfig{
		Name: streamName, Subjects: []string{subject, subject + ".*"}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Duplicates: 10 * time.Minute, Discard: jetstream.DiscardNew, Replicas: 1,
	})
	require.NoError(t, err)
	for _, id := range []string{"a", "b"} {
		_, err := q.js.Publish(ctx, entrySubject(id), []byte(id), jetstream.WithMsgID(id))
		require.NoError(t, err)
	}
	_, err = q.js.Publish(ctx, subject, []byte("old"), jetstream.WithMsgID("old"))
	require.NoError(t, err)
	require.NoError(t, q.Close())

	q = open(t, dir)
	defer q.Close()
	info, err := q.st.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, dedupWindow, info.Config.Duplicates)
	require.NoError(t, q.Enqueue(ctx, "a"))
	added, err := q.Requeue(ctx, []string{"a", "b"})
	require.NoError(t, err)
	assert.Zero(t, added)
	n, err := q.Pending(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 3, n)

	var mu sync.Mutex
	var seen []string
	done := make(chan error, 1)
	go func() {
		done <- q.Consume(ctx, 2, func(_ context.Context, id string) error {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, id)
			return nil
		})
	}()
	require.Eventually(t, func() bool {
		n, err := q.Pending(ctx)
		return err == nil && n == 0
	}, 10*time.Second, 20*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	mu.Lock()
	defer mu.Unlock()
	assert.ElementsMatch(t, []string{"a", "b", "old"}, seen)
}

// TestQueue_StartLoadsInTheBackground: Start returns before the stream is
// read back; a send meanwhile waits for it and is kept, an asynchronous
// one returns at once and lands once the stream is there, Check says
// ErrLoading until then; a stream that cannot be opened is reported by
// Wait and by every send, and Close still returns.
func TestQueue_StartLoadsInTheBackground(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	q := open(t, dir)
	for _, id := range []string{"a", "b"} {
		require.NoError(t, q.Enqueue(ctx, id))
	}
	require.NoError(t, q.Close())

	q, err := Start(ctx, Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	if err := q.Check(ctx); err != nil {
		require.ErrorIs(t, err, ErrLoading)
	}
	require.NoError(t, q.EnqueueAsync("d"))
	require.NoError(t, q.Enqueue(ctx, "c"))
	require.NoError(t, q.Enqueue(ctx, "a"))
	require.NoError(t, q.Check(ctx))
	require.Eventually(t, func() bool {
		n, err := q.Pending(ctx)
		return err == nil && n == 4
	}, 10*time.Second, 10*time.Millisecond, "a, b, c and d, each once")
	n, err := q.Pending(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 4, n)
	require.NoError(t, q.Close())

	// A stream that could not be made ready (here: the daemon stopped
	// while it loaded) is Wait's and every send's error, never ErrLoading.
	stopped, cancel := context.WithCancel(ctx)
	cancel()
	q, err = Start(stopped, Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	require.Error(t, q.Wait(ctx))
	require.Error(t, q.Enqueue(ctx, "a"))
	require.Error(t, q.Check(ctx))
	require.NotErrorIs(t, q.Check(ctx), ErrLoading)
	require.NoError(t, q.Close())
}

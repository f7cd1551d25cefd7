package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt/events"
)

func TestOutbox(t *testing.T) {
	both(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		var o events.Outbox = s
		t0 := time.UnixMilli(1_700_000_000_000)
		for i, size := range []int{10, 500, 10, 10} {
			kind := events.TypeMessageStatus
			if i == 2 {
				kind = events.TypeInstallationHeartbeat
			}
			require.NoError(t, s.Update(ctx, func(tx *Tx) error {
				return tx.InsertEvent(string(kind), make([]byte, size), t0.Add(time.Duration(i)*time.Hour))
			}))
		}
		rows, err := o.Pending(ctx, 10, 100)
		require.NoError(t, err)
		require.Len(t, rows, 1, "stops before the 500-byte row")
		rows, err = o.Pending(ctx, 10, 1)
		require.NoError(t, err)
		require.Len(t, rows, 1, "the first row always comes, even over maxBytes")
		rows, err = o.Pending(ctx, 2, 1<<20)
		require.NoError(t, err)
		require.Len(t, rows, 2)
		assert.Less(t, rows[0].ID, rows[1].ID)
		assert.Equal(t, events.TypeMessageStatus, rows[0].Type)
		assert.Equal(t, t0, rows[0].CreatedAt)

		b, err := o.Backlog(ctx)
		require.NoError(t, err)
		assert.Equal(t, events.BacklogInfo{Count: 4, Bytes: 530, Oldest: t0}, b)

		require.NoError(t, o.Reject(ctx, rows[0].ID, "bad field"))
		require.NoError(t, o.Delete(ctx, []int64{rows[1].ID, 999}))
		n, bytes, err := o.DropOldest(ctx, events.TypeMessageStatus, t0.Add(4*time.Hour), 10)
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		assert.EqualValues(t, 10, bytes)
		b, err = o.Backlog(ctx)
		require.NoError(t, err)
		assert.Equal(t, 1, b.Count, "only the heartbeat is left")
		var rejected int
		require.NoError(t, s.r.QueryRow(`SELECT COUNT(*) FROM event_rejected WHERE reason = 'bad field'`).Scan(&rejected))
		assert.Equal(t, 1, rejected)
	})
}

// TestUpdate_GroupCommitIsolation: concurrent updates share transactions, but
// a failing one undoes only its own writes.
func TestUpdate_GroupCommitIsolation(t *testing.T) {
	both(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		errBoom := errors.New("boom")
		var wg sync.WaitGroup
		results := make([]error, 200)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = s.Update(ctx, func(tx *Tx) error {
					c := &Conversation{MessageID: fmt.Sprint("m", i), ConversationID: "c", Direction: "OUTGOING", Status: "OPPRETTET", LastUpdate: time.Now()}
					if err := tx.InsertConversation(c); err != nil {
						return err
					}
					if i%3 == 0 {
						return errBoom
					}
					return nil
				})
			}()
		}
		wg.Wait()
		for i, err := range results {
			if i%3 == 0 {
				assert.ErrorIs(t, err, errBoom)
			} else {
				assert.NoError(t, err)
			}
		}
		var n int
		require.NoError(t, s.r.QueryRow(`SELECT COUNT(*) FROM conversation`).Scan(&n))
		assert.Equal(t, 200-67, n)

		// A duplicate key fails that update only.
		err := s.Update(ctx, func(tx *Tx) error {
			return tx.InsertConversation(&Conversation{MessageID: "m1", ConversationID: "c", Direction: "OUTGOING", Status: "OPPRETTET"})
		})
		assert.ErrorIs(t, err, ErrDuplicate)
	})
}

func TestUpdate_AfterClose(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg Config) {
		s := mustOpen(t, cfg)
		require.NoError(t, s.Update(context.Background(), func(*Tx) error { return nil }))
		require.NoError(t, s.Close())
		assert.ErrorIs(t, s.Update(context.Background(), func(*Tx) error { return nil }), ErrClosed)
	})
}

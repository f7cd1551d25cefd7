package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCounts_KeptAndInvalidated checks the kept list counts against what a
// full count says, through inserts, status changes and both kinds of
// delete, on both backends (PostgreSQL counts every page).
func TestCounts_KeptAndInvalidated(t *testing.T) {
	both(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		t0 := time.UnixMilli(1_700_000_000_000)
		add := func(i int, recv string) {
			require.NoError(t, s.Update(ctx, func(tx *Tx) error {
				id := fmt.Sprint("m", i)
				c := &Conversation{MessageID: id, ConversationID: id, Direction: "OUTGOING", ReceiverIdentifier: recv,
					Status: "OPPRETTET", LastUpdate: t0.Add(time.Duration(i) * time.Second)}
				if err := tx.InsertConversation(c); err != nil {
					return err
				}
				return tx.InsertStatus(&Status{ConvID: c.ID, Status: "OPPRETTET", LastUpdate: c.LastUpdate})
			}))
		}
		want := func(convs, recvA, statuses int) {
			t.Helper()
			for range 2 { // the second time from the kept count
				_, n, err := s.ListConversations(ctx, ConversationFilter{}, Page{Size: 1})
				require.NoError(t, err)
				require.Equal(t, convs, n)
				_, n, err = s.ListConversations(ctx, ConversationFilter{ReceiverIdentifier: "A"}, Page{Size: 1})
				require.NoError(t, err)
				require.Equal(t, recvA, n)
				_, n, err = s.ListStatuses(ctx, StatusFilter{}, Page{Size: 1})
				require.NoError(t, err)
				require.Equal(t, statuses, n)
			}
		}
		for i := range 10 {
			add(i, []string{"A", "B"}[i%2])
		}
		want(10, 5, 10)
		add(10, "A")
		add(11, "B")
		want(12, 6, 12)

		// A status changes the conversation, not what the counts read.
		require.NoError(t, s.Update(ctx, func(tx *Tx) error {
			c, err := tx.Conversation("m3", "OUTGOING")
			if err != nil {
				return err
			}
			if err := tx.InsertStatus(&Status{ConvID: c.ID, Status: "SENDT", LastUpdate: t0}); err != nil {
				return err
			}
			c.Status = "SENDT"
			return tx.UpdateConversation(c)
		}))
		want(12, 6, 13)

		// Deletes in the middle, through Write and through Tx, and of the
		// oldest: each invalidates.
		require.NoError(t, s.DeleteConversationsByMessageID(ctx, "m4"))
		want(11, 5, 12)
		require.NoError(t, s.Update(ctx, func(tx *Tx) error {
			_, err := tx.exec(`DELETE FROM conversation WHERE message_id = ?`, "m6")
			return err
		}))
		want(10, 4, 11)
		require.NoError(t, s.Update(ctx, func(tx *Tx) error {
			_, err := tx.exec(`DELETE FROM conversation WHERE message_id = ?`, "m0")
			return err
		}))
		want(9, 3, 10)
		add(12, "A")
		want(10, 4, 11)

		_, n, err := s.ListStatuses(ctx, StatusFilter{}, Page{Size: 1, NoTotal: true})
		require.NoError(t, err)
		require.Zero(t, n, "no total asked, none counted")
	})
}

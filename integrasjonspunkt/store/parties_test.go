package store

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMigration0007_OldAndNewRowsReadTheSame: a conversation written before
// the parties and status_code columns and one written after read back the
// same, and every filter on those columns finds both; the new one stores
// its sender, receiver and status as flags and a code.
func TestMigration0007_OldAndNewRowsReadTheSame(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg Config) {
		ctx := context.Background()
		old := cfg
		old.upTo = 6
		s := mustOpen(t, old)
		require.NoError(t, s.Write(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO conversation (message_id, conversation_id, direction, sender,
				sender_identifier, receiver, receiver_identifier, service_identifier, status, finished, expiry, created_at, last_update) VALUES
				('old', 'c1', 'OUTGOING', '0192:910077473', '910077473', '0192:910075918', '910075918', 'DPO', 'LEVERT', 1, 5000, 1000, 4000),
				('old-own', 'c2', 'INCOMING', 'x', '', '', '', 'DPF', 'X_OWN_STATUS', 0, 0, 1000, 2000)`)
			return err
		}))
		require.NoError(t, s.Close())

		s = mustOpen(t, cfg)
		defer s.Close()
		insert := func(c *Conversation) {
			require.NoError(t, s.Update(ctx, func(tx *Tx) error { return tx.InsertConversation(c) }))
		}
		insert(&Conversation{MessageID: "new", ConversationID: "c1", Direction: "OUTGOING", Sender: "0192:910077473",
			SenderIdentifier: "910077473", Receiver: "0192:910075918", ReceiverIdentifier: "910075918", ServiceIdentifier: "DPO",
			Status: "OPPRETTET", LastUpdate: time.UnixMilli(1000)})
		// A sender that is not its identifier's organisation number, a
		// receiver without identifier: both kept as text.
		insert(&Conversation{MessageID: "new-own", ConversationID: "c2", Direction: "INCOMING", Sender: "9908:910077473",
			SenderIdentifier: "910077473", Receiver: "0192:", ServiceIdentifier: "DPF", Status: "X_OWN_STATUS", LastUpdate: time.UnixMilli(2000)})
		require.NoError(t, s.Update(ctx, func(tx *Tx) error {
			c, err := tx.Conversation("new", "OUTGOING")
			if err != nil {
				return err
			}
			c.Status, c.Finished, c.LastUpdate = "LEVERT", true, time.UnixMilli(4000)
			return tx.UpdateConversation(c)
		}))

		for _, id := range []string{"old", "new"} {
			c, err := s.ConversationByMessageID(ctx, id, "OUTGOING")
			require.NoError(t, err)
			assert.Equal(t, []string{"0192:910077473", "910077473", "0192:910075918", "910075918", "LEVERT"},
				[]string{c.Sender, c.SenderIdentifier, c.Receiver, c.ReceiverIdentifier, c.Status}, id)
		}
		c, err := s.ConversationByMessageID(ctx, "new-own", "INCOMING")
		require.NoError(t, err)
		assert.Equal(t, []string{"9908:910077473", "0192:", "X_OWN_STATUS"}, []string{c.Sender, c.Receiver, c.Status})

		var parties sql.NullInt64
		var sender, receiver, status string
		var code sql.NullInt64
		require.NoError(t, s.r.QueryRowContext(ctx, `SELECT parties, sender, receiver, status, status_code FROM conversation
			WHERE message_id = 'new'`).Scan(&parties, &sender, &receiver, &status, &code))
		assert.Equal(t, int64(partySender|partyReceiver), parties.Int64)
		assert.Equal(t, []string{"", "", ""}, []string{sender, receiver, status})
		assert.True(t, code.Valid)

		ids := func(f ConversationFilter) []string {
			cs, total, err := s.ListConversations(ctx, f, Page{Size: 10, Sort: []Order{{Property: "id"}}})
			require.NoError(t, err)
			var out []string
			for _, c := range cs {
				out = append(out, c.MessageID)
			}
			assert.Equal(t, len(out), total)
			return out
		}
		assert.Equal(t, []string{"old", "new"}, ids(ConversationFilter{Sender: "0192:910077473"}))
		assert.Equal(t, []string{"old", "new"}, ids(ConversationFilter{Receiver: "0192:910075918"}))
		assert.Equal(t, []string{"new-own"}, ids(ConversationFilter{Sender: "9908:910077473"}))
		assert.Equal(t, []string{"new-own"}, ids(ConversationFilter{Receiver: "0192:"}))
		assert.Equal(t, []string{"old", "new"}, ids(ConversationFilter{Status: "LEVERT"}))
		assert.Equal(t, []string{"old-own", "new-own"}, ids(ConversationFilter{Status: "X_OWN_STATUS"}))
		assert.Empty(t, ids(ConversationFilter{Status: "OPPRETTET"}))
	})
}

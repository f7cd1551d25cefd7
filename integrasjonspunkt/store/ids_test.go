package store

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testMsg   = "0b8d3dff-504d-4fac-9a72-22342a41d255"
	testConv  = "168d1475-97c3-490e-b6a4-ee72a71f4ed4"
	testUpper = "0B8D3DFF-504D-4FAC-9A72-22342A41D255"
)

// oldStore writes a store at schema 7 with conversations 1–3, their
// statuses, and a conversation 4 that was deleted again.
func oldStore(t *testing.T, cfg Config) {
	ctx := context.Background()
	old := cfg
	old.upTo = 7
	s := mustOpen(t, old)
	require.NoError(t, s.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO conversation (message_id, conversation_id, direction, service_identifier,
			status, finished, created_at, last_update) VALUES
			(?, ?, 'OUTGOING', 'DPO', 'LEVERT', 1, 1000, 4000),
			(?, 'C-1', 'INCOMING', 'DPF', 'MOTTATT', 0, 1000, 2000),
			('not-a-uuid', ?, 'OUTGOING', 'DPO', 'OPPRETTET', 0, 1000, 3000),
			('gone', 'gone', 'OUTGOING', 'DPO', 'OPPRETTET', 0, 1000, 3000)`, testMsg, testConv, testUpper, testConv)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM conversation WHERE message_id = 'gone'`); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO message_status (conv_id, status, last_update) VALUES
			(1, 'OPPRETTET', 1000), (1, 'LEVERT', 4000), (2, 'MOTTATT', 2000), (3, 'OPPRETTET', 3000)`)
		return err
	}))
	require.NoError(t, s.Close())
}

// TestMigration0008_UpgradesInPlace: after the upgrade every conversation
// reads back with its ids as written, each id finds its conversations and
// statuses, the statuses are all there and still go with their
// conversation, and conversation ids are not handed out again.
func TestMigration0008_UpgradesInPlace(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg Config) {
		ctx := context.Background()
		oldStore(t, cfg)
		s := mustOpen(t, cfg)
		defer s.Close()

		ids := func(f ConversationFilter) []string {
			cs, total, err := s.ListConversations(ctx, f, Page{Size: 10, Sort: []Order{{Property: "id"}}})
			require.NoError(t, err)
			var out []string
			for _, c := range cs {
				out = append(out, c.MessageID+" "+c.ConversationID)
			}
			assert.Equal(t, len(out), total)
			return out
		}
		assert.Equal(t, []string{testMsg + " " + testConv, testUpper + " C-1", "not-a-uuid " + testConv}, ids(ConversationFilter{}))
		assert.Equal(t, []string{testMsg + " " + testConv}, ids(ConversationFilter{MessageID: testMsg}))
		assert.Equal(t, []string{testUpper + " C-1"}, ids(ConversationFilter{MessageID: testUpper}))
		assert.Equal(t, []string{testMsg + " " + testConv, "not-a-uuid " + testConv}, ids(ConversationFilter{ConversationID: testConv}))
		assert.Empty(t, ids(ConversationFilter{ConversationID: "168D1475-97C3-490E-B6A4-EE72A71F4ED4"}))

		c, err := s.ConversationByMessageID(ctx, testMsg, "OUTGOING")
		require.NoError(t, err)
		assert.Equal(t, testConv, c.ConversationID)
		require.Len(t, c.Statuses, 2)
		assert.Equal(t, testMsg, c.Statuses[1].MessageID)
		sts, total, err := s.ListStatuses(ctx, StatusFilter{MessageID: testMsg}, Page{Size: 10})
		require.NoError(t, err)
		assert.Equal(t, 2, total)
		assert.Equal(t, testConv, sts[0].ConversationID)
		sts, _, err = s.ListStatuses(ctx, StatusFilter{ConversationID: testConv}, Page{Size: 10})
		require.NoError(t, err)
		assert.Len(t, sts, 3)
		taken, err := s.MessageIDTaken(ctx, testMsg, false)
		require.NoError(t, err)
		assert.True(t, taken)
		unfinished, err := s.UnfinishedOutgoing(ctx)
		require.NoError(t, err)
		assert.Equal(t, []string{"not-a-uuid"}, unfinished)

		if !s.pg {
			var typ string
			require.NoError(t, s.r.QueryRowContext(ctx, `SELECT typeof(message_id) || typeof(conversation_id) FROM conversation WHERE id = 1`).Scan(&typ))
			assert.Equal(t, "blobblob", typ)
		}

		// A new conversation gets an id past the deleted one's, and deleting
		// a conversation still takes its statuses along.
		require.NoError(t, s.Update(ctx, func(tx *Tx) error {
			c := &Conversation{MessageID: "5e0bd8c3-8d4c-4f07-a3c5-6f6b7c0c6a11", ConversationID: testConv, Direction: "OUTGOING",
				Status: "OPPRETTET", LastUpdate: time.UnixMilli(5000)}
			if err := tx.InsertConversation(c); err != nil {
				return err
			}
			assert.Equal(t, int64(5), c.ID)
			return nil
		}))
		require.NoError(t, s.DeleteConversationsByMessageID(ctx, testMsg))
		var n int
		require.NoError(t, s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM message_status`).Scan(&n))
		assert.Equal(t, 2, n)
	})
}

// TestMigration0008_FailingLeavesTheOldStore: the copy of the table is one
// transaction with the foreign key check at its end; a store that fails
// it (or whose daemon is killed before the commit) is the old store, whole.
func TestMigration0008_FailingLeavesTheOldStore(t *testing.T) {
	ctx := context.Background()
	cfg := Config{Path: t.TempDir() + "/store.db", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	oldStore(t, cfg)
	old := cfg
	old.upTo = 7
	s := mustOpen(t, old)
	orphan := func(q string) {
		_, err := s.w.ExecContext(ctx, `PRAGMA foreign_keys = OFF`)
		require.NoError(t, err)
		_, err = s.w.ExecContext(ctx, q)
		require.NoError(t, err)
		_, err = s.w.ExecContext(ctx, `PRAGMA foreign_keys = ON`)
		require.NoError(t, err)
	}
	orphan(`INSERT INTO message_status (conv_id, status, last_update) VALUES (99, 'OPPRETTET', 1)`)
	require.NoError(t, s.Close())

	_, err := Open(ctx, cfg)
	require.ErrorContains(t, err, "break a foreign key")
	v, err := FileSchemaVersion(ctx, cfg.Path)
	require.NoError(t, err)
	assert.Equal(t, 7, v)

	s = mustOpen(t, old)
	var typ string
	var tables, statuses int
	require.NoError(t, s.r.QueryRowContext(ctx, `SELECT typeof(message_id) FROM conversation WHERE id = 1`).Scan(&typ))
	assert.Equal(t, "text", typ)
	require.NoError(t, s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'conversation%'`).Scan(&tables))
	assert.Equal(t, 6, tables, "the table and its five indexes, nothing renamed")
	require.NoError(t, s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM message_status`).Scan(&statuses))
	assert.Equal(t, 5, statuses)
	orphan(`DELETE FROM message_status WHERE conv_id = 99`)
	require.NoError(t, s.Close())

	s = mustOpen(t, cfg)
	defer s.Close()
	c, err := s.ConversationByMessageID(ctx, testMsg, "OUTGOING")
	require.NoError(t, err)
	assert.Len(t, c.Statuses, 2)
}

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
	testProcess  = "urn:no:difi:profile:arkivmelding:administrasjon:ver1.0"
	testDocument = "urn:no:difi:arkivmelding:xsd::arkivmelding"
)

// TestMigration0006_UpgradesInPlace writes a store with the schema before
// the coded columns, as that binary wrote it, upgrades it and reads every
// record back as before: codes for the known texts, the rest left as text.
func TestMigration0006_UpgradesInPlace(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg Config) {
		ctx := context.Background()
		old := cfg
		old.upTo = 5
		s := mustOpen(t, old)
		require.NoError(t, s.Write(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO conversation (id, message_id, conversation_id, direction, sender,
				sender_identifier, receiver, receiver_identifier, process_identifier, document_identifier, message_reference,
				message_title, service_identifier, client, status, finished, expiry, created_at, last_update) VALUES
				(1, '0b8d3dff-504d-4fac-9a72-22342a41d255', '168d1475-97c3-490e-b6a4-ee72a71f4ed4', 'OUTGOING', '0192:910077473',
				 '910077473', '0192:910075918', '910075918', ?, ?, '2026/118-7', 'Tilskudd', 'DPO', 'Sak/3.1', 'LEVERT', 1, 5000, 1000, 4000),
				(2, 'not-a-uuid', 'C-1', 'INCOMING', '', '', '', '', 'urn:other', '', '', '', 'DPF', '', 'X_OWN_STATUS', 0, 0, 1000, 2000)`,
				testProcess, testDocument)
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO message_status (id, conv_id, status, description, raw_receipt, last_update) VALUES
				(1, 1, 'OPPRETTET', NULL, NULL, 1000), (2, 1, 'FEIL', 'x - Moved to DLQ', NULL, 2000),
				(3, 1, 'LEVERT', NULL, '<k/>', 4000), (4, 2, 'X_OWN_STATUS', 'own', NULL, 2000)`)
			return err
		}))
		require.NoError(t, s.Close())

		s = mustOpen(t, cfg)
		defer s.Close()
		c, err := s.ConversationByMessageID(ctx, "0b8d3dff-504d-4fac-9a72-22342a41d255", "OUTGOING")
		require.NoError(t, err)
		assert.Equal(t, testProcess, c.ProcessIdentifier)
		assert.Equal(t, testDocument, c.DocumentIdentifier)
		assert.Equal(t, "Sak/3.1", c.Client)
		assert.Equal(t, "LEVERT", c.Status)
		require.Len(t, c.Statuses, 3)
		assert.Equal(t, []string{"OPPRETTET", "FEIL", "LEVERT"}, []string{c.Statuses[0].Status, c.Statuses[1].Status, c.Statuses[2].Status})
		assert.Equal(t, "<k/>", c.Statuses[2].RawReceipt)
		assert.Equal(t, time.UnixMilli(4000), c.Statuses[2].LastUpdate)
		c2, err := s.ConversationByMessageID(ctx, "not-a-uuid", "INCOMING")
		require.NoError(t, err)
		assert.Equal(t, "urn:other", c2.ProcessIdentifier)
		assert.Equal(t, "", c2.DocumentIdentifier)
		assert.Equal(t, "X_OWN_STATUS", c2.Statuses[0].Status)

		// The texts are codes now, but a status the seed does not know.
		var pcode, dcode, ccode sql.NullInt64
		var ptext, dtext, ctext string
		require.NoError(t, s.r.QueryRowContext(ctx, `SELECT process_code, process_identifier, document_code, document_identifier,
			client_code, client FROM conversation WHERE id = 1`).Scan(&pcode, &ptext, &dcode, &dtext, &ccode, &ctext))
		assert.True(t, pcode.Valid && dcode.Valid && ccode.Valid)
		assert.Equal(t, []string{"", "", ""}, []string{ptext, dtext, ctext})
		var texts []string
		rows, err := s.r.QueryContext(ctx, `SELECT status FROM message_status ORDER BY id`)
		require.NoError(t, err)
		for rows.Next() {
			var v string
			require.NoError(t, rows.Scan(&v))
			texts = append(texts, v)
		}
		require.NoError(t, rows.Err())
		assert.Equal(t, []string{"", "", "", "X_OWN_STATUS"}, texts)

		// The filters find the coded and the uncoded alike.
		for status, want := range map[string]int{"LEVERT": 1, "X_OWN_STATUS": 1, "MOTTATT": 0} {
			sts, total, err := s.ListStatuses(ctx, StatusFilter{Status: status, From: time.UnixMilli(1), To: time.UnixMilli(9000)}, Page{Size: 10})
			require.NoError(t, err)
			assert.Equal(t, want, total, status)
			assert.Len(t, sts, want, status)
		}
		sts, _, err := s.ListStatuses(ctx, StatusFilter{}, Page{Size: 10, Sort: []Order{{Property: "status"}}})
		require.NoError(t, err)
		assert.Equal(t, []string{"FEIL", "LEVERT", "OPPRETTET", "X_OWN_STATUS"},
			[]string{sts[0].Status, sts[1].Status, sts[2].Status, sts[3].Status}, "sorted by the text, not the code")
		n, err := s.DeadLetters(ctx)
		require.NoError(t, err)
		assert.Equal(t, 1, n)
	})
}

// TestTerms_LearnedAfterCommit: a text the store has no term for is written
// as text, gets a term once that transaction committed, and is written as
// its code from then on; both read back the same.
func TestTerms_LearnedAfterCommit(t *testing.T) {
	both(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		insert := func(id string) {
			require.NoError(t, s.Update(ctx, func(tx *Tx) error {
				c := &Conversation{MessageID: id, ConversationID: id, Direction: "OUTGOING", Status: "OPPRETTET",
					ProcessIdentifier: "urn:new:process", DocumentIdentifier: testDocument, Client: "efm-test/1", LastUpdate: time.UnixMilli(1000)}
				if err := tx.InsertConversation(c); err != nil {
					return err
				}
				return tx.InsertStatus(&Status{ConvID: c.ID, Status: "OPPRETTET", LastUpdate: c.LastUpdate})
			}))
		}
		insert("m1")
		insert("m2")
		var coded []bool
		rows, err := s.r.QueryContext(ctx, `SELECT process_code IS NOT NULL FROM conversation ORDER BY id`)
		require.NoError(t, err)
		for rows.Next() {
			var b bool
			require.NoError(t, rows.Scan(&b))
			coded = append(coded, b)
		}
		require.NoError(t, rows.Err())
		assert.Equal(t, []bool{false, true}, coded, "m1 as text, m2 as the code learned after m1")
		for _, id := range []string{"m1", "m2"} {
			c, err := s.ConversationByMessageID(ctx, id, "OUTGOING")
			require.NoError(t, err)
			assert.Equal(t, "urn:new:process", c.ProcessIdentifier)
			assert.Equal(t, testDocument, c.DocumentIdentifier)
			assert.Equal(t, "efm-test/1", c.Client)
			assert.Equal(t, "OPPRETTET", c.Statuses[0].Status)
		}
		cs, _, err := s.ListConversations(ctx, ConversationFilter{}, Page{Size: 10, Sort: []Order{{Property: "processIdentifier"}}})
		require.NoError(t, err)
		assert.Len(t, cs, 2)
	})
}

// TestMigration0006_FailingHalfWayLeavesTheOldStore: the migration is one
// transaction, so a store whose conversion fails (or whose daemon is killed)
// after the conversation rows were converted is the old store, whole, and
// the next start converts it.
func TestMigration0006_FailingHalfWayLeavesTheOldStore(t *testing.T) {
	ctx := context.Background()
	cfg := Config{Path: t.TempDir() + "/store.db", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	old := cfg
	old.upTo = 5
	s := mustOpen(t, old)
	require.NoError(t, s.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO conversation (id, message_id, conversation_id, direction, process_identifier,
			status, created_at, last_update) VALUES (1, 'm1', 'c1', 'OUTGOING', ?, 'LEVERT', 1, 1)`, testProcess)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO message_status (conv_id, status, last_update) VALUES (1, 'LEVERT', 1)`); err != nil {
			return err
		}
		// The statuses are converted after the conversations.
		_, err = tx.ExecContext(ctx, `CREATE TRIGGER fail_0006 BEFORE UPDATE ON message_status BEGIN SELECT RAISE(ABORT, 'injected'); END`)
		return err
	}))
	require.NoError(t, s.Close())

	_, err := Open(ctx, cfg)
	require.ErrorContains(t, err, "injected")
	v, err := FileSchemaVersion(ctx, cfg.Path)
	require.NoError(t, err)
	assert.Equal(t, 5, v)
	s = mustOpen(t, old)
	var process string
	require.NoError(t, s.r.QueryRowContext(ctx, `SELECT process_identifier FROM conversation WHERE id = 1`).Scan(&process))
	assert.Equal(t, testProcess, process, "the conversation rows' conversion was rolled back")
	var terms int
	require.NoError(t, s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE name = 'term'`).Scan(&terms))
	assert.Zero(t, terms)
	require.NoError(t, s.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DROP TRIGGER fail_0006`)
		return err
	}))
	require.NoError(t, s.Close())

	s = mustOpen(t, cfg)
	defer s.Close()
	c, err := s.ConversationByMessageID(ctx, "m1", "OUTGOING")
	require.NoError(t, err)
	assert.Equal(t, testProcess, c.ProcessIdentifier)
	assert.Equal(t, "LEVERT", c.Statuses[0].Status)
}

package store

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/internal/pgtest"
)

// TestCopyTo_ResumesAndVerifies: a SQLite store with a record in every
// table moves to PostgreSQL; a copy interrupted mid-table resumes where it
// stopped, the counts match, and ids handed out afterwards follow the
// copied ones.
func TestCopyTo_ResumesAndVerifies(t *testing.T) {
	srv := pgtest.Require(t)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	src := mustOpen(t, Config{Path: filepath.Join(t.TempDir(), "store.db"), Logger: log})
	defer src.Close()
	_, err := src.InstallationID(ctx)
	require.NoError(t, err)
	t0 := time.UnixMilli(1_700_000_000_000)
	require.NoError(t, src.Update(ctx, func(tx *Tx) error {
		c := &Conversation{MessageID: "m1", ConversationID: "c1", Direction: "OUTGOING", Status: "LEVERT", LastUpdate: t0,
			ProcessIdentifier: "urn:no:difi:profile:avtalt:avtalt:ver1.0"}
		if err := tx.InsertConversation(c); err != nil {
			return err
		}
		st := &Status{ConvID: c.ID, Status: "LEVERT", RawReceipt: "<kvittering/>", LastUpdate: t0}
		if err := tx.InsertStatus(st); err != nil {
			return err
		}
		if err := tx.QueueStatus(st.ID); err != nil {
			return err
		}
		if err := tx.InsertStatusReply(&StatusReply{MessageID: "m1", ConversationID: "c1", Status: "MOTTATT", SBD: []byte{0, 1}, CreatedAt: t0}); err != nil {
			return err
		}
		if err := tx.InsertOutgoing(&Outgoing{MessageID: "o1", ConversationID: "c", SBD: []byte("{}"), State: StateQueued, Expiry: t0, LastUpdated: t0}); err != nil {
			return err
		}
		if err := tx.InsertAttachment(&Attachment{MessageID: "o1", Filename: "a.pdf", MimeType: "application/pdf", Size: 2, Data: []byte{9, 9}}); err != nil {
			return err
		}
		if err := tx.InsertOutgoing(&Outgoing{MessageID: "k1", ConversationID: "c", SBD: []byte("{}"), State: StateQueued, Expiry: t0, LastUpdated: t0}); err != nil {
			return err
		}
		if err := tx.InsertAttachment(&Attachment{MessageID: "k1", Filename: "k.pdf", MimeType: "application/pdf", File: "f1"}); err != nil {
			return err
		}
		if err := tx.KeepPayload("k1", t0); err != nil {
			return err
		}
		if _, err := tx.DeleteOutgoing("k1"); err != nil {
			return err
		}
		if err := tx.InsertIncoming(&Incoming{MessageID: "i1", ConversationID: "c", SBD: []byte("{}"), Package: "p1", Expiry: t0, LastUpdated: t0}); err != nil {
			return err
		}
		for i := range 1234 {
			if err := tx.InsertEvent("message_status", []byte(fmt.Sprint("event", i)), t0); err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(t, src.RecordRetentionRun(ctx, RetentionRun{Started: t0, Finished: t0, Conversations: 1}, 10))
	require.NoError(t, src.SaveSubscription(ctx, &Subscription{Name: "s", PushEndpoint: "http://x", Resource: "all", Event: "all"}))
	rows, err := src.Pending(ctx, 1, 1<<20)
	require.NoError(t, err)
	require.NoError(t, src.Reject(ctx, rows[0].ID, "bad"))

	dst := mustOpen(t, Config{Postgres: srv.URL(srv.CreateDB(t)), Logger: log})
	defer dst.Close()
	cctx, cancel := context.WithCancel(ctx)
	_, err = src.CopyTo(cctx, dst, func(table string, n int64) {
		if table == "event_outbox" && n >= copyBatch {
			cancel() // the operator's Ctrl-C half-way through the outbox
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	var partial int
	require.NoError(t, dst.r.QueryRow(`SELECT COUNT(*) FROM event_outbox`).Scan(&partial))
	assert.Equal(t, copyBatch, partial, "whole batches are committed")

	var resumedFrom int64 = -1
	counts, err := src.CopyTo(ctx, dst, func(table string, n int64) {
		if table == "event_outbox" && resumedFrom < 0 {
			resumedFrom = n
		}
	})
	require.NoError(t, err)
	assert.EqualValues(t, copyBatch, resumedFrom, "the second run continued after the copied rows")
	// term: the seeded statuses and the process identifier learned after m1.
	want := map[string]int64{"term": 12, "installation": 1, "conversation": 1, "message_status": 1, "status_queue": 1, "status_reply": 1,
		"subscription": 1, "outgoing_message": 1, "attachment": 1, "incoming_message": 1, "event_outbox": 1233, "event_rejected": 1,
		"kept_payload": 1, "kept_attachment": 1, "retention_run": 1}
	for _, c := range counts {
		assert.Equal(t, want[c.Table], c.Source, c.Table)
		assert.Equal(t, c.Source, c.Copied, c.Table)
	}

	// The records read back alike.
	id1, err := src.InstallationID(ctx)
	require.NoError(t, err)
	id2, err := dst.InstallationID(ctx)
	require.NoError(t, err)
	assert.Equal(t, id1, id2)
	c1, err := src.ConversationByMessageID(ctx, "m1", "OUTGOING")
	require.NoError(t, err)
	c2, err := dst.ConversationByMessageID(ctx, "m1", "OUTGOING")
	require.NoError(t, err)
	assert.Equal(t, c1, c2)
	a2, err := dst.Attachments(ctx, "o1")
	require.NoError(t, err)
	assert.Equal(t, []byte{9, 9}, a2[0].Data)
	k2, err := dst.GetKeptPayload(ctx, "k1")
	require.NoError(t, err)
	assert.Equal(t, "f1", k2.Attachments[0].File)

	// New rows get ids after the copied ones.
	require.NoError(t, dst.Update(ctx, func(tx *Tx) error {
		c := &Conversation{MessageID: "m2", ConversationID: "c2", Direction: "OUTGOING", Status: "OPPRETTET", LastUpdate: t0}
		if err := tx.InsertConversation(c); err != nil {
			return err
		}
		assert.Greater(t, c.ID, c1.ID)
		return tx.InsertOutgoing(&Outgoing{MessageID: "o2", ConversationID: "c", SBD: []byte("{}"), State: StateQueued, Expiry: t0, LastUpdated: t0})
	}))
	outs, _, err := dst.ListOutgoing(ctx, MessageFilter{}, Page{Size: 10})
	require.NoError(t, err)
	assert.Equal(t, []string{"o1", "o2"}, []string{outs[0].MessageID, outs[1].MessageID}, "insertion order carried over")

	// Running it again once done changes nothing, and says so by counts.
	_, err = src.CopyTo(ctx, dst, nil)
	assert.ErrorIs(t, err, ErrCountMismatch, "the destination now has a row the source has not")
}

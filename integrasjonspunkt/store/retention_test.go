package store

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// delivered writes one message as the daemon leaves it at its final status:
// a finished conversation with its statuses (one on the status queue), its
// outgoing row and attachment written at accept and deleted at SENDT.
func delivered(t *testing.T, s *Store, id string, at time.Time, payload []byte) {
	t.Helper()
	accepted(t, s, id, at, payload)
	deliver(t, s, id, at)
}

// accepted writes what accepting a message writes.
func accepted(t *testing.T, s *Store, id string, at time.Time, payload []byte) {
	t.Helper()
	require.NoError(t, s.Update(context.Background(), func(tx *Tx) error {
		if err := tx.InsertOutgoing(&Outgoing{MessageID: id, ConversationID: "c-" + id, ProcessIdentifier: "p", ServiceIdentifier: "DPO",
			DocumentType: "arkivmelding", SBD: []byte(`{}`), State: StateQueued, Expiry: at.Add(time.Hour), LastUpdated: at}); err != nil {
			return err
		}
		if err := tx.InsertAttachment(&Attachment{MessageID: id, Filename: "a.pdf", MimeType: "application/pdf", Size: int64(len(payload)), Data: payload}); err != nil {
			return err
		}
		c := &Conversation{MessageID: id, ConversationID: "c-" + id, Direction: "OUTGOING", ServiceIdentifier: "DPO",
			Status: "OPPRETTET", LastUpdate: at}
		if err := tx.InsertConversation(c); err != nil {
			return err
		}
		return tx.InsertStatus(&Status{ConvID: c.ID, Status: "OPPRETTET", LastUpdate: at})
	}))
}

// deliver records the road to LEVERT, removing the outgoing row at SENDT.
func deliver(t *testing.T, s *Store, id string, at time.Time) {
	t.Helper()
	require.NoError(t, s.Update(context.Background(), func(tx *Tx) error {
		c, err := tx.Conversation(id, "OUTGOING")
		if err != nil {
			return err
		}
		for _, st := range []string{"SENDT", "MOTTATT", "LEVERT"} {
			s := &Status{ConvID: c.ID, Status: st, LastUpdate: at}
			if err := tx.InsertStatus(s); err != nil {
				return err
			}
			if st == "LEVERT" {
				if err := tx.QueueStatus(s.ID); err != nil {
					return err
				}
			}
		}
		c.Status, c.Finished, c.LastUpdate = "LEVERT", true, at
		if err := tx.UpdateConversation(c); err != nil {
			return err
		}
		_, err = tx.DeleteOutgoing(id)
		return err
	}))
}

func count(t *testing.T, s *Store, table string) int {
	t.Helper()
	var n int
	require.NoError(t, s.r.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM `+table).Scan(&n))
	return n
}

// TestPruneHistory: finished conversations older than the cutoff go with
// their statuses and status-queue entries, a batch at a time; newer ones and
// unfinished ones of any age stay.
func TestPruneHistory(t *testing.T) {
	both(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Now()
		old := now.AddDate(-2, -1, 0)
		for i := range 5 {
			delivered(t, s, fmt.Sprint("old", i), old.Add(time.Duration(i)*time.Minute), nil)
		}
		delivered(t, s, "new", now.AddDate(0, -23, 0), nil)
		require.NoError(t, s.Update(ctx, func(tx *Tx) error {
			c := &Conversation{MessageID: "stuck", ConversationID: "c", Direction: "OUTGOING", ServiceIdentifier: "DPO", Status: "SENDT", LastUpdate: old}
			if err := tx.InsertConversation(c); err != nil {
				return err
			}
			return tx.InsertStatus(&Status{ConvID: c.ID, Status: "SENDT", LastUpdate: old})
		}))

		cut := now.AddDate(-2, 0, 0)
		convs, sts, err := s.PruneHistory(ctx, cut, 3)
		require.NoError(t, err)
		assert.Equal(t, 3, convs)
		assert.Equal(t, 12, sts)
		convs, sts, err = s.PruneHistory(ctx, cut, 3)
		require.NoError(t, err)
		assert.Equal(t, 2, convs)
		assert.Equal(t, 8, sts)
		convs, _, err = s.PruneHistory(ctx, cut, 3)
		require.NoError(t, err)
		assert.Zero(t, convs)

		assert.Equal(t, 2, count(t, s, "conversation"), "the newer finished one and the unfinished one")
		assert.Equal(t, 5, count(t, s, "message_status"))
		assert.Equal(t, 1, count(t, s, "status_queue"))
		_, err = s.ConversationByMessageID(ctx, "old0", "OUTGOING")
		assert.ErrorIs(t, err, ErrNotFound)

		n, stale, err := s.StaleUnfinished(ctx, now.AddDate(0, 0, -90), 100, 10)
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		require.Len(t, stale, 1)
		assert.Equal(t, "stuck", stale[0].MessageID)
		assert.Equal(t, old.UnixMilli(), stale[0].Created.UnixMilli())
		n, _, err = s.StaleUnfinished(ctx, old.Add(-time.Hour), 100, 10)
		require.NoError(t, err)
		assert.Zero(t, n)
	})
}

// TestKeptPayload: a payload set aside at SENDT stays readable after its
// outgoing row is gone, and goes once due, handing back its files.
func TestKeptPayload(t *testing.T) {
	both(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Now()
		for i, due := range []time.Time{now.Add(time.Hour), now.Add(48 * time.Hour)} {
			id := fmt.Sprint("m", i)
			require.NoError(t, s.Update(ctx, func(tx *Tx) error {
				if err := tx.InsertOutgoing(&Outgoing{MessageID: id, ConversationID: "c", ProcessIdentifier: "p", ServiceIdentifier: "DPO",
					DocumentType: "arkivmelding", SBD: []byte(`{"sbd":1}`), State: StateQueued, Expiry: now, LastUpdated: now}); err != nil {
					return err
				}
				if err := tx.InsertAttachment(&Attachment{MessageID: id, Filename: "big.pdf", MimeType: "application/pdf", File: fmt.Sprintf("%032d", i)}); err != nil {
					return err
				}
				if err := tx.InsertAttachment(&Attachment{MessageID: id, Filename: "small.xml", MimeType: "application/xml", Data: []byte("sealed")}); err != nil {
					return err
				}
				if err := tx.KeepPayload(id, due); err != nil {
					return err
				}
				_, err := tx.DeleteOutgoing(id)
				return err
			}))
		}
		_, err := s.GetOutgoing(ctx, "m0")
		assert.ErrorIs(t, err, ErrNotFound, "the outgoing store answers as without the key")
		k, err := s.GetKeptPayload(ctx, "m0")
		require.NoError(t, err)
		assert.JSONEq(t, `{"sbd":1}`, string(k.SBD))
		require.Len(t, k.Attachments, 2)
		assert.Equal(t, fmt.Sprintf("%032d", 0), k.Attachments[0].File)
		assert.Equal(t, []byte("sealed"), k.Attachments[1].Data)
		inUse, err := s.PayloadFilesInUse(ctx)
		require.NoError(t, err)
		assert.True(t, inUse[fmt.Sprintf("%032d", 1)], "a kept file is in use")

		n, files, err := s.PruneKeptPayloads(ctx, now.Add(2*time.Hour), 10)
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		assert.Equal(t, []string{fmt.Sprintf("%032d", 0)}, files)
		_, err = s.GetKeptPayload(ctx, "m0")
		assert.ErrorIs(t, err, ErrNotFound)
		_, err = s.GetKeptPayload(ctx, "m1")
		assert.NoError(t, err)
		assert.Equal(t, 2, count(t, s, "kept_attachment"))
	})
}

// TestPruneRows_AndRuns: the side tables go by age; the job's own record
// keeps its last runs.
func TestPruneRows_AndRuns(t *testing.T) {
	both(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Now()
		require.NoError(t, s.Update(ctx, func(tx *Tx) error {
			for i := range 4 {
				at := now.Add(-time.Duration(i) * 24 * time.Hour)
				if err := tx.InsertEvent("message.status", []byte("{}"), at); err != nil {
					return err
				}
				if err := tx.InsertStatusReply(&StatusReply{MessageID: "m", ConversationID: "c", ServiceIdentifier: "DPO", Status: "MOTTATT", SBD: []byte("{}"), CreatedAt: at}); err != nil {
					return err
				}
			}
			return nil
		}))
		n, err := s.PruneRows(ctx, "event_outbox", now.Add(-36*time.Hour), 1)
		require.NoError(t, err)
		assert.Equal(t, 1, n, "a batch at a time")
		n, err = s.PruneRows(ctx, "event_outbox", now.Add(-36*time.Hour), 10)
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		n, err = s.PruneRows(ctx, "status_reply", time.Time{}, 10)
		require.NoError(t, err)
		assert.Zero(t, n, "a zero cutoff keeps everything")
		_, err = s.PruneRows(ctx, "conversation", now, 10)
		assert.Error(t, err)
		assert.Equal(t, 2, count(t, s, "event_outbox"))

		_, err = s.LastRetentionRun(ctx)
		assert.ErrorIs(t, err, ErrNotFound)
		for i := range 4 {
			require.NoError(t, s.RecordRetentionRun(ctx, RetentionRun{Started: now.Add(time.Duration(i) * time.Hour),
				Finished: now.Add(time.Duration(i)*time.Hour + time.Second), Conversations: i}, 2))
		}
		last, err := s.LastRetentionRun(ctx)
		require.NoError(t, err)
		assert.Equal(t, 3, last.Conversations)
		assert.Equal(t, now.Add(3*time.Hour).UnixMilli(), last.Started.UnixMilli())
		assert.Equal(t, 2, count(t, s, "retention_run"))
	})
}

// TestIncomingAge: the oldest queued incoming message and how many waited
// past a time, and which of them retention may take (not locked now).
func TestIncomingAge(t *testing.T) {
	both(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Now()
		a, err := s.IncomingAgeBefore(ctx, now)
		require.NoError(t, err)
		assert.True(t, a.Oldest.IsZero())
		for i, days := range []int{100, 80, 1} {
			m := &Incoming{MessageID: fmt.Sprint("in", i), ConversationID: "c", DocumentType: "arkivmelding", SBD: []byte("{}"),
				LastUpdated: now.AddDate(0, 0, -days)}
			if i == 1 {
				m.LockedUntil = now.Add(time.Minute)
			}
			require.NoError(t, s.Update(ctx, func(tx *Tx) error { return tx.InsertIncoming(m) }))
		}
		a, err = s.IncomingAgeBefore(ctx, now.AddDate(0, 0, -72))
		require.NoError(t, err)
		assert.Equal(t, 2, a.Before)
		assert.Equal(t, now.AddDate(0, 0, -100).UnixMilli(), a.Oldest.UnixMilli())
		ids, err := s.UnfetchedIncoming(ctx, now.AddDate(0, 0, -72), now, 10)
		require.NoError(t, err)
		assert.Equal(t, []string{"in0"}, ids, "a message a client has locked now is left to it")
	})
}

// TestRetention_StoreDoesNotGrow: rounds of delivered 10 KB messages, each
// round pruned once its history is due. The rows go back to none each time
// and, on SQLite, the file stops growing after the first round: the pages
// the payloads and the pruned rows held are reused (no VACUUM runs).
func TestRetention_StoreDoesNotGrow(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg Config) {
		s := mustOpen(t, cfg)
		defer s.Close()
		ctx := context.Background()
		now := time.Now()
		payload := make([]byte, 10<<10)
		var pages []int64
		for round := range 4 {
			// A backlog: all accepted before the first is delivered, so
			// every payload is in the store at once.
			at := now.AddDate(0, 0, round*30)
			for i := range 300 {
				rand.Read(payload)
				accepted(t, s, fmt.Sprintf("r%d-%d", round, i), at, payload)
			}
			for i := range 300 {
				deliver(t, s, fmt.Sprintf("r%d-%d", round, i), at)
			}
			assert.Zero(t, count(t, s, "attachment"), "the payload went at the final status")
			for {
				n, _, err := s.PruneHistory(ctx, at.Add(time.Hour), 100)
				require.NoError(t, err)
				if n == 0 {
					break
				}
			}
			for _, table := range []string{"conversation", "message_status", "status_queue", "outgoing_message"} {
				assert.Zero(t, count(t, s, table), "round %d: %s", round, table)
			}
			if !s.pg {
				var n int64
				require.NoError(t, s.w.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&n))
				pages = append(pages, n)
			}
		}
		if !s.pg {
			t.Logf("store.db pages after each round: %v", pages)
			// The first round sizes the file for a backlog of 300 payloads;
			// later rounds fit in the pages it freed, give or take the
			// interior pages of indexes whose keys now start higher.
			for _, n := range pages[1:] {
				assert.LessOrEqual(t, n, pages[0]+pages[0]/20, "free pages are reused")
			}
		}
	})
}

// TestPruneOrphanOutgoing: an outgoing message whose conversation is gone
// leaves once its expiry passed; one with its conversation never does here.
func TestPruneOrphanOutgoing(t *testing.T) {
	both(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Now()
		accepted(t, s, "kept", now.Add(-2*time.Hour), nil)
		accepted(t, s, "orphan", now.Add(-2*time.Hour), nil)
		require.NoError(t, s.DeleteConversationsByMessageID(ctx, "orphan"))
		require.NoError(t, s.Update(ctx, func(tx *Tx) error {
			return tx.InsertAttachment(&Attachment{MessageID: "orphan", Filename: "f.pdf", MimeType: "application/pdf", File: "file1"})
		}))
		n, files, err := s.PruneOrphanOutgoing(ctx, now.Add(-2*time.Hour), 10)
		require.NoError(t, err)
		assert.Zero(t, n, "not expired yet")
		n, files, err = s.PruneOrphanOutgoing(ctx, now, 10)
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		assert.Equal(t, []string{"file1"}, files)
		_, err = s.GetOutgoing(ctx, "orphan")
		assert.ErrorIs(t, err, ErrNotFound)
		_, err = s.GetOutgoing(ctx, "kept")
		assert.NoError(t, err)
	})
}

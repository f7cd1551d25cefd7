package store

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRecords_EveryQuery walks each kind of record through its store methods
// on both backends, so a query one engine spells differently fails here.
func TestRecords_EveryQuery(t *testing.T) {
	both(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		t0 := time.UnixMilli(1_700_000_000_000)
		var convIDs []int64
		for i := range 3 {
			require.NoError(t, s.Update(ctx, func(tx *Tx) error {
				c := &Conversation{MessageID: fmt.Sprint("m", i), ConversationID: "c", Direction: "OUTGOING",
					ServiceIdentifier: "DPO", MessageTitle: fmt.Sprint("title", i), Status: "OPPRETTET",
					Expiry: t0.Add(time.Duration(i) * time.Hour), LastUpdate: t0.Add(time.Duration(i) * time.Minute)}
				if err := tx.InsertConversation(c); err != nil {
					return err
				}
				convIDs = append(convIDs, c.ID)
				st := &Status{ConvID: c.ID, Status: "OPPRETTET", LastUpdate: c.LastUpdate}
				if err := tx.InsertStatus(st); err != nil {
					return err
				}
				return tx.QueueStatus(st.ID)
			}))
		}
		require.NoError(t, s.Update(ctx, func(tx *Tx) error {
			c, err := tx.Conversation("m1", "OUTGOING")
			if err != nil {
				return err
			}
			c.Status, c.Finished, c.LastUpdate = "LEVERT", true, t0.Add(time.Hour)
			if err := tx.UpdateConversation(c); err != nil {
				return err
			}
			return tx.InsertStatus(&Status{ConvID: c.ID, Status: "LEVERT", Description: "ok", LastUpdate: c.LastUpdate})
		}))

		fin := false
		cs, total, err := s.ListConversations(ctx, ConversationFilter{Finished: &fin, HasTitle: true, MessageTitle: "title2"},
			Page{Size: 10, Sort: []Order{{Property: "lastUpdate", Desc: true}}})
		require.NoError(t, err)
		require.Equal(t, 1, total)
		assert.Equal(t, "m2", cs[0].MessageID)
		assert.Len(t, cs[0].Statuses, 1)
		cs, total, err = s.ListConversations(ctx, ConversationFilter{From: t0, To: t0.Add(2 * time.Minute)},
			Page{Size: 2, Sort: []Order{{Property: "messageId", Desc: true}}})
		require.NoError(t, err)
		assert.Equal(t, 2, total, "m1 was updated past To")
		assert.Equal(t, []string{"m2", "m0"}, []string{cs[0].MessageID, cs[1].MessageID})

		c, err := s.ConversationByMessageID(ctx, "m1", "OUTGOING")
		require.NoError(t, err)
		assert.True(t, c.Finished)
		require.Len(t, c.Statuses, 2)
		assert.Equal(t, "ok", c.Statuses[1].Description)
		_, err = s.GetConversation(ctx, convIDs[0])
		require.NoError(t, err)

		sts, total, err := s.ListStatuses(ctx, StatusFilter{MessageID: "m1", From: t0, To: t0.Add(2 * time.Hour)}, Page{Size: 10})
		require.NoError(t, err)
		assert.Equal(t, 2, total)
		assert.Equal(t, "LEVERT", sts[1].Status)
		peek, err := s.PeekStatusQueue(ctx)
		require.NoError(t, err)
		assert.Equal(t, "m0", peek.MessageID)
		require.NoError(t, s.DeleteFromStatusQueue(ctx, peek.ID))
		assert.ErrorIs(t, s.DeleteFromStatusQueue(ctx, peek.ID), ErrNotFound)

		counts, err := s.Unfinished(ctx)
		require.NoError(t, err)
		assert.Equal(t, Counts{Outgoing: 2}, counts)
		bySvc, err := s.UnfinishedByService(ctx)
		require.NoError(t, err)
		assert.Equal(t, map[string]int{"DPO": 2}, bySvc)
		expired, err := s.ExpiredOutgoing(ctx, t0.Add(90*time.Minute))
		require.NoError(t, err)
		assert.Equal(t, []string{"m0"}, expired, "m1 is finished, m2 not yet expired")

		// The outgoing store and its attachments.
		for i, id := range []string{"o2", "o1"} {
			require.NoError(t, s.Update(ctx, func(tx *Tx) error {
				if err := tx.InsertOutgoing(&Outgoing{MessageID: id, ConversationID: "c", ServiceIdentifier: "DPO",
					SBD: []byte("{}"), State: StateCreated, Expiry: t0, LastUpdated: t0.Add(time.Duration(i))}); err != nil {
					return err
				}
				for _, name := range []string{"a.pdf", "b.xml"} {
					if err := tx.InsertAttachment(&Attachment{MessageID: id, Filename: name, MimeType: "application/pdf",
						Size: 3, File: "f-" + id + name, Data: nil}); err != nil {
						return err
					}
				}
				return tx.SetOutgoingState(id, StateQueued, t0)
			}))
		}
		err = s.Update(ctx, func(tx *Tx) error {
			return tx.InsertAttachment(&Attachment{MessageID: "o1", Filename: "a.pdf", MimeType: "x"})
		})
		assert.ErrorIs(t, err, ErrDuplicate)
		outs, total, err := s.ListOutgoing(ctx, MessageFilter{Service: "DPO"}, Page{Size: 10})
		require.NoError(t, err)
		assert.Equal(t, 2, total)
		assert.Equal(t, "o2", outs[0].MessageID, "default order is insertion order")
		atts, err := s.Attachments(ctx, "o1")
		require.NoError(t, err)
		require.Len(t, atts, 2)
		assert.Equal(t, []int{1, 2}, []int{atts[0].DocNo, atts[1].DocNo})
		taken, err := s.MessageIDTaken(ctx, "o1", true)
		require.NoError(t, err)
		assert.True(t, taken)
		taken, err = s.MessageIDTaken(ctx, "m0", true)
		require.NoError(t, err)
		assert.False(t, taken, "only the outgoing store was asked")
		taken, err = s.MessageIDTaken(ctx, "m0", false)
		require.NoError(t, err)
		assert.True(t, taken)
		// A UUID is stored as 16 bytes in the conversation table (0008): both
		// checks must find it there.
		const sent = "5f0c0b4e-8f2a-4c39-9d55-2f7d1c3b8a61"
		require.NoError(t, s.Update(ctx, func(tx *Tx) error {
			if err := tx.InsertConversation(&Conversation{MessageID: sent, ConversationID: sent, Direction: "OUTGOING", Status: "LEVERT", LastUpdate: t0}); err != nil {
				return err
			}
			taken, err := tx.MessageIDTaken(sent, false)
			assert.True(t, taken, "the transaction's check missed a UUID conversation")
			return err
		}))
		taken, err = s.MessageIDTaken(ctx, sent, false)
		require.NoError(t, err)
		assert.True(t, taken, "the check missed a UUID conversation")
		require.NoError(t, s.Update(ctx, func(tx *Tx) error {
			files, err := tx.DeleteOutgoing("o1")
			assert.Equal(t, []string{"f-o1a.pdf", "f-o1b.xml"}, files)
			return err
		}))
		atts, err = s.Attachments(ctx, "o1")
		require.NoError(t, err)
		assert.Empty(t, atts, "attachments go with their message")

		// Subscriptions.
		sub := &Subscription{Name: "n", PushEndpoint: "http://x", Resource: "all", Event: "all"}
		require.NoError(t, s.SaveSubscription(ctx, sub))
		assert.NotZero(t, sub.ID)
		assert.ErrorIs(t, s.SaveSubscription(ctx, &Subscription{Name: "n", PushEndpoint: "http://x"}), ErrDuplicate)
		subs, total, err := s.ListSubscriptions(ctx, Page{Size: 10})
		require.NoError(t, err)
		assert.Equal(t, 1, total)
		assert.Equal(t, *sub, subs[0])
		require.NoError(t, s.DeleteSubscription(ctx, sub.ID))
		assert.ErrorIs(t, s.DeleteSubscription(ctx, sub.ID), ErrNotFound)

		// Status replies.
		require.NoError(t, s.Update(ctx, func(tx *Tx) error {
			return tx.InsertStatusReply(&StatusReply{MessageID: "m0", ConversationID: "c", Status: "MOTTATT", SBD: []byte("x"), CreatedAt: t0})
		}))
		replies, err := s.StatusReplies(ctx, 10)
		require.NoError(t, err)
		require.Len(t, replies, 1)
		require.NoError(t, s.DeleteStatusReply(ctx, replies[0].ID))
	})
}

// TestLockNextIncoming_ConcurrentPeeksNeverShare: many peeks at once (on
// PostgreSQL, as several daemons would) each lock a different message.
func TestLockNextIncoming_ConcurrentPeeksNeverShare(t *testing.T) {
	both(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		t0 := time.UnixMilli(1_700_000_000_000)
		const n = 20
		for i := range n {
			require.NoError(t, s.Update(ctx, func(tx *Tx) error {
				return tx.InsertIncoming(&Incoming{MessageID: fmt.Sprint("in", i), ConversationID: "c", SBD: []byte("{}"),
					Expiry: t0.Add(time.Hour), LastUpdated: t0.Add(time.Duration(i) * time.Second)})
			}))
		}
		var mu sync.Mutex
		got := map[string]int{}
		var wg sync.WaitGroup
		for range n + 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = s.Update(ctx, func(tx *Tx) error {
					m, err := tx.LockNextIncoming(MessageFilter{}, t0, t0.Add(time.Minute))
					if err != nil {
						return err
					}
					mu.Lock()
					got[m.MessageID]++
					mu.Unlock()
					return nil
				})
			}()
		}
		wg.Wait()
		assert.Len(t, got, n)
		for id, k := range got {
			assert.Equal(t, 1, k, id)
		}
		ins, total, err := s.ListIncoming(ctx, MessageFilter{}, Page{Size: 2})
		require.NoError(t, err)
		assert.Equal(t, n, total)
		assert.Equal(t, "in0", ins[0].MessageID)
		exp, err := s.ExpiredIncoming(ctx, t0.Add(2*time.Hour))
		require.NoError(t, err)
		assert.Len(t, exp, n)
	})
}

// TestOpen_ConcurrentDaemonsMigrateOnce: daemons of one group starting
// together on an empty PostgreSQL database migrate it once between them.
func TestOpen_ConcurrentDaemonsMigrateOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg Config) {
		if cfg.Postgres == "" {
			t.Skip("one SQLite file belongs to one daemon")
		}
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := Open(context.Background(), cfg)
				if err == nil {
					err = s.Close()
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
		s := mustOpen(t, cfg)
		defer s.Close()
		var n int
		require.NoError(t, s.r.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n))
		assert.Equal(t, SchemaVersion(), n)
	})
}

func TestRebind(t *testing.T) {
	for in, want := range map[string]string{
		`SELECT 1`: `SELECT 1`,
		`SELECT * FROM t WHERE a = ? AND b IN (?, ?)`:        `SELECT * FROM t WHERE a = $1 AND b IN ($2, $3)`,
		`SELECT ?1 OR (NOT ?2 AND x = ?1)`:                   `SELECT $1 OR (NOT $2 AND x = $1)`,
		`SELECT '?' , "a?" , ? -- what?` + "\n" + `, ?`:      `SELECT '?' , "a?" , $1 -- what?` + "\n" + `, $2`,
		`INSERT INTO k (key) VALUES ('it''s ?') RETURNING ?`: `INSERT INTO k (key) VALUES ('it''s ?') RETURNING $1`,
	} {
		assert.Equal(t, want, rebind(in), in)
	}
}

func FuzzRebind(f *testing.F) {
	for _, s := range []string{"SELECT ?", "'?'", "-- ?\n?", "?12?", `"?`, "'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		out := rebind(q)
		if !strings.Contains(q, "?") && out != q {
			t.Fatalf("changed a query without placeholders: %q -> %q", q, out)
		}
		if strings.Count(out, "?") > strings.Count(q, "?") {
			t.Fatalf("made placeholders: %q -> %q", q, out)
		}
	})
}

func TestPgDDL(t *testing.T) {
	got := pgDDL(`CREATE TABLE a (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    body BLOB NOT NULL
) STRICT;
CREATE TABLE b (
    key TEXT PRIMARY KEY,
    n   INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE TABLE c (id INTEGER PRIMARY KEY REFERENCES a (id)) STRICT;
ALTER TABLE b ADD COLUMN d BLOB;`)
	assert.Equal(t, `CREATE TABLE a (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    body BYTEA NOT NULL
);
CREATE TABLE b (
    rowid BIGINT GENERATED BY DEFAULT AS IDENTITY,
    key TEXT PRIMARY KEY,
    n   BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE c (id BIGINT PRIMARY KEY REFERENCES a (id));
ALTER TABLE b ADD COLUMN d BYTEA;`, got)
}

// TestClaimMessage_OneDaemonAtATime: on PostgreSQL a message claimed by one
// store (daemon) cannot be claimed by another until released, or until the
// first one's connections die.
func TestClaimMessage_OneDaemonAtATime(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg Config) {
		ctx := context.Background()
		a := mustOpen(t, cfg)
		defer a.Close()
		release, ok, err := a.ClaimMessage(ctx, "m1")
		require.NoError(t, err)
		require.True(t, ok)
		if cfg.Postgres == "" {
			release()
			return // one daemon per SQLite file: nothing to exclude
		}
		b := mustOpen(t, cfg)
		defer b.Close()
		_, ok, err = b.ClaimMessage(ctx, "m1")
		require.NoError(t, err)
		assert.False(t, ok, "claimed by a")
		rel2, ok, err := b.ClaimMessage(ctx, "m2")
		require.NoError(t, err)
		assert.True(t, ok, "another message is free")
		rel2()
		release()
		rel3, ok, err := b.ClaimMessage(ctx, "m1")
		require.NoError(t, err)
		assert.True(t, ok, "released by a")

		// A daemon that dies (its connections drop) frees its claims.
		_, ok, err = a.ClaimMessage(ctx, "m1")
		require.NoError(t, err)
		assert.False(t, ok)
		_, err = a.w.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks
			WHERE locktype = 'advisory' AND classid = ? AND granted`, claimClass)
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			_, ok, err := a.ClaimMessage(ctx, "m1")
			return err == nil && ok
		}, 10*time.Second, 50*time.Millisecond)
		rel3()
	})
}

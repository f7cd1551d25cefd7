package storegen_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt/sbd"
	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/integrasjonspunkt/store/storegen"
	"github.com/efm-go/efm/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

func open(t testing.TB, pg string) *store.Store {
	cfg := store.Config{Path: filepath.Join(t.TempDir(), "store.db"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Postgres: pg}
	s, err := store.Open(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// check reads the generated rows back through the store's own read methods,
// as the API and the pipeline would.
func check(t *testing.T, s *store.Store) {
	ctx := context.Background()
	res, err := storegen.Generate(ctx, s, storegen.Options{N: 1000, State: storegen.Delivered})
	require.NoError(t, err)
	q, err := storegen.Generate(ctx, s, storegen.Options{N: 500, State: storegen.Queued, Start: res.Last})
	require.NoError(t, err)

	c, err := s.ConversationByMessageID(ctx, res.MessageIDs[7], "OUTGOING")
	require.NoError(t, err)
	require.Equal(t, "LEVERT", c.Status)
	require.True(t, c.Finished)
	require.Len(t, c.Statuses, 4)
	_, err = s.GetOutgoing(ctx, res.MessageIDs[7])
	require.ErrorIs(t, err, store.ErrNotFound, "SENDT removes the outgoing row")

	o, err := s.GetOutgoing(ctx, q.MessageIDs[3])
	require.NoError(t, err)
	require.Equal(t, store.StateQueued, o.State)
	doc, err := sbd.Decode(o.SBD)
	require.NoError(t, err)
	require.Equal(t, q.MessageIDs[3], doc.MessageID())
	atts, err := s.Attachments(ctx, q.MessageIDs[3])
	require.NoError(t, err)
	require.Len(t, atts, 1)

	ids, err := s.UnfinishedOutgoing(ctx)
	require.NoError(t, err)
	require.Equal(t, q.MessageIDs, ids)
	n, err := s.Unfinished(ctx)
	require.NoError(t, err)
	require.Equal(t, 500, n.Outgoing)

	b, err := s.Backlog(ctx)
	require.NoError(t, err)
	require.Equal(t, 500, b.Count, "queued messages keep their OPPRETTET event, delivered ones were shipped")

	// The store's own writes continue after the generated ids.
	require.NoError(t, s.Update(ctx, func(tx *store.Tx) error {
		cv := &store.Conversation{MessageID: "after", ConversationID: "after", Direction: "OUTGOING", Status: "OPPRETTET"}
		if err := tx.InsertConversation(cv); err != nil {
			return err
		}
		return tx.InsertStatus(&store.Status{ConvID: cv.ID, Status: "OPPRETTET"})
	}))
}

func TestGenerate_SQLite(t *testing.T) { check(t, open(t, "")) }

func TestGenerate_Postgres(t *testing.T) {
	srv := pgtest.Require(t)
	check(t, open(t, srv.URL(srv.CreateDB(t))))
}

// BenchmarkGenerate is the time to generate 100 000 messages of each state.
func BenchmarkGenerate(b *testing.B) {
	for _, st := range []storegen.State{storegen.Delivered, storegen.Queued} {
		b.Run(st.String(), func(b *testing.B) {
			for b.Loop() {
				s := open(b, "")
				if _, err := storegen.Generate(context.Background(), s, storegen.Options{N: 100_000, State: st}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

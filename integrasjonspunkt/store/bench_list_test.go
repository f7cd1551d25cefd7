package store_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/integrasjonspunkt/store/storegen"
)

type listStore struct {
	s   *store.Store
	res *storegen.Result
	dir string
}

// generated returns a store of n delivered messages, made once per size.
func generated(b *testing.B, stores map[int]*listStore, n int) *listStore {
	if ls, ok := stores[n]; ok {
		return ls
	}
	dir, err := os.MkdirTemp("", "efm-lists-")
	if err != nil {
		b.Fatal(err)
	}
	s, err := store.Open(context.Background(), store.Config{Path: filepath.Join(dir, "store.db"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	res, err := storegen.Generate(context.Background(), s, storegen.Options{N: n, State: storegen.Delivered})
	if err != nil {
		b.Fatal(err)
	}
	ls := &listStore{s: s, res: res, dir: dir}
	stores[n] = ls
	return ls
}

// BenchmarkLists is one page of each list the issue measured (E13, E19), at
// 10 000 and at 1 000 000 delivered messages in the store: the ratio of
// the two is what must stay under 2. The window is the last ten minutes of
// the store, so it holds as many statuses at either size.
func BenchmarkLists(b *testing.B) {
	sizes := []int{10_000, 1_000_000}
	if testing.Short() {
		sizes = sizes[:1]
	}
	type query struct {
		name string
		run  func(ctx context.Context, ls *listStore) (int, error)
	}
	page := func(sort ...store.Order) store.Page { return store.Page{Size: 10, Sort: sort} }
	byID := store.Order{Property: "id"}
	newest := store.Order{Property: "lastUpdate", Desc: true}
	queries := []query{
		{"statuses-status-window", func(ctx context.Context, ls *listStore) (int, error) {
			to := ls.res.Last.Add(3 * time.Second)
			sts, _, err := ls.s.ListStatuses(ctx, store.StatusFilter{Status: "LEVERT", From: to.Add(-10 * time.Minute), To: to}, page(byID))
			return len(sts), err
		}},
		{"statuses-size-10", func(ctx context.Context, ls *listStore) (int, error) {
			sts, _, err := ls.s.ListStatuses(ctx, store.StatusFilter{}, page(byID))
			return len(sts), err
		}},
		{"conversations-receiver", func(ctx context.Context, ls *listStore) (int, error) {
			cs, _, err := ls.s.ListConversations(ctx, store.ConversationFilter{ReceiverIdentifier: ls.res.Receivers[3]}, page(newest))
			return len(cs), err
		}},
		{"conversations", func(ctx context.Context, ls *listStore) (int, error) {
			cs, _, err := ls.s.ListConversations(ctx, store.ConversationFilter{}, page(newest))
			return len(cs), err
		}},
	}
	stores := map[int]*listStore{}
	b.Cleanup(func() {
		for _, ls := range stores {
			ls.s.Close()
			os.RemoveAll(ls.dir)
		}
	})
	for _, q := range queries {
		for _, n := range sizes {
			b.Run(fmt.Sprintf("%s/%d", q.name, n), func(b *testing.B) {
				ls := generated(b, stores, n)
				ctx := context.Background()
				for b.Loop() {
					got, err := q.run(ctx, ls)
					if err != nil {
						b.Fatal(err)
					}
					if got != 10 {
						b.Fatalf("a page of %d, want 10", got)
					}
				}
			})
		}
	}
}

// BenchmarkLookups is what the indexes on the message id and on the
// conversation id serve, at 10 000 and 1 000 000 delivered messages: one
// message's conversation, its statuses, and the conversations of a
// conversation id (storegen gives each message its own).
func BenchmarkLookups(b *testing.B) {
	sizes := []int{10_000, 1_000_000}
	if testing.Short() {
		sizes = sizes[:1]
	}
	stores := map[int]*listStore{}
	b.Cleanup(func() {
		for _, ls := range stores {
			ls.s.Close()
			os.RemoveAll(ls.dir)
		}
	})
	queries := []struct {
		name string
		run  func(ctx context.Context, ls *listStore, id string) (int, error)
	}{
		{"conversation-by-message-id", func(ctx context.Context, ls *listStore, id string) (int, error) {
			c, err := ls.s.ConversationByMessageID(ctx, id, "OUTGOING")
			if err != nil {
				return 0, err
			}
			return len(c.Statuses), nil
		}},
		{"statuses-message-id", func(ctx context.Context, ls *listStore, id string) (int, error) {
			sts, _, err := ls.s.ListStatuses(ctx, store.StatusFilter{MessageID: id}, store.Page{Size: 10})
			return len(sts), err
		}},
		{"conversations-conversation-id", func(ctx context.Context, ls *listStore, id string) (int, error) {
			cs, _, err := ls.s.ListConversations(ctx, store.ConversationFilter{ConversationID: id}, store.Page{Size: 10})
			if err != nil || len(cs) != 1 {
				return 0, err
			}
			return len(cs[0].Statuses), nil
		}},
	}
	for _, q := range queries {
		for _, n := range sizes {
			b.Run(fmt.Sprintf("%s/%d", q.name, n), func(b *testing.B) {
				ls := generated(b, stores, n)
				ctx := context.Background()
				cs, _, err := ls.s.ListConversations(ctx, store.ConversationFilter{}, store.Page{Size: 1})
				if err != nil || len(cs) != 1 {
					b.Fatal(err)
				}
				id := cs[0].MessageID
				for b.Loop() {
					got, err := q.run(ctx, ls, id)
					if err != nil {
						b.Fatal(err)
					}
					if got != 4 {
						b.Fatalf("%d statuses, want 4", got)
					}
				}
			})
		}
	}
}

package store

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/efm-go/efm/internal/pgtest"
)

// BenchmarkAccept_Backends is the store's share of accepting one message
// (conversation, its first status, the outgoing row and a central-log
// outbox row in one Update), from 16 concurrent clients, on SQLite and on
// PostgreSQL: durable (fsync on every commit, as a production server runs)
// and with synchronous_commit off (which, like SQLite's synchronous=NORMAL
// under WAL, may lose the last commits on power loss but never corrupts).
func BenchmarkAccept_Backends(b *testing.B) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	run := func(b *testing.B, cfg Config) {
		s, err := Open(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		var n atomic.Int64
		t0 := time.UnixMilli(1_700_000_000_000)
		b.SetParallelism(8) // 16 clients on 2 cores
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				id := fmt.Sprint("m", n.Add(1))
				err := s.Update(ctx, func(tx *Tx) error {
					c := &Conversation{MessageID: id, ConversationID: id, Direction: "OUTGOING", ServiceIdentifier: "DPO",
						Status: "OPPRETTET", LastUpdate: t0}
					if err := tx.InsertConversation(c); err != nil {
						return err
					}
					if err := tx.InsertStatus(&Status{ConvID: c.ID, Status: "OPPRETTET", LastUpdate: t0}); err != nil {
						return err
					}
					if err := tx.InsertOutgoing(&Outgoing{MessageID: id, ConversationID: id, SBD: make([]byte, 2048),
						State: StateQueued, Expiry: t0, LastUpdated: t0}); err != nil {
						return err
					}
					return tx.InsertEvent("message_status", make([]byte, 300), t0)
				})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.Run("sqlite", func(b *testing.B) {
		run(b, Config{Path: filepath.Join(b.TempDir(), "store.db"), Logger: log})
	})
	for _, durable := range []bool{true, false} {
		name := "postgres-durable"
		if !durable {
			name = "postgres-async-commit"
		}
		b.Run(name, func(b *testing.B) {
			pgtest.Need(b)
			srv, err := pgtest.Start(pgtest.Options{Durable: durable})
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Stop()
			run(b, Config{Postgres: srv.URL(srv.CreateDB(b)), Logger: log})
		})
	}
}

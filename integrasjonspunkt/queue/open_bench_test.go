package queue

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
)

// BenchmarkOpen is the queue's part of a daemon's start (issue 18): opening
// a stream that holds n entries, written just before (so inside the
// deduplication window), until Check answers. "clean" opens the files a
// clean Close left; "kill" opens a copy taken while the server ran, as a
// kill -9 leaves them (the page cache survives a killed process, so what
// was written is there; the state files a clean stop writes are not).
func BenchmarkOpen(b *testing.B) {
	n := 1_000_000
	if testing.Short() {
		n = 10_000
	}
	ctx := context.Background()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	src := b.TempDir()
	killed := b.TempDir()
	q, err := Open(ctx, Config{Dir: src, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i += 2000 {
		if _, err := q.Requeue(ctx, ids[i:min(i+2000, n)]); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(time.Second) // the store's writes reach the files
	if err := os.CopyFS(filepath.Join(killed, "q"), os.DirFS(src)); err != nil {
		b.Fatal(err)
	}
	if err := q.Close(); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, dir string }{{"clean", src}, {"kill", filepath.Join(killed, "q")}} {
		b.Run(fmt.Sprintf("%s/%d", c.name, n), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				dir := filepath.Join(b.TempDir(), "q")
				if err := os.CopyFS(dir, os.DirFS(c.dir)); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				q, err := Open(ctx, Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
				if err != nil {
					b.Fatal(err)
				}
				if err := q.Check(ctx); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				p, err := q.Pending(ctx)
				if err != nil || p != uint64(n) {
					b.Fatalf("pending %d, %v; want %d", p, err, n)
				}
				q.Close()
				b.StartTimer()
			}
		})
	}
}

package store_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/integrasjonspunkt/store/storegen"
)

// BenchmarkPruneHistory is one batch of the retention job (500 finished
// conversations and their statuses) in a store of 200 000 delivered
// messages older than the history limit: how long the job holds the one
// writer at a time.
func BenchmarkPruneHistory(b *testing.B) {
	ctx := context.Background()
	s, err := store.Open(ctx, store.Config{Path: filepath.Join(b.TempDir(), "store.db"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	if _, err := storegen.Generate(ctx, s, storegen.Options{N: 200_000, State: storegen.Delivered, Start: now.AddDate(-3, 0, 0), Step: time.Second}); err != nil {
		b.Fatal(err)
	}
	cut := now.AddDate(-2, 0, 0)
	var convs, sts int
	for b.Loop() {
		c, n, err := s.PruneHistory(ctx, cut, 500)
		if err != nil {
			b.Fatal(err)
		}
		if c == 0 {
			b.Fatal("the store ran out of conversations to prune")
		}
		convs += c
		sts += n
	}
	b.ReportMetric(float64(convs)/float64(b.N), "convs/batch")
	b.ReportMetric(float64(sts)/float64(b.N), "statuses/batch")
}

package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Writers that never pause leave a PASSIVE checkpoint no moment to start
// the log over; without the writer's RESTART the WAL grew by all they wrote.
func TestCheckpointer_BoundsTheWALUnderSustainedWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	ctx := context.Background()
	s, err := Open(ctx, Config{Path: path, Logger: slog.New(slog.DiscardHandler),
		walRestartAt: 256, ckptEvery: 10 * time.Millisecond}) // 1 MiB; many checkpoints a run
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`CREATE TABLE scratch (b BLOB)`)
		return err
	}))

	const writers, each, size = 4, 1600, 16 << 10 // 105 MB in all
	var peak atomic.Int64
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			blob := make([]byte, size)
			for range each {
				rand.Read(blob)
				if err := s.Update(ctx, func(tx *Tx) error {
					_, err := tx.exec(`INSERT INTO scratch (b) VALUES (?)`, blob)
					return err
				}); err != nil {
					t.Error(err)
					return
				}
				if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > peak.Load() {
					peak.Store(fi.Size())
				}
			}
		})
	}
	wg.Wait()
	written := int64(writers * each * size)
	t.Logf("wal peak %d B, %d B written", peak.Load(), written)
	require.Less(t, peak.Load(), written/2,
		"the WAL must start over while writes go on, not hold all that was written")
}

package store

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The writer keeps its savepoint journals in memory, and the readers'
// connections stay open between bursts of reads (see Open).
func TestOpen_ConnectionSettings(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "store.db"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	defer s.Close()
	var temp int
	require.NoError(t, s.w.QueryRowContext(ctx, `PRAGMA temp_store`).Scan(&temp))
	assert.Equal(t, 2, temp, "temp_store = MEMORY on the writer")

	for range 20 {
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				_, err := s.MessageIDTaken(ctx, "m", false)
				assert.NoError(t, err)
			})
		}
		wg.Wait()
	}
	assert.Zero(t, s.r.Stats().MaxIdleClosed, "reader connections closed for want of idle slots")
}

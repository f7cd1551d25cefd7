package store

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/internal/pgtest"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{Path: path, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	return s
}

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// eachBackend runs fn once on SQLite and once on PostgreSQL: one suite, two
// backends. cfg names a fresh database; opening it again is what a
// restarted daemon does.
func eachBackend(t *testing.T, fn func(t *testing.T, cfg Config)) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	t.Run("sqlite", func(t *testing.T) {
		fn(t, Config{Path: filepath.Join(t.TempDir(), "store.db"), Logger: log})
	})
	t.Run("postgres", func(t *testing.T) {
		srv := pgtest.Require(t)
		fn(t, Config{Postgres: srv.URL(srv.CreateDB(t)), Logger: log})
	})
}

func mustOpen(t *testing.T, cfg Config) *Store {
	t.Helper()
	s, err := Open(context.Background(), cfg)
	require.NoError(t, err)
	return s
}

// both opens a fresh store on each backend.
func both(t *testing.T, fn func(t *testing.T, s *Store)) {
	eachBackend(t, func(t *testing.T, cfg Config) {
		s := mustOpen(t, cfg)
		defer s.Close()
		fn(t, s)
	})
}

func TestOpen_MigratesOnceAndKeepsData(t *testing.T) {
	eachBackend(t, testMigratesOnceAndKeepsData)
}

func testMigratesOnceAndKeepsData(t *testing.T, cfg Config) {
	ctx := context.Background()
	s := mustOpen(t, cfg)
	id, err := s.InstallationID(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO conversation (message_id, conversation_id, direction, status, created_at, last_update)
			VALUES ('m1', 'c1', 'OUTGOING', 'OPPRETTET', 1, 1), ('m2', 'c2', 'OUTGOING', 'LEVERT', 1, 1)`)
		if err != nil {
			return err
		}
		_, err = tx.Exec(`UPDATE conversation SET finished = 1 WHERE message_id = 'm2'`)
		return err
	}))
	require.NoError(t, s.Close())

	s = mustOpen(t, cfg)
	defer s.Close()
	id2, err := s.InstallationID(ctx)
	require.NoError(t, err)
	assert.Equal(t, id, id2, "installation id must survive a restart")
	ids, err := s.UnfinishedOutgoing(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"m1"}, ids)
	c, err := s.Unfinished(ctx)
	require.NoError(t, err)
	assert.Equal(t, Counts{Outgoing: 1}, c)
	var n int
	require.NoError(t, s.r.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n))
	assert.Equal(t, SchemaVersion(), n)
	if !s.pg {
		var mode string
		require.NoError(t, s.w.QueryRow(`PRAGMA journal_mode`).Scan(&mode))
		assert.Equal(t, "wal", mode)
	}
}

func TestOpen_RefusesNewerSchema(t *testing.T) {
	eachBackend(t, func(t *testing.T, cfg Config) {
		s := mustOpen(t, cfg)
		require.NoError(t, s.Write(context.Background(), func(tx *sql.Tx) error {
			_, err := tx.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)`, SchemaVersion()+1)
			return err
		}))
		require.NoError(t, s.Close())
		_, err := Open(context.Background(), cfg)
		assert.ErrorIs(t, err, ErrSchemaTooNew)
	})
}

func TestWrite_RollsBackOnError(t *testing.T) {
	both(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		err := s.Write(ctx, func(tx *sql.Tx) error {
			if _, err := tx.Exec(`INSERT INTO installation (key, value) VALUES ('k', 'v')`); err != nil {
				return err
			}
			return io.ErrUnexpectedEOF
		})
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		var n int
		require.NoError(t, s.r.QueryRow(`SELECT COUNT(*) FROM installation WHERE key = 'k'`).Scan(&n))
		assert.Zero(t, n, "half a transaction was kept")
	})
}

package store

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func setKey(t *testing.T, s *Store, key, value string) {
	t.Helper()
	require.NoError(t, s.Write(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO installation (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
		return err
	}))
}

func getKey(t *testing.T, path, key string) (string, bool) {
	t.Helper()
	s := open(t, path)
	defer s.Close()
	var v string
	err := s.r.QueryRow(`SELECT value FROM installation WHERE key = ?`, key).Scan(&v)
	if err == sql.ErrNoRows {
		return "", false
	}
	require.NoError(t, err)
	return v, true
}

func TestFileSchemaVersion_MissingFileIsZero(t *testing.T) {
	v, err := FileSchemaVersion(context.Background(), filepath.Join(t.TempDir(), "store.db"))
	require.NoError(t, err)
	assert.Equal(t, 0, v)
}

func TestFileSchemaVersion_ReadsWhileOpenAndWritesNothing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	s := open(t, path)
	// While the daemon holds the store in WAL mode, as during a preflight.
	v, err := FileSchemaVersion(ctx, path)
	require.NoError(t, err)
	assert.Equal(t, SchemaVersion(), v)

	// A newer binary's migration, committed into the WAL only.
	require.NoError(t, s.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)`, SchemaVersion()+1)
		return err
	}))
	v, err = FileSchemaVersion(ctx, path)
	require.NoError(t, err)
	assert.Equal(t, SchemaVersion()+1, v, "the version committed to the WAL is the store's version")
	require.NoError(t, s.Close())

	before, err := os.ReadFile(path)
	require.NoError(t, err)
	v, err = FileSchemaVersion(ctx, path)
	require.NoError(t, err)
	assert.Equal(t, SchemaVersion()+1, v)
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(before, after), "reading the version changed the store file")

	_, err = Open(ctx, Config{Path: path, Logger: s.log})
	assert.ErrorIs(t, err, ErrSchemaTooNew, "the store the version was read from is still the newer one")
}

func TestFileSchemaVersion_UnmigratedAndForeignFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.db")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	v, err := FileSchemaVersion(ctx, empty)
	require.NoError(t, err)
	assert.Equal(t, 0, v)

	junk := filepath.Join(dir, "junk.db")
	require.NoError(t, os.WriteFile(junk, bytes.Repeat([]byte("not a database "), 512), 0o600))
	_, err = FileSchemaVersion(ctx, junk)
	assert.Error(t, err)
}

func TestSnapshot_WhileOpenIsConsistentAndLeavesSourceUntouched(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "store.db")
	dst := filepath.Join(dir, "update", "pre.db")
	s := open(t, path)
	setKey(t, s, "snap", "before")

	require.NoError(t, Snapshot(ctx, path, dst))
	setKey(t, s, "snap", "after")
	setKey(t, s, "later", "x")
	require.NoError(t, s.Close())

	v, ok := getKey(t, dst, "snap")
	require.True(t, ok, "the snapshot lacks a row committed before it (still in the WAL)")
	assert.Equal(t, "before", v)
	_, ok = getKey(t, dst, "later")
	assert.False(t, ok, "the snapshot holds a row written after it")
	sv, err := FileSchemaVersion(ctx, dst)
	require.NoError(t, err)
	assert.Equal(t, SchemaVersion(), sv)

	v, _ = getKey(t, path, "snap")
	assert.Equal(t, "after", v)
	_, err = os.Stat(dst + ".partial")
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestSnapshotTo_ReplacesAnOlderSnapshot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dst := filepath.Join(dir, "pre.db")
	s := open(t, filepath.Join(dir, "store.db"))
	defer s.Close()
	setKey(t, s, "snap", "one")
	require.NoError(t, s.SnapshotTo(ctx, dst))
	// A leftover from a crashed snapshot must not block the next one.
	require.NoError(t, os.WriteFile(dst+".partial", []byte("stale"), 0o600))
	setKey(t, s, "snap", "two")
	require.NoError(t, s.SnapshotTo(ctx, dst))
	v, _ := getKey(t, dst, "snap")
	assert.Equal(t, "two", v)
}

func TestSnapshot_MissingSourceFails(t *testing.T) {
	dir := t.TempDir()
	err := Snapshot(context.Background(), filepath.Join(dir, "none.db"), filepath.Join(dir, "pre.db"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = os.Stat(filepath.Join(dir, "none.db"))
	assert.ErrorIs(t, err, os.ErrNotExist, "the snapshot created the store it was to copy")
}

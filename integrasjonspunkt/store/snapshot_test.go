package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

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

// A rollback across a migration puts the snapshot back, keeps the newer store
// aside whole and counts what only the newer one holds.
func TestRestore_PutsTheSnapshotBackAndKeepsTheNewerStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "store.db")
	snap := filepath.Join(dir, "update", "pre-1.0.0-to-1.1.0.db")
	aside := filepath.Join(dir, "update", "failed-1.1.0.db")
	t0 := time.UnixMilli(1_700_000_000_000)
	put := func(s *Store, id string, at time.Time) {
		t.Helper()
		require.NoError(t, s.Update(ctx, func(tx *Tx) error {
			c, err := tx.Conversation(id, "OUTGOING")
			if errors.Is(err, ErrNotFound) {
				return tx.InsertConversation(&Conversation{MessageID: id, ConversationID: id, Direction: "OUTGOING", Status: "OPPRETTET", LastUpdate: at})
			}
			if err != nil {
				return err
			}
			c.Status, c.LastUpdate = "SENDT", at
			return tx.UpdateConversation(c)
		}))
	}

	s := open(t, path)
	put(s, "m1", t0)
	put(s, "m2", t0)
	require.NoError(t, Snapshot(ctx, path, snap))
	put(s, "m2", t0.Add(time.Minute)) // sent by the newer version
	put(s, "m3", t0.Add(time.Minute)) // accepted by the newer version
	put(s, "m4", t0.Add(time.Minute))
	require.NoError(t, s.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)`, SchemaVersion()+1)
		return err
	}))
	require.NoError(t, s.Close())

	lost, err := Restore(ctx, snap, path, aside)
	require.NoError(t, err)
	assert.Equal(t, Lost{Accepted: 2, Changed: 1}, lost)

	v, err := FileSchemaVersion(ctx, path)
	require.NoError(t, err)
	assert.Equal(t, SchemaVersion(), v)
	r := open(t, path)
	ok, err := r.ConversationExists(ctx, "m3")
	require.NoError(t, err)
	assert.False(t, ok, "the restored store holds a message accepted after the snapshot")
	require.NoError(t, r.Close())

	v, err = FileSchemaVersion(ctx, aside)
	require.NoError(t, err)
	assert.Equal(t, SchemaVersion()+1, v, "the newer store was not kept whole beside the restored one")
	_, err = os.Stat(snap)
	assert.NoError(t, err, "the snapshot is kept")
	_, err = os.Stat(path + ".restoring")
	assert.ErrorIs(t, err, os.ErrNotExist)
}

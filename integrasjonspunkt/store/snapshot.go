package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
)

// openReadOnly opens path without the right to write or create it: the
// updater's preflight and snapshot run beside a daemon that holds the same
// file open in WAL mode, and must neither migrate it nor take its write lock.
func openReadOnly(path string) (*sql.DB, error) {
	q := url.Values{"mode": {"ro"}, "_busy_timeout": {"5000"}}
	db, err := sql.Open("sqlite3", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("opening store %s read-only: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// FileSchemaVersion reads the schema version of the store file at path
// without migrating or writing it, so a staged binary can refuse a store
// newer than it knows before it replaces the running one (operations.md §4.4
// step 6, rule M1). A missing file, or one no migration ever touched, is 0.
func FileSchemaVersion(ctx context.Context, path string) (int, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("reading store schema version: %w", err)
	}
	db, err := openReadOnly(path)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("reading store schema version of %s: %w", path, err)
	}
	if n == 0 {
		return 0, nil
	}
	var v int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("reading store schema version of %s: %w", path, err)
	}
	return v, nil
}

// Snapshot writes a consistent copy of the store file at src to dst with
// VACUUM INTO, through a read-only connection: it works while the daemon has
// the store open in WAL mode and sees one committed state, which copying the
// file (and forgetting the -wal beside it) would not. dst appears only
// complete: the copy is written beside it and renamed. This is the pre-update
// snapshot of operations.md §4.4 step 7.
func Snapshot(ctx context.Context, src, dst string) error {
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("snapshotting store: %w", err)
	}
	db, err := openReadOnly(src)
	if err != nil {
		return err
	}
	defer db.Close()
	return vacuumInto(ctx, db, dst)
}

// SnapshotTo is Snapshot for a store this process has open; it uses a reader
// so it never waits behind, or holds up, the writer.
func (s *Store) SnapshotTo(ctx context.Context, dst string) error {
	if s.pg {
		return ErrNotSQLite
	}
	return vacuumInto(ctx, s.r, dst)
}

func vacuumInto(ctx context.Context, db *sql.DB, dst string) error {
	tmp := dst + ".partial"
	// VACUUM INTO refuses an existing file; a leftover from a crash is stale.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("snapshotting store: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("snapshotting store: %w", err)
	}
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("snapshotting store to %s: %w", dst, err)
	}
	if err := syncFile(tmp); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("snapshotting store: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("snapshotting store: %w", err)
	}
	return nil
}

func syncFile(name string) error {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
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

// Lost is what a store held that the snapshot restored over it does not:
// messages accepted after the snapshot (Accepted), and older messages whose
// status moved on after it (Changed), which the restored store will show at
// their earlier status and may send again.
type Lost struct{ Accepted, Changed int }

// Restore puts the snapshot at snap in place of the store file dst, for a
// rollback across a migration the previous version cannot read (operations.md
// §4.4 rule M3). The store it replaces is not deleted: dst and its -wal and
// -shm are renamed to aside (+ "-wal", "-shm"), so an operator can still
// open it with the newer version and recover what Lost counts. Nothing may
// hold dst open. The snapshot itself stays where it is.
func Restore(ctx context.Context, snap, dst, aside string) (Lost, error) {
	var lost Lost
	s, err := openReadOnly(snap)
	if err != nil {
		return lost, err
	}
	var maxID, maxUpdate int64
	err = s.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0), COALESCE(MAX(last_update), 0) FROM conversation`).Scan(&maxID, &maxUpdate)
	s.Close()
	if err != nil {
		return lost, fmt.Errorf("reading snapshot %s: %w", snap, err)
	}
	d, err := openReadOnly(dst)
	if err != nil {
		return lost, err
	}
	err = d.QueryRowContext(ctx, `SELECT COUNT(*) FILTER (WHERE id > ?1), COUNT(*) FILTER (WHERE id <= ?1 AND last_update > ?2) FROM conversation`,
		maxID, maxUpdate).Scan(&lost.Accepted, &lost.Changed)
	d.Close()
	if err != nil {
		return lost, fmt.Errorf("comparing store %s with its snapshot: %w", dst, err)
	}

	if err := os.MkdirAll(filepath.Dir(aside), 0o700); err != nil {
		return lost, fmt.Errorf("restoring store: %w", err)
	}
	// The copy is made complete beside dst first, so a crash anywhere below
	// leaves either the newer store or the snapshot in place, never half of one.
	tmp := dst + ".restoring"
	if err := copyFile(snap, tmp); err != nil {
		return lost, fmt.Errorf("restoring store: %w", err)
	}
	for _, suffix := range []string{"-wal", "-shm", ""} {
		if err := os.Rename(dst+suffix, aside+suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return lost, fmt.Errorf("restoring store: moving the newer store aside: %w", err)
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		return lost, fmt.Errorf("restoring store: %w", err)
	}
	if dir, err := os.Open(filepath.Dir(dst)); err == nil {
		_ = dir.Sync() // the renames' durability, where the OS allows it (not Windows)
		dir.Close()
	}
	return lost, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return errors.Join(out.Sync(), out.Close())
}

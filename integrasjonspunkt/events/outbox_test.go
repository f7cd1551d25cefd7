package events

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/require"
)

// SQLiteOutbox is a real event_outbox table with the semantics Outbox states.
// It lives in a test file because SQL belongs to the store; the store's own
// implementation must behave the same (the lead ports these statements).
// Exported so the external test package (which imports pakkesporing) can use it.
type SQLiteOutbox struct {
	DB  *sql.DB
	Now func() time.Time
}

// NewSQLiteOutbox opens a fresh database in t's temp dir.
func NewSQLiteOutbox(t testing.TB, now func() time.Time) *SQLiteOutbox {
	path := filepath.Join(t.TempDir(), "store.db")
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_busy_timeout=5000&_txlock=immediate")
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	_, err = db.Exec(`
CREATE TABLE event_outbox (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	type       TEXT NOT NULL,
	body       BLOB NOT NULL,
	created_at INTEGER NOT NULL -- unix nanos
);
CREATE INDEX event_outbox_type ON event_outbox(type, id);
CREATE TABLE event_rejected (
	id          INTEGER PRIMARY KEY,
	type        TEXT NOT NULL,
	body        BLOB NOT NULL,
	created_at  INTEGER NOT NULL,
	rejected_at INTEGER NOT NULL,
	reason      TEXT NOT NULL
);`)
	require.NoError(t, err)
	if now == nil {
		now = time.Now
	}
	return &SQLiteOutbox{DB: db, Now: now}
}

// Insert adds one row, as the store does inside the status transaction.
func (o *SQLiteOutbox) Insert(ctx context.Context, t Type, body []byte) error {
	_, err := o.DB.ExecContext(ctx, `INSERT INTO event_outbox(type, body, created_at) VALUES (?, ?, ?)`,
		string(t), body, o.Now().UnixNano())
	return err
}

func (o *SQLiteOutbox) Pending(ctx context.Context, limit, maxBytes int) ([]Row, error) {
	rows, err := o.DB.QueryContext(ctx, `SELECT id, type, body, created_at FROM event_outbox ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Row
	size := 0
	for rows.Next() {
		var r Row
		var created int64
		if err := rows.Scan(&r.ID, &r.Type, &r.Body, &created); err != nil {
			return nil, err
		}
		if len(out) > 0 && size+len(r.Body) > maxBytes {
			break
		}
		size += len(r.Body)
		r.CreatedAt = time.Unix(0, created)
		out = append(out, r)
	}
	return out, rows.Err()
}

func (o *SQLiteOutbox) Delete(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	q := `DELETE FROM event_outbox WHERE id IN (?` + strings.Repeat(",?", len(ids)-1) + `)`
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	_, err := o.DB.ExecContext(ctx, q, args...)
	return err
}

func (o *SQLiteOutbox) Reject(ctx context.Context, id int64, reason string) error {
	tx, err := o.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO event_rejected(id, type, body, created_at, rejected_at, reason)
		SELECT id, type, body, created_at, ?, ? FROM event_outbox WHERE id = ?`, o.Now().UnixNano(), reason, id); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM event_outbox WHERE id = ?`, id); err != nil {
		return err
	}
	return tx.Commit()
}

func (o *SQLiteOutbox) Backlog(ctx context.Context) (BacklogInfo, error) {
	var b BacklogInfo
	var oldest sql.NullInt64
	err := o.DB.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(length(body)), 0), min(created_at) FROM event_outbox`).
		Scan(&b.Count, &b.Bytes, &oldest)
	if oldest.Valid {
		b.Oldest = time.Unix(0, oldest.Int64)
	}
	return b, err
}

func (o *SQLiteOutbox) DropOldest(ctx context.Context, t Type, olderThan time.Time, limit int) (int, int64, error) {
	before := int64(1<<63 - 1)
	if !olderThan.IsZero() {
		before = olderThan.UnixNano()
	}
	var freed int64
	err := o.DB.QueryRowContext(ctx, `SELECT coalesce(sum(length(body)), 0) FROM (
		SELECT body FROM event_outbox WHERE type = ? AND created_at < ? ORDER BY id LIMIT ?)`,
		string(t), before, limit).Scan(&freed)
	if err != nil {
		return 0, 0, err
	}
	res, err := o.DB.ExecContext(ctx, `DELETE FROM event_outbox WHERE id IN (
		SELECT id FROM event_outbox WHERE type = ? AND created_at < ? ORDER BY id LIMIT ?)`,
		string(t), before, limit)
	if err != nil {
		return 0, 0, err
	}
	n, err := res.RowsAffected()
	return int(n), freed, err
}

// Rejected lists the reasons in event_rejected, in id order.
func (o *SQLiteOutbox) Rejected(t testing.TB) []string {
	rows, err := o.DB.Query(`SELECT reason FROM event_rejected ORDER BY id`)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		require.NoError(t, rows.Scan(&r))
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out
}

// Count is the number of rows left in event_outbox.
func (o *SQLiteOutbox) Count(t testing.TB) int {
	b, err := o.Backlog(context.Background())
	require.NoError(t, err)
	return b.Count
}

var _ Outbox = (*SQLiteOutbox)(nil)

// FakeClock passes time only when the shipper sleeps, so hours of backoff run
// in a moment. OnSleep runs after each advance (e.g. to bring a server back).
type FakeClock struct {
	mu      sync.Mutex
	t       time.Time
	Slept   []time.Duration
	OnSleep func(now time.Time)
}

// NewFakeClock starts at start.
func NewFakeClock(start time.Time) *FakeClock { return &FakeClock{t: start} }

func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *FakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.Slept = append(c.Slept, d)
	now := c.t
	c.mu.Unlock()
	if c.OnSleep != nil {
		c.OnSleep(now)
	}
	return ctx.Err()
}

// Sleeps returns a copy of the durations slept so far.
func (c *FakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.Slept...)
}

func (c *FakeClock) String() string { return fmt.Sprint(c.Now()) }

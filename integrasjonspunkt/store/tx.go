package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/mattn/go-sqlite3"

	"github.com/efm-go/efm/internal/logattr"
)

// conflict marks a unique-key violation as ErrDuplicate, so callers tell
// "already there" from a failing store without reading error text.
func conflict(err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) && se.Code == sqlite3.ErrConstraint &&
		(se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey) ||
		pgUnique(err) {
		return fmt.Errorf("%w: %w", ErrDuplicate, err)
	}
	return err
}

// Tx is one write transaction of the store: every change to the local API's
// records goes through it, so a status and its outbox row commit together.
//
// Its statements are prepared once per connection and kept across calls and
// transactions by the SQLite driver's statement cache (_stmt_cache_size in
// Open): preparing these small statements cost more than running them.
type Tx struct {
	tx  *sql.Tx
	ctx context.Context
	pg  bool // pgx caches prepared statements itself

	counts  *counts
	deleted map[string]bool // tables deleted from in this transaction (count.go)

	terms  *terms
	missed map[string]bool // texts written uncoded, to add as terms after the commit (terms.go)
}

// forUpdate locks the rows a read-modify-write reads: on PostgreSQL another
// daemon's transaction may change them between read and write; SQLite's one
// writer already excludes that.
func (t *Tx) forUpdate() string {
	if t.pg {
		return " FOR UPDATE"
	}
	return ""
}

func (t *Tx) exec(q string, args ...any) (sql.Result, error) {
	if table, ok := t.counts.bumpFor(q); ok {
		t.deleted[table] = true
	}
	return t.tx.ExecContext(t.ctx, q, args...)
}

func (t *Tx) query(q string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(t.ctx, q, args...)
}

func (t *Tx) queryRow(q string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(t.ctx, q, args...)
}

// insertID runs an INSERT of one row into a table whose key is an integer
// id and returns the id: from the driver on SQLite (a RETURNING clause
// costs a result set), from RETURNING on PostgreSQL, which has no last
// insert id.
func (t *Tx) insertID(q string, args ...any) (int64, error) {
	var id int64
	if t.pg {
		err := t.tx.QueryRowContext(t.ctx, q+` RETURNING id`, args...).Scan(&id)
		return id, err
	}
	res, err := t.tx.ExecContext(t.ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// Update runs fn as one atomic unit of writes: committed when fn returns
// nil, rolled back otherwise, and durable (as the store is) once Update
// returns nil.
//
// Concurrent Updates share one SQLite transaction (group commit): each fn
// runs inside its own savepoint, so a failing fn undoes only its own writes,
// and one commit serves them all. With one writer connection, a commit per
// message would cap the daemon at the commits per second of the disk.
func (s *Store) Update(ctx context.Context, fn func(*Tx) error) error {
	select {
	case <-s.closing:
		return ErrClosed
	default:
	}
	if s.pg {
		return s.updatePG(ctx, fn)
	}
	s.batchOnce.Do(s.startBatcher)
	o := &op{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.ops <- o:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return ErrClosed
	}
	// Once queued, fn runs or fails: wait for which, unless the batcher
	// stopped before taking it.
	select {
	case err := <-o.done:
		return err
	case <-s.batcherDone:
		select {
		case err := <-o.done:
			return err
		default:
			return ErrClosed
		}
	}
}

// ErrClosed means the store is closing.
var ErrClosed = errors.New("store closed")

// maxBatch bounds the work one group commit holds up.
const maxBatch = 64

type op struct {
	ctx  context.Context
	fn   func(*Tx) error
	done chan error
	err  error
}

func (s *Store) startBatcher() {
	s.ops = make(chan *op, maxBatch)
	s.batcherDone = make(chan struct{})
	go s.batcher()
}

func (s *Store) batcher() {
	defer close(s.batcherDone)
	for {
		var first *op
		select {
		case first = <-s.ops:
		case <-s.closing:
			return
		}
		batch := []*op{first}
	fill:
		for len(batch) < maxBatch {
			select {
			case o := <-s.ops:
				batch = append(batch, o)
			default:
				break fill
			}
		}
		s.runBatch(batch)
		s.restartWAL()
	}
}

func (s *Store) runBatch(batch []*op) {
	deleted := map[string]bool{}
	missed := map[string]bool{}
	finish := func(err error) {
		// After the commit, before anyone hears of it (count.go).
		for t := range deleted {
			s.counts.bump(t)
		}
		for _, o := range batch {
			if o.err == nil {
				o.err = err
			}
			o.done <- o.err
		}
	}
	tx, err := s.w.BeginTx(context.Background(), nil)
	if err != nil {
		finish(fmt.Errorf("beginning write: %w", err))
		return
	}
	for _, o := range batch {
		if err := o.ctx.Err(); err != nil {
			o.err = err
			continue
		}
		// Statements run without the caller's cancellation: an interrupted
		// statement can roll back the whole shared transaction in SQLite.
		ctx := context.WithoutCancel(o.ctx)
		if _, err := tx.ExecContext(ctx, `SAVEPOINT op`); err != nil {
			o.err = err
			continue
		}
		if o.err = o.fn(&Tx{tx: tx, ctx: ctx, counts: s.counts, deleted: deleted, terms: &s.terms, missed: missed}); o.err != nil {
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO op`); err != nil {
				tx.Rollback()
				finish(fmt.Errorf("rolling back to savepoint: %w", err))
				return
			}
		}
		if _, err := tx.ExecContext(ctx, `RELEASE op`); err != nil {
			tx.Rollback()
			finish(fmt.Errorf("releasing savepoint: %w", err))
			return
		}
	}
	if err := tx.Commit(); err != nil {
		finish(fmt.Errorf("committing: %w", err))
		return
	}
	finish(nil)
	s.learn(missed)
}

// updatePG runs fn in a transaction of its own: PostgreSQL commits
// concurrent transactions together by itself, and a batch shared between
// messages would hold row locks that other daemons wait on. A transaction
// that lost a race (deadlock, serialization) runs again.
func (s *Store) updatePG(ctx context.Context, fn func(*Tx) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = s.updatePGOnce(ctx, fn); !retryable(err) {
			return err
		}
		s.log.Debug("retrying a transaction that lost a race", logattr.Err(err))
	}
	return err
}

func (s *Store) updatePGOnce(ctx context.Context, fn func(*Tx) error) error {
	// As with SQLite, statements run without the caller's cancellation once
	// begun, so a stopping daemon finishes the write it started.
	ctx = context.WithoutCancel(ctx)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning write: %w", err)
	}
	missed := map[string]bool{}
	if err := fn(&Tx{tx: tx, ctx: ctx, pg: true, terms: &s.terms, missed: missed}); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	s.learn(missed)
	return nil
}

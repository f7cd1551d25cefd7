package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
)

// Every page of the local API carries its list's exact totalElements
// (local-api.md §2.6), and counting every matching row on every page made a
// page of a store of a million messages a hundred times slower than of ten
// thousand. Rows of message_status never change once written, and of a
// conversation only its status, flags, times, title and reference: so a
// count over the other columns stays true for the rows it covered until
// one of them is deleted. The store keeps such counts with the highest id
// they covered, and brings one up to date by counting only the rows added
// since (SQLite hands out ids in commit order under its one writer).
//
// Deletes invalidate: every DELETE through Tx, and every Write, bumps the
// generation of the tables it may touch before it runs and again after it
// committed, so no count read from a snapshot on either side of a delete
// outlives it. On PostgreSQL ids are not handed out in commit order and
// other daemons delete too: every page counts.

// countTables are the tables whose counts are kept; a delete from
// conversation also deletes its message_status rows (ON DELETE CASCADE).
var countTables = map[string][]string{
	"conversation":   {"conversation", "message_status"},
	"message_status": {"message_status"},
}

type countEntry struct {
	gen          int64
	minID, maxID int64
	n            int
}

type counts struct {
	mu      sync.Mutex
	entries map[string]countEntry
	gens    map[string]*atomic.Int64
}

// maxCounts bounds the remembered counts: a client that pages through
// many filters must not grow the daemon.
const maxCounts = 512

func newCounts() *counts {
	c := &counts{entries: map[string]countEntry{}, gens: map[string]*atomic.Int64{}}
	for t := range countTables {
		c.gens[t] = &atomic.Int64{}
	}
	return c
}

// bump invalidates the counts over table (all tables when table is "").
func (c *counts) bump(table string) {
	if c == nil {
		return
	}
	if table == "" {
		for _, g := range c.gens {
			g.Add(1)
		}
		return
	}
	for _, t := range countTables[table] {
		c.gens[t].Add(1)
	}
}

// bumpFor bumps the tables a statement deletes from and returns which
// ("" for all), or ok false when it deletes nothing.
func (c *counts) bumpFor(q string) (table string, ok bool) {
	if c == nil {
		return "", false
	}
	q = strings.TrimSpace(q)
	if len(q) < 6 || !strings.EqualFold(q[:6], "DELETE") {
		return "", false
	}
	if f := strings.Fields(q); len(f) >= 3 && strings.EqualFold(f[1], "FROM") {
		table = f[2]
	}
	c.bump(table)
	return table, true
}

func (c *counts) gen(table string) int64 {
	if g, ok := c.gens[table]; ok {
		return g.Load()
	}
	return 0
}

// countRows returns the number of rows of from (a table, or a table and
// its joins, whose ids are idCol of table) matching w. keep says whether w
// reads only columns a row never changes, so its count may be kept.
func (s *Store) countRows(ctx context.Context, table, idCol, from string, w *where, keep bool) (int, error) {
	if s.pg || s.counts == nil || !keep {
		var n int
		err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+from+w.sql(), w.args...).Scan(&n)
		return n, err
	}
	gen := s.counts.gen(table) // before the snapshot: see the comment above
	key := from + w.sql() + fmt.Sprint(w.args...)

	// One read transaction: the bounds and the count of one snapshot.
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var lo, hi int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT MIN(id) FROM `+table+`), 0), COALESCE((SELECT MAX(id) FROM `+table+`), 0)`).
		Scan(&lo, &hi); err != nil {
		return 0, err
	}
	s.counts.mu.Lock()
	e, ok := s.counts.entries[key]
	s.counts.mu.Unlock()
	var n int
	if ok && e.gen == gen && e.minID == lo && e.maxID <= hi {
		if e.maxID < hi {
			d := &where{clauses: append(w.clauses[:len(w.clauses):len(w.clauses)], idCol+" > ?", idCol+" <= ?"),
				args: append(w.args[:len(w.args):len(w.args)], e.maxID, hi)}
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+from+d.sql(), d.args...).Scan(&n); err != nil {
				return 0, err
			}
		}
		n += e.n
	} else {
		d := &where{clauses: append(w.clauses[:len(w.clauses):len(w.clauses)], idCol+" <= ?"),
			args: append(w.args[:len(w.args):len(w.args)], hi)}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+from+d.sql(), d.args...).Scan(&n); err != nil {
			return 0, err
		}
	}
	s.counts.mu.Lock()
	if len(s.counts.entries) >= maxCounts {
		clear(s.counts.entries)
	}
	s.counts.entries[key] = countEntry{gen: gen, minID: lo, maxID: hi, n: n}
	s.counts.mu.Unlock()
	return n, nil
}

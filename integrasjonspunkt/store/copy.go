package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// copyTables are the tables CopyTo moves, parents before children, each with
// the column that orders it and tells how far a copy got: the integer
// primary key, or the rowid SQLite keeps hidden and PostgreSQL spells out
// (pgDDL).
var copyTables = []struct{ name, key string }{
	{"installation", "rowid"},
	{"term", "id"},
	{"conversation", "id"},
	{"message_status", "id"},
	{"status_queue", "status_id"},
	{"status_reply", "id"},
	{"subscription", "id"},
	{"outgoing_message", "rowid"},
	{"attachment", "id"},
	{"incoming_message", "rowid"},
	{"event_outbox", "id"},
	{"event_rejected", "id"},
	{"kept_payload", "rowid"},
	{"kept_attachment", "id"},
	{"retention_run", "id"},
}

// TableCount is one table's rows in the source and the destination after a
// copy.
type TableCount struct {
	Table          string
	Source, Copied int64
}

// ErrCountMismatch means a copy ended with different row counts.
var ErrCountMismatch = errors.New("row counts differ after the copy")

// CopyTo copies every record of this SQLite store into dst, a PostgreSQL
// store at the same schema version: what `integrasjonspunkt store migrate`
// does when an agency moves to several daemons. It copies in batches, each
// committed, in key order and continuing after the highest key dst already
// has, so an interrupted copy resumes where it stopped; then it moves the
// identity sequences past the copied ids and compares the row counts of
// every table. The daemon must be stopped while it runs.
func (s *Store) CopyTo(ctx context.Context, dst *Store, progress func(table string, copied int64)) ([]TableCount, error) {
	if s.pg || !dst.pg {
		return nil, errors.New("copying goes from a SQLite store to a PostgreSQL store")
	}
	var counts []TableCount
	for _, t := range copyTables {
		if t.name == "conversation" {
			if err := s.sameTerms(ctx, dst); err != nil {
				return nil, err
			}
		}
		if err := s.copyTable(ctx, dst, t.name, t.key, progress); err != nil {
			return nil, fmt.Errorf("copying %s: %w", t.name, err)
		}
		c := TableCount{Table: t.name}
		if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+t.name).Scan(&c.Source); err != nil {
			return nil, err
		}
		if err := dst.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+t.name).Scan(&c.Copied); err != nil {
			return nil, err
		}
		counts = append(counts, c)
	}
	for _, c := range counts {
		if c.Source != c.Copied {
			return counts, fmt.Errorf("%w: %s has %d rows in SQLite and %d in PostgreSQL", ErrCountMismatch, c.Table, c.Source, c.Copied)
		}
	}
	return counts, nil
}

const copyBatch = 500

// ErrTermsDiffer means the destination gave a code another text than the
// source did: the copied rows would read differently, so the copy stops.
var ErrTermsDiffer = errors.New("the destination's terms differ from the source's")

// sameTerms checks that every term of s means the same in dst, after the
// term table was copied (which skips ids dst already has).
func (s *Store) sameTerms(ctx context.Context, dst *Store) error {
	read := func(st *Store) (map[int64]string, error) {
		rows, err := st.r.QueryContext(ctx, `SELECT id, value FROM term`)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		m := map[int64]string{}
		for rows.Next() {
			var id int64
			var v string
			if err := rows.Scan(&id, &v); err != nil {
				return nil, err
			}
			m[id] = v
		}
		return m, rows.Err()
	}
	src, err := read(s)
	if err != nil {
		return fmt.Errorf("reading terms: %w", err)
	}
	got, err := read(dst)
	if err != nil {
		return fmt.Errorf("reading terms: %w", err)
	}
	for id, v := range src {
		if got[id] != v {
			return fmt.Errorf("%w: term %d is %q in SQLite and %q in PostgreSQL", ErrTermsDiffer, id, v, got[id])
		}
	}
	return nil
}

func (s *Store) copyTable(ctx context.Context, dst *Store, table, key string, progress func(string, int64)) error {
	cols, err := s.columns(ctx, table)
	if err != nil {
		return err
	}
	if key == "rowid" {
		cols = append([]string{"rowid"}, cols...)
	}
	var from int64
	if err := dst.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(`+key+`), 0) FROM `+table).Scan(&from); err != nil {
		return err
	}
	sel := `SELECT ` + strings.Join(cols, ", ") + ` FROM ` + table + ` WHERE ` + key + ` > ? ORDER BY ` + key + ` LIMIT ?`
	ins := `INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `) VALUES (` +
		strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + `) ON CONFLICT DO NOTHING`
	var copied int64
	for {
		rows, err := s.r.QueryContext(ctx, sel, from, copyBatch)
		if err != nil {
			return err
		}
		var batch [][]any
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return err
			}
			if table == "conversation" {
				// PostgreSQL keeps the ids as text (ids.go).
				for i, c := range cols {
					if b, ok := vals[i].([]byte); ok && len(b) == 16 && (c == "message_id" || c == "conversation_id") {
						vals[i] = formatUUID(b)
					}
				}
			}
			batch = append(batch, vals)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(batch) == 0 {
			break
		}
		keyAt := 0
		for i, c := range cols {
			if c == key {
				keyAt = i
			}
		}
		err = dst.Write(ctx, func(tx *sql.Tx) error {
			for _, vals := range batch {
				if _, err := tx.ExecContext(ctx, ins, vals...); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		from = batch[len(batch)-1][keyAt].(int64)
		copied += int64(len(batch))
		if progress != nil {
			progress(table, copied)
		}
	}
	// Identity columns hand out ids past the copied ones from now on.
	if _, err := dst.w.ExecContext(ctx, `SELECT setval(seq, m) FROM (SELECT pg_get_serial_sequence(?, ?) AS seq,
		(SELECT MAX(`+key+`) FROM `+table+`) AS m) x WHERE seq IS NOT NULL AND m IS NOT NULL`, table, key); err != nil {
		return fmt.Errorf("moving the identity sequence: %w", err)
	}
	return nil
}

// columns lists a SQLite table's columns in order.
func (s *Store) columns(ctx context.Context, table string) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name FROM pragma_table_info(?) ORDER BY cid`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		cols = append(cols, c)
	}
	return cols, rows.Err()
}

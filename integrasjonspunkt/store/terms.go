package store

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/efm-go/efm/internal/logattr"
)

// Coded columns (migration 0006): a column that repeats a few long texts
// in every row stores a term's id in a code column and '' in the text
// column, or NULL and the text itself when the text has no term. Every
// encoding and decoding of them is here.

// maxStatusTerm is the highest term id migration 0006 seeded with a
// status. Only those statuses are coded, and every row with one of them
// was converted: a status is then in exactly one form, which a filter on
// the status index needs.
const maxStatusTerm = 11

// maxTerms bounds the terms the daemon adds by itself (client product
// tokens come from User-Agent): past it, new texts stay text.
const maxTerms = 10_000

// decoded is the SQL of a coded column's text.
func decoded(code, text string) string {
	return "COALESCE((SELECT value FROM term WHERE id = " + code + "), " + text + ")"
}

// terms are the store's committed terms. Tx codes a text only with a term
// committed before the transaction began, so no transaction refers to a
// term that a rolled-back savepoint of another removed again.
type terms struct {
	mu  sync.RWMutex
	ids map[string]int64
}

func (ts *terms) get(v string) (int64, bool) {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	id, ok := ts.ids[v]
	return id, ok
}

func (s *Store) loadTerms(ctx context.Context) error {
	rows, err := s.w.QueryContext(ctx, `SELECT id, value FROM term`)
	if err != nil {
		return fmt.Errorf("reading terms: %w", err)
	}
	defer rows.Close()
	ids := map[string]int64{}
	for rows.Next() {
		var id int64
		var v string
		if err := rows.Scan(&id, &v); err != nil {
			return fmt.Errorf("reading terms: %w", err)
		}
		ids[v] = id
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading terms: %w", err)
	}
	s.terms.mu.Lock()
	s.terms.ids = ids
	s.terms.mu.Unlock()
	return nil
}

// learn adds terms for texts written as text, after the transaction that
// wrote them committed: later rows get the code. Failing to learn costs
// bytes, not correctness, so it is only logged.
func (s *Store) learn(missed map[string]bool) {
	if len(missed) == 0 {
		return
	}
	s.terms.mu.RLock()
	full := len(s.terms.ids) >= maxTerms
	s.terms.mu.RUnlock()
	if full {
		return
	}
	ctx := context.Background()
	// Not through Write: adding terms deletes nothing, so the kept list
	// counts (count.go) stay.
	err := func() error {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for v := range missed {
			// The id is taken, not generated: another daemon of a group
			// taking the same id or text loses nothing but this code.
			if _, err := tx.ExecContext(ctx, `INSERT INTO term (id, value) SELECT COALESCE(MAX(id), 0) + 1, ? FROM term
				WHERE true ON CONFLICT DO NOTHING`, v); err != nil {
				return errors.Join(err, tx.Rollback())
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		return s.loadTerms(ctx)
	}()
	if err != nil {
		s.log.Warn("adding terms", logattr.Err(err))
	}
}

// code is a coded column's pair of values for v: its term's id and an empty text, or
// NULL and v while v has no term (which it will get once this commits).
func (t *Tx) code(v string) (code any, text string) {
	if v == "" {
		return nil, ""
	}
	if id, ok := t.terms.get(v); ok {
		return id, ""
	}
	if t.missed != nil {
		t.missed[v] = true
	}
	return nil, v
}

// statusCode is code for a status: only the seeded statuses are coded.
func statusCode(ts *terms, v string) (code any, text string) {
	if id, ok := ts.get(v); ok && id <= maxStatusTerm {
		return id, ""
	}
	return nil, v
}

// statusIs adds the condition that the status column pair of alias holds
// status v, in the form the index on (status_code, status, last_update)
// reads as one range.
func statusIs(w *where, ts *terms, alias, v string) {
	if code, _ := statusCode(ts, v); code != nil {
		w.add(alias+"status_code = ? AND "+alias+"status = ''", code)
		return
	}
	w.add(alias+"status_code IS NULL AND "+alias+"status = ?", v)
}

// A conversation's sender and receiver (migration 0007): bit partySender or
// partyReceiver of the parties column set means the column is empty and the
// text is orgPrefix and the identifier beside it.
const (
	orgPrefix     = "0192:"
	partySender   = 1
	partyReceiver = 2
)

// partyCol is the SQL of the sender or receiver text.
func partyCol(bit int, col, identifier string) string {
	return fmt.Sprintf("CASE WHEN parties & %d = %d THEN '%s' || %s ELSE %s END", bit, bit, orgPrefix, identifier, col)
}

var (
	senderCol   = partyCol(partySender, "sender", "sender_identifier")
	receiverCol = partyCol(partyReceiver, "receiver", "receiver_identifier")
)

// parties is the parties column of c and its sender and receiver texts.
func parties(c *Conversation) (flags any, sender, receiver string) {
	f := 0
	sender, receiver = c.Sender, c.Receiver
	if c.SenderIdentifier != "" && sender == orgPrefix+c.SenderIdentifier {
		f, sender = f|partySender, ""
	}
	if c.ReceiverIdentifier != "" && receiver == orgPrefix+c.ReceiverIdentifier {
		f, receiver = f|partyReceiver, ""
	}
	if f == 0 {
		return nil, sender, receiver
	}
	return f, sender, receiver
}

// convStatusIs adds the condition that a conversation's latest status is v.
// Rows written before migration 0007 hold it as text, with no code.
func convStatusIs(w *where, ts *terms, v string) {
	if code, _ := statusCode(ts, v); code != nil {
		w.add("(status_code = ? OR (status_code IS NULL AND status = ?))", code, v)
		return
	}
	w.add("status_code IS NULL AND status = ?", v)
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Retention (operations.md §3.2): what the daily job deletes, one small
// batch per call, each batch its own short write so that accepting and
// delivering messages never waits long behind it.

// PruneHistory deletes up to limit finished conversations not updated since
// before, with their statuses (and their status-queue entries, by cascade).
// It returns how many conversations and statuses went.
func (s *Store) PruneHistory(ctx context.Context, before time.Time, limit int) (convs, statuses int, err error) {
	// last_update of a finished conversation is its last status: the final
	// one, or a later LEST, which keeps the history as long as the central
	// log keeps it (handled_at, operations.md §5.4).
	sel := `SELECT id FROM conversation WHERE finished = 1 AND last_update < ? ORDER BY last_update LIMIT ?`
	err = s.Update(ctx, func(tx *Tx) error {
		if err := tx.queryRow(`SELECT COUNT(*) FROM message_status WHERE conv_id IN (`+sel+`)`, ms(before), limit).Scan(&statuses); err != nil {
			return err
		}
		res, err := tx.exec(`DELETE FROM conversation WHERE id IN (`+sel+`)`, ms(before), limit)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		convs = int(n)
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("pruning history: %w", err)
	}
	return convs, statuses, nil
}

// PruneRows deletes up to limit rows of the small side tables that nothing
// else drains for good: status replies never carried (their channel was
// switched off), central-log events no shipper will send, and rejected
// events. Each is deleted when created (rejected) before its cutoff; a zero
// cutoff skips the table.
func (s *Store) PruneRows(ctx context.Context, table string, before time.Time, limit int) (int, error) {
	col, ok := map[string]string{"status_reply": "created_at", "event_outbox": "created_at", "event_rejected": "rejected_at"}[table]
	if !ok {
		return 0, fmt.Errorf("pruning %s: not a table retention prunes", table)
	}
	if before.IsZero() {
		return 0, nil
	}
	var n int64
	err := s.Update(ctx, func(tx *Tx) error {
		res, err := tx.exec(`DELETE FROM `+table+` WHERE id IN (SELECT id FROM `+table+` WHERE `+col+` < ? ORDER BY id LIMIT ?)`, ms(before), limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("pruning %s: %w", table, err)
	}
	return int(n), nil
}

// UnfetchedIncoming lists up to limit incoming messages received before
// before and not locked by a client now: what efm.retention.incoming-unfetched
// takes off the queue.
func (s *Store) UnfetchedIncoming(ctx context.Context, before, now time.Time, limit int) ([]string, error) {
	return s.ids(ctx, `SELECT message_id FROM incoming_message WHERE last_updated < ? AND locked_until <= ?
		ORDER BY last_updated LIMIT ?`, ms(before), ms(now), limit)
}

// IncomingAge is the age of the incoming queue: how many messages were
// received before a time, and when the oldest was.
type IncomingAge struct {
	Oldest time.Time // zero when the queue is empty
	Before int       // received before the asked time
}

// IncomingAgeBefore reads the oldest incoming message's time and counts those
// received before t. Both read the queue's time index only.
func (s *Store) IncomingAgeBefore(ctx context.Context, t time.Time) (IncomingAge, error) {
	var a IncomingAge
	var oldest int64
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MIN(last_updated), 0),
		(SELECT COUNT(*) FROM incoming_message WHERE last_updated < ?) FROM incoming_message`, ms(t)).Scan(&oldest, &a.Before)
	if err != nil {
		return a, fmt.Errorf("reading incoming queue age: %w", err)
	}
	a.Oldest = fromMS(oldest)
	return a, nil
}

// Stale is an unfinished conversation as the status page lists it: no
// party's identifier, since a receiver may be a person.
type Stale struct {
	MessageID, Direction, Service, Status string
	Created, LastUpdate                   time.Time
}

// StaleUnfinished counts the unfinished conversations created before t
// (at most max, so the count stays cheap on a large store) and lists the
// oldest limit of them.
func (s *Store) StaleUnfinished(ctx context.Context, t time.Time, max, limit int) (int, []Stale, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM conversation
		WHERE finished = 0 AND created_at < ? LIMIT ?) x`, ms(t), max).Scan(&n); err != nil {
		return 0, nil, fmt.Errorf("counting old unfinished conversations: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT message_id, direction, service_identifier, `+decoded("status_code", "status")+`, created_at, last_update
		FROM conversation WHERE finished = 0 AND created_at < ? ORDER BY id LIMIT ?`, ms(t), limit)
	if err != nil {
		return 0, nil, fmt.Errorf("listing old unfinished conversations: %w", err)
	}
	defer rows.Close()
	var out []Stale
	for rows.Next() {
		var st Stale
		var c, lu int64
		if err := rows.Scan(idText{&st.MessageID}, &st.Direction, &st.Service, &st.Status, &c, &lu); err != nil {
			return 0, nil, fmt.Errorf("listing old unfinished conversations: %w", err)
		}
		st.Created, st.LastUpdate = fromMS(c), fromMS(lu)
		out = append(out, st)
	}
	return n, out, rows.Err()
}

// KeepPayload sets a message's SBD and attachments aside until deleteAfter,
// in the transaction that removes it from the outgoing store
// (efm.retention.outgoing-payload). The payload files then belong to the
// kept rows: the caller must not remove them.
func (t *Tx) KeepPayload(messageID string, deleteAfter time.Time) error {
	if _, err := t.exec(`INSERT INTO kept_payload (message_id, sbd, delete_after)
		SELECT message_id, sbd, ? FROM outgoing_message WHERE message_id = ? ON CONFLICT DO NOTHING`, ms(deleteAfter), messageID); err != nil {
		return fmt.Errorf("keeping payload: %w", err)
	}
	if _, err := t.exec(`INSERT INTO kept_attachment (message_id, doc_no, filename, mime_type, file, data)
		SELECT message_id, doc_no, filename, mime_type, file, data FROM attachment WHERE message_id = ?`, messageID); err != nil {
		return fmt.Errorf("keeping payload: %w", err)
	}
	return nil
}

// KeptPayload is a payload kept after its message was sent.
type KeptPayload struct {
	SBD         []byte
	DeleteAfter time.Time
	Attachments []Attachment // Filename, MimeType, DocNo, File or Data
}

// GetKeptPayload reads a kept payload; ErrNotFound when none is kept.
func (s *Store) GetKeptPayload(ctx context.Context, messageID string) (*KeptPayload, error) {
	var k KeptPayload
	var da int64
	err := s.r.QueryRowContext(ctx, `SELECT sbd, delete_after FROM kept_payload WHERE message_id = ?`, messageID).Scan(&k.SBD, &da)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading kept payload: %w", err)
	}
	k.DeleteAfter = fromMS(da)
	rows, err := s.r.QueryContext(ctx, `SELECT doc_no, filename, mime_type, file, data FROM kept_attachment
		WHERE message_id = ? ORDER BY doc_no`, messageID)
	if err != nil {
		return nil, fmt.Errorf("reading kept payload: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		a := Attachment{MessageID: messageID}
		if err := rows.Scan(&a.DocNo, &a.Filename, &a.MimeType, &a.File, &a.Data); err != nil {
			return nil, fmt.Errorf("reading kept payload: %w", err)
		}
		k.Attachments = append(k.Attachments, a)
	}
	return &k, rows.Err()
}

// PruneKeptPayloads deletes up to limit kept payloads due before now and
// returns how many, and the payload files to remove once committed.
func (s *Store) PruneKeptPayloads(ctx context.Context, now time.Time, limit int) (int, []string, error) {
	var n int
	var files []string
	sel := `SELECT message_id FROM kept_payload WHERE delete_after < ? ORDER BY delete_after LIMIT ?`
	err := s.Update(ctx, func(tx *Tx) error {
		files, n = nil, 0
		var err error
		if files, err = texts(tx.query(`SELECT file FROM kept_attachment WHERE file != '' AND message_id IN (`+sel+`)`, ms(now), limit)); err != nil {
			return err
		}
		res, err := tx.exec(`DELETE FROM kept_payload WHERE message_id IN (`+sel+`)`, ms(now), limit)
		if err != nil {
			return err
		}
		d, err := res.RowsAffected()
		n = int(d)
		return err
	})
	if err != nil {
		return 0, nil, fmt.Errorf("pruning kept payloads: %w", err)
	}
	return n, files, nil
}

// PruneOrphanOutgoing deletes up to limit outgoing messages whose
// conversation the client deleted (E15 leaves the outgoing store alone) and
// whose expiry passed before before: nothing sends or expires them any more.
// It returns how many, and the payload files to remove once committed.
func (s *Store) PruneOrphanOutgoing(ctx context.Context, before time.Time, limit int) (int, []string, error) {
	var n int
	var files []string
	err := s.Update(ctx, func(tx *Tx) error {
		n, files = 0, nil
		ids, err := texts(tx.query(`SELECT message_id FROM outgoing_message o WHERE expiry < ? AND NOT EXISTS
			(SELECT 1 FROM conversation c WHERE c.message_id = `+idSQL(tx.pg, "o.message_id")+` AND c.direction = 'OUTGOING') ORDER BY expiry LIMIT ?`, ms(before), limit))
		if err != nil {
			return err
		}
		for _, id := range ids {
			fs, err := tx.DeleteOutgoing(id)
			if err != nil {
				return err
			}
			files = append(files, fs...)
		}
		n = len(ids)
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("pruning outgoing messages without a conversation: %w", err)
	}
	return n, files, nil
}

// texts reads a one-column result of text.
func texts(rows *sql.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// PayloadFilesInUse returns every payload file name a row still refers to:
// an unsent message's attachments, a queued incoming package, a kept
// payload. A file outside this set, older than any write in progress, is
// left over from a crash between a commit and the file's removal.
func (s *Store) PayloadFilesInUse(ctx context.Context) (map[string]bool, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT file FROM attachment WHERE file != ''
		UNION ALL SELECT package FROM incoming_message WHERE package != ''
		UNION ALL SELECT file FROM kept_attachment WHERE file != ''`)
	if err != nil {
		return nil, fmt.Errorf("listing payload files in use: %w", err)
	}
	defer rows.Close()
	in := map[string]bool{}
	for rows.Next() {
		var f string
		if err := rows.Scan(&f); err != nil {
			return nil, fmt.Errorf("listing payload files in use: %w", err)
		}
		in[f] = true
	}
	return in, rows.Err()
}

// RetentionRun is one run of the retention job.
type RetentionRun struct {
	Started, Finished                                          time.Time
	Conversations, Statuses, Incoming, Payloads, Files, Events int
	Error                                                      string
}

// RecordRetentionRun stores a run and keeps the last keep runs.
func (s *Store) RecordRetentionRun(ctx context.Context, r RetentionRun, keep int) error {
	err := s.Update(ctx, func(tx *Tx) error {
		if _, err := tx.exec(`INSERT INTO retention_run (started_at, finished_at, conversations, statuses, incoming,
			payloads, files, events, error) VALUES (?,?,?,?,?,?,?,?,?)`, ms(r.Started), ms(r.Finished), r.Conversations,
			r.Statuses, r.Incoming, r.Payloads, r.Files, r.Events, r.Error); err != nil {
			return err
		}
		_, err := tx.exec(`DELETE FROM retention_run WHERE id NOT IN (SELECT id FROM retention_run ORDER BY id DESC LIMIT ?)`, keep)
		return err
	})
	if err != nil {
		return fmt.Errorf("recording retention run: %w", err)
	}
	return nil
}

// LastRetentionRun is the newest recorded run; ErrNotFound before the first.
func (s *Store) LastRetentionRun(ctx context.Context) (RetentionRun, error) {
	var r RetentionRun
	var st, fi int64
	err := s.r.QueryRowContext(ctx, `SELECT started_at, finished_at, conversations, statuses, incoming, payloads, files,
		events, error FROM retention_run ORDER BY id DESC LIMIT 1`).Scan(&st, &fi, &r.Conversations, &r.Statuses,
		&r.Incoming, &r.Payloads, &r.Files, &r.Events, &r.Error)
	if errors.Is(err, sql.ErrNoRows) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("reading last retention run: %w", err)
	}
	r.Started, r.Finished = fromMS(st), fromMS(fi)
	return r, nil
}

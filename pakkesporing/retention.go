package pakkesporing

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// RetentionMonths is how long central keeps a message's events after it is
// handled: the terms of use say 24 months (operations.md §5.4).
const RetentionMonths = 24

// RetentionResult is what one run deleted; it is logged and kept in
// retention_run.
type RetentionResult struct {
	Cutoff               time.Time
	EventsDeleted        int64
	ConversationsDeleted int64
	InstallationsDeleted int64
	PartitionsDropped    int64
}

// RunRetention is the daily job. With cutoff = now − 24 months it deletes
// every event of conversations handled before the cutoff, of conversations
// that never reached a final status and whose last event is before it, and
// installation and update events that occurred before it. Each side's
// conversation (orgnr, message_id) expires on its own handled_at. Empty
// partitions older than the cutoff are dropped.
func (s *Server) RunRetention(ctx context.Context) (RetentionResult, error) {
	now := s.cfg.Now().UTC()
	res := RetentionResult{Cutoff: now.AddDate(0, -RetentionMonths, 0)}
	cut := res.Cutoff.UnixNano()

	d := s.db
	d.mu.Lock()
	defer d.mu.Unlock()
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("beginning retention: %w", err)
	}
	defer tx.Rollback()

	if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE IF NOT EXISTS expired (orgnr TEXT, message_id TEXT, PRIMARY KEY (orgnr, message_id))`); err != nil {
		return res, fmt.Errorf("preparing retention: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM expired`); err != nil {
		return res, fmt.Errorf("preparing retention: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO expired SELECT orgnr, message_id FROM conversation
		WHERE (handled_at IS NOT NULL AND handled_at < ?) OR (handled_at IS NULL AND last_event_at < ?)`, cut, cut); err != nil {
		return res, fmt.Errorf("finding expired conversations: %w", err)
	}

	months, err := listPartitions(ctx, tx)
	if err != nil {
		return res, err
	}
	for _, m := range months {
		t := partitionTable(m)
		expiredEvents := `SELECT event_id FROM ` + t + ` p WHERE (p.type = 'message.status' AND EXISTS
			(SELECT 1 FROM expired e WHERE e.orgnr = p.orgnr AND e.message_id = p.message_id))
			OR (p.type != 'message.status' AND p.occurred_at < ?)`
		if _, err := tx.ExecContext(ctx, `DELETE FROM event_ids WHERE event_id IN (`+expiredEvents+`)`, cut); err != nil {
			return res, fmt.Errorf("deleting expired event ids in %s: %w", m, err)
		}
		r, err := tx.ExecContext(ctx, `DELETE FROM `+t+` WHERE event_id IN (`+expiredEvents+`)`, cut)
		if err != nil {
			return res, fmt.Errorf("deleting expired events in %s: %w", m, err)
		}
		n, _ := r.RowsAffected()
		res.EventsDeleted += n

		// A month entirely before the cutoff that is now empty is dropped.
		end, _ := time.Parse("200601", m)
		if end.AddDate(0, 1, 0).Before(res.Cutoff) {
			var left int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+t).Scan(&left); err != nil {
				return res, fmt.Errorf("counting events in %s: %w", m, err)
			}
			if left == 0 {
				if _, err := tx.ExecContext(ctx, `DROP TABLE `+t); err != nil {
					return res, fmt.Errorf("dropping partition %s: %w", m, err)
				}
				if _, err := tx.ExecContext(ctx, `DELETE FROM partitions WHERE month = ?`, m); err != nil {
					return res, fmt.Errorf("dropping partition %s: %w", m, err)
				}
				res.PartitionsDropped++
			}
		}
	}
	r, err := tx.ExecContext(ctx, `DELETE FROM conversation WHERE (orgnr, message_id) IN (SELECT orgnr, message_id FROM expired)`)
	if err != nil {
		return res, fmt.Errorf("deleting expired conversations: %w", err)
	}
	res.ConversationsDeleted, _ = r.RowsAffected()
	r, err = tx.ExecContext(ctx, `DELETE FROM installation WHERE last_seen < ?`, cut)
	if err != nil {
		return res, fmt.Errorf("deleting expired installations: %w", err)
	}
	res.InstallationsDeleted, _ = r.RowsAffected()
	if _, err := tx.ExecContext(ctx, `DELETE FROM alert_sent WHERE sent_at < ?`, cut); err != nil {
		return res, fmt.Errorf("deleting old alert records: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO retention_run(run_at, cutoff, events_deleted, conversations_deleted,
		installations_deleted, partitions_dropped) VALUES (?,?,?,?,?,?)`, now.UnixNano(), cut, res.EventsDeleted,
		res.ConversationsDeleted, res.InstallationsDeleted, res.PartitionsDropped); err != nil {
		return res, fmt.Errorf("recording retention run: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM expired`); err != nil {
		return res, fmt.Errorf("clearing retention scratch: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return res, fmt.Errorf("committing retention: %w", err)
	}
	d.reloadMonths(ctx)
	s.log.InfoContext(ctx, "retention run", slog.Time("cutoff", res.Cutoff), slog.Int64("events_deleted", res.EventsDeleted),
		slog.Int64("conversations_deleted", res.ConversationsDeleted),
		slog.Int64("installations_deleted", res.InstallationsDeleted),
		slog.Int64("partitions_dropped", res.PartitionsDropped))
	return res, nil
}

// reloadMonths refreshes the cache of existing partitions after drops; the
// caller holds d.mu.
func (d *db) reloadMonths(ctx context.Context) {
	ms, err := d.partitions(ctx)
	if err != nil {
		d.months = map[string]bool{} // re-created on demand with IF NOT EXISTS
		return
	}
	d.months = map[string]bool{}
	for _, m := range ms {
		d.months[m] = true
	}
}

// RetentionRun is one row of retention_run, newest first in RetentionRuns.
type RetentionRun struct {
	RunAt                time.Time `json:"run_at"`
	Cutoff               time.Time `json:"cutoff"`
	EventsDeleted        int64     `json:"events_deleted"`
	ConversationsDeleted int64     `json:"conversations_deleted"`
	InstallationsDeleted int64     `json:"installations_deleted"`
	PartitionsDropped    int64     `json:"partitions_dropped"`
}

func (d *db) retentionRuns(ctx context.Context, limit int) ([]RetentionRun, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT run_at, cutoff, events_deleted, conversations_deleted,
		installations_deleted, partitions_dropped FROM retention_run ORDER BY run_at DESC, rowid DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("querying retention runs: %w", err)
	}
	defer rows.Close()
	out := []RetentionRun{}
	for rows.Next() {
		var r RetentionRun
		var at, cut int64
		if err := rows.Scan(&at, &cut, &r.EventsDeleted, &r.ConversationsDeleted, &r.InstallationsDeleted,
			&r.PartitionsDropped); err != nil {
			return nil, fmt.Errorf("reading retention runs: %w", err)
		}
		r.RunAt, r.Cutoff = time.Unix(0, at).UTC(), time.Unix(0, cut).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// retentionRuns is GET /v1/retention: the job's own record (operations.md
// §5.4: its counts are logged and kept).
func (s *Server) retentionRuns(w http.ResponseWriter, r *http.Request) {
	runs, err := s.db.retentionRuns(r.Context(), 100)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": runs})
}

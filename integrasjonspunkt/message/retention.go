package message

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/events"
)

// Retention is the policy of the daily retention job (operations.md §3.2).
// A zero duration keeps that kind of data for ever.
type Retention struct {
	// History is how long a finished conversation and its statuses stay
	// after their last status (efm.retention.history).
	History time.Duration
	// IncomingUnfetched is how long an incoming message waits for its
	// client system before it leaves the queue with LEVETID_UTLOPT and its
	// package is deleted (efm.retention.incoming-unfetched).
	IncomingUnfetched time.Duration
	// Events is how long central-log events wait in the outbox when no
	// shipper will send them (no central log configured).
	Events time.Duration
	// Batch is the most rows one write deletes; default 500.
	Batch int
	// FileGrace is how old a payload file no record refers to must be
	// before it is removed; default 24 h, far beyond any upload in progress.
	FileGrace time.Duration
}

// Pruned counts what one retention run deleted.
type Pruned struct {
	Conversations, Statuses int // finished history
	Incoming                int // incoming messages never fetched
	Payloads                int // outgoing payloads kept by efm.retention.outgoing-payload, or whose conversation the client deleted
	Files                   int // payload files left over from a crash
	Events                  int // outbox events no shipper will send, status replies never carried, rejected events
}

// Prune runs the retention policy once, in batches: each batch is one short
// write, so accepting and delivering go on beside it. It returns what it
// deleted, and every kind's error.
func (s *Service) Prune(ctx context.Context, r Retention) (Pruned, error) {
	if r.Batch <= 0 {
		r.Batch = 500
	}
	if r.FileGrace <= 0 {
		r.FileGrace = 24 * time.Hour
	}
	now := s.cfg.Now()
	var p Pruned
	before := func(d time.Duration) time.Time {
		if d <= 0 {
			return time.Time{}
		}
		return now.Add(-d)
	}
	// batches calls fn until it deletes less than a full batch.
	batches := func(fn func() (int, error)) error {
		for ctx.Err() == nil {
			n, err := fn()
			if err != nil || n < r.Batch {
				return err
			}
		}
		return ctx.Err()
	}
	// Each kind goes on when another fails: one bad row must not keep
	// the rest of the store growing.
	var errs []error
	if cut := before(r.IncomingUnfetched); !cut.IsZero() {
		desc := fmt.Sprintf("Not fetched within %s (efm.retention.incoming-unfetched); the package is deleted", r.IncomingUnfetched)
		err := batches(func() (int, error) {
			ids, err := s.st.UnfetchedIncoming(ctx, cut, now, r.Batch)
			for _, id := range ids {
				if err == nil {
					err = s.dropIncoming(ctx, id, Change{Status: "LEVETID_UTLOPT", Description: desc, Reason: events.ReasonTTLExpired})
				}
				if err == nil {
					p.Incoming++
				}
			}
			return len(ids), err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("dropping unfetched incoming messages: %w", err))
		}
	}
	for _, prune := range []func(context.Context, time.Time, int) (int, []string, error){s.st.PruneKeptPayloads, s.st.PruneOrphanOutgoing} {
		errs = append(errs, batches(func() (int, error) {
			n, files, err := prune(ctx, now, r.Batch)
			if err == nil {
				p.Payloads += n
				err = s.cfg.Payloads.Remove(files...)
			}
			return n, err
		}))
	}
	if cut := before(r.History); !cut.IsZero() {
		errs = append(errs, batches(func() (int, error) {
			n, sts, err := s.st.PruneHistory(ctx, cut, r.Batch)
			p.Conversations += n
			p.Statuses += sts
			return n, err
		}))
	}
	for _, t := range []struct {
		table string
		cut   time.Time
	}{{"status_reply", before(r.History)}, {"event_rejected", before(r.History)}, {"event_outbox", before(r.Events)}} {
		errs = append(errs, batches(func() (int, error) {
			n, err := s.st.PruneRows(ctx, t.table, t.cut, r.Batch)
			p.Events += n
			return n, err
		}))
	}
	n, err := s.pruneFiles(ctx, now.Add(-r.FileGrace))
	p.Files += n
	return p, errors.Join(append(errs, err)...)
}

// pruneFiles removes payload files older than before that no record refers
// to. The files are listed before the records are read, so a file whose
// record commits in between is seen in use.
func (s *Service) pruneFiles(ctx context.Context, before time.Time) (int, error) {
	files, err := s.cfg.Payloads.Files(before)
	if err != nil || len(files) == 0 {
		return 0, err
	}
	inUse, err := s.st.PayloadFilesInUse(ctx)
	if err != nil {
		return 0, err
	}
	var gone []string
	for _, f := range files {
		if !inUse[f] {
			gone = append(gone, f)
		}
	}
	if err := s.cfg.Payloads.Remove(gone...); err != nil {
		return 0, fmt.Errorf("removing payload files no record refers to: %w", err)
	}
	return len(gone), nil
}

package update

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// unhealthyInARow is how many failed polls after the first UP end a
// probation: one lost poll on a busy machine is not a broken version.
const unhealthyInARow = 3

// watchProbation polls health until the new version has been up for
// ProbationStable (commit) or fails: not up within Probation, or down for
// unhealthyInARow polls after it was up (rollback, then ErrRestart). It
// returns nil after a commit or when ctx ends.
func (u *Updater) watchProbation(ctx context.Context) error {
	if u.cfg.Health == nil {
		u.log.WarnContext(ctx, "no health probe configured; committing the update without probation")
		return u.commit(ctx)
	}
	deadline := u.probationStart.Add(u.cfg.Probation)
	var firstUp time.Time
	down := 0
	tick := time.NewTicker(u.cfg.PollInterval)
	defer tick.Stop()
	for {
		up, err := u.cfg.Health(ctx)
		if faultUnhealthy {
			up, err = false, errors.New("fault-injection build: never healthy")
		}
		now := u.cfg.Now()
		switch {
		case ctx.Err() != nil:
			// Stopped during probation: the next start continues it and counts
			// another attempt.
			return nil
		case up:
			down = 0
			if firstUp.IsZero() {
				firstUp = now
				u.log.InfoContext(ctx, "new version is up; watching it stay up", logDur("after", now.Sub(u.probationStart)))
			}
			if now.Sub(firstUp) >= u.cfg.ProbationStable {
				return u.commit(ctx)
			}
		case firstUp.IsZero():
			if !now.Before(deadline) {
				return u.rollback(ctx, ReasonProbationTimeout, fmt.Sprintf("not healthy within %s: %v", u.cfg.Probation, errText(err)))
			}
		default:
			down++
			u.log.WarnContext(ctx, "new version not healthy during probation", slog.Int("in_a_row", down), slog.String("detail", errText(err)))
			if down >= unhealthyInARow {
				return u.rollback(ctx, ReasonUnhealthy, fmt.Sprintf("down %d polls in a row after being up: %v", down, errText(err)))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func errText(err error) string {
	if err == nil {
		return "reported DOWN"
	}
	return err.Error()
}

// commit ends a good probation (operations.md §4.4 step 11). The previous
// executable stays for a manual `update rollback`.
func (u *Updater) commit(ctx context.Context) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	s, err := readState(u.statePath)
	if err != nil {
		return err
	}
	if s.Phase != PhaseProbation {
		return nil
	}
	s.Phase, s.Attempts = PhaseCommitted, 0
	s.LastResult, s.LastReason, s.LastError = ResultCommitted, "", ""
	if err := writeState(u.statePath, s); err != nil {
		return err
	}
	u.probation = false
	u.log.InfoContext(ctx, "update committed", slog.String("from", s.From), slog.String("to", s.To))
	u.emit(ctx, Event{Type: EventCommitted, At: u.cfg.Now(), From: s.From, To: s.To})
	return nil
}

// rollback ends a failed probation. It returns ErrRestart after the swap,
// and nil when the swap could not be done: the daemon keeps running.
func (u *Updater) rollback(ctx context.Context, reason, detail string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	s, err := readState(u.statePath)
	if err != nil {
		return err
	}
	if err := u.rollbackLocked(ctx, s, reason, detail); !errors.Is(err, ErrRestart) {
		return nil // logged, recorded and notified by rollbackLocked
	}
	return ErrRestart
}

// rollbackLocked swaps the previous executable back (operations.md §4.4
// step 12), blocks the failed version, and returns ErrRestart. If the swap
// fails it returns the error and the process keeps running.
func (u *Updater) rollbackLocked(ctx context.Context, s State, reason, detail string) error {
	failedVersion, back := s.To, s.From
	prev := previousPath(u.exe)
	cantRollBack := func(err error) error {
		// Keep running the new version: exiting would only restart it, and a
		// process that runs beats a crash loop. The state leaves probation so
		// the next start does not count attempts again.
		u.log.ErrorContext(ctx, "cannot roll back; the new version keeps running and an operator must act",
			slog.String("failed", failedVersion), slog.String("back_to", back), slog.String("reason", reason), slog.Any("error", err))
		if operatorAsked := reason == ReasonOperator; !operatorAsked {
			s.Phase, s.Reason, s.Attempts = PhaseRollbackFailed, reason, 0
			s.LastResult, s.LastReason, s.LastError = ResultFailed, ReasonOf(err), err.Error()
			_ = writeState(u.statePath, s)
			u.probation = false
		}
		u.emit(ctx, Event{Type: EventFailed, At: u.cfg.Now(), From: back, To: failedVersion, Reason: ReasonOf(err), Detail: err.Error()})
		return err
	}
	if _, err := os.Stat(prev); err != nil {
		return cantRollBack(fmt.Errorf("%w: %s: %w", ErrNoPrevious, prev, err))
	}
	sha := s.PreviousSHA256
	if sha == "" {
		var err error
		if sha, err = fileSHA256(prev); err != nil {
			return cantRollBack(fmt.Errorf("%w: %w", ErrSwap, err))
		}
	}
	sig := filepath.Join(u.dir, "previous.minisig")
	if _, err := os.Stat(sig); err != nil {
		sig = "" // installed by hand or by a package: only its checksum is known
	}
	if err := u.swapIn(prev, sig, sha, failedPath(u.exe)); err != nil {
		return cantRollBack(err)
	}
	_ = os.Remove(prev) // it is the running executable now
	cur, prevSig := filepath.Join(u.dir, "current.minisig"), filepath.Join(u.dir, "previous.minisig")
	_ = os.Remove(cur)
	_ = os.Rename(prevSig, cur)

	if failedVersion != "" && reason != ReasonOperator {
		s.block(failedVersion, reason, u.cfg.Now())
	}
	var tail string
	if u.cfg.LogTail != nil {
		tail = u.cfg.LogTail()
	}
	s.Phase, s.Reason, s.LogTail, s.Attempts = PhaseRolledBack, reason, tail, 0
	s.LastResult, s.LastReason, s.LastError = ResultRolledBack, reason, detail
	if err := writeState(u.statePath, s); err != nil {
		return err
	}
	u.probation = false
	u.log.ErrorContext(ctx, "update rolled back", slog.String("failed", failedVersion), slog.String("back_to", back),
		slog.String("reason", reason), slog.String("detail", detail))
	u.emit(ctx, Event{Type: EventRolledBack, At: u.cfg.Now(), From: back, To: failedVersion, Reason: reason, Detail: detail})
	return ErrRestart
}

// Rollback is `update rollback`: put the previous executable back by hand,
// whatever the phase. It returns ErrRestart after the swap.
func (u *Updater) Rollback(ctx context.Context) error {
	unlock, err := u.lock()
	if err != nil {
		return err
	}
	defer unlock()
	u.mu.Lock()
	defer u.mu.Unlock()
	s, err := readState(u.statePath)
	if err != nil {
		return err
	}
	if s.Phase == PhaseRolledBack {
		return fmt.Errorf("%w: already rolled back from %s to %s", ErrNoPrevious, s.To, s.From)
	}
	if s.To == "" {
		s.To = u.cfg.CurrentVersion
	}
	err = u.rollbackLocked(ctx, s, ReasonOperator, "rolled back by the operator")
	u.flushMail(10 * time.Second)
	return err
}

// StoreRestored records, after a rollback, that the version rolled back to
// had to put the pre-update store snapshot back (operations.md §4.4 rule
// M3): detail says what the snapshot lacks. It goes into the state, which
// `update status` and health show, and to the mail recipients; the central
// log already has the rollback itself.
func (u *Updater) StoreRestored(ctx context.Context, detail string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	s, err := readState(u.statePath)
	if err != nil {
		return err
	}
	if s.LastError != "" {
		s.LastError += "; "
	}
	s.LastError += detail
	if err := writeState(u.statePath, s); err != nil {
		return err
	}
	u.mail(ctx, Event{Type: EventRolledBack, At: u.cfg.Now(), From: s.From, To: s.To, Reason: s.Reason, Detail: detail})
	return nil
}

// Status is what `update status` prints and the status page shows.
type Status struct {
	Current      string    `json:"current"`
	Mode         string    `json:"mode"`
	Channel      string    `json:"channel"`
	Pin          string    `json:"pin,omitempty"`
	Executable   string    `json:"executable"`
	PreviousKept bool      `json:"previous_kept"`
	NextWindow   time.Time `json:"next_window,omitzero"`
	Health       Component `json:"health"`
	State        State     `json:"state"`
}

// Status reads the state without changing it.
func (u *Updater) Status() (Status, error) {
	s, err := readState(u.statePath)
	if err != nil {
		return Status{}, err
	}
	_, perr := os.Stat(previousPath(u.exe))
	st := Status{
		Current: u.cfg.CurrentVersion, Mode: u.cfg.Mode, Channel: u.cfg.Channel, Pin: u.cfg.Pin,
		Executable: u.exe, PreviousKept: perr == nil, Health: u.HealthComponent(), State: s,
	}
	if u.cfg.Mode == ModeAuto {
		st.NextWindow = u.windows.Next(u.cfg.Now())
	}
	return st, nil
}

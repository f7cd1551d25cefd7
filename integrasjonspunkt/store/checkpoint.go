package store

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"time"

	"github.com/efm-go/efm/internal/logattr"
)

// checkpointEvery is how often the WAL is copied into the database file.
// Between checkpoints the WAL grows by what was committed meanwhile: at a
// few thousand messages a second, some tens of MB.
const checkpointEvery = 250 * time.Millisecond

// startCheckpointer moves SQLite's WAL checkpoints off the writer. By
// default the connection whose commit crosses 1000 WAL pages copies them
// into the database file and fsyncs it, inside that commit: every caller
// of the group commit waits on the disk meanwhile, and accepting stalls
// with the CPU idle. Here the writer never checkpoints; a connection of its
// own does, in the background (PASSIVE: it takes no lock that a reader or
// the writer waits for). Durability is unchanged: a commit is in the WAL,
// written before Update returns, either way; the checkpoint only moves it.
//
// A PASSIVE checkpoint never resets the WAL while commits keep coming:
// by the time it has copied what was there, more has been appended, and
// SQLite starts the log over only when a writer finds it all copied. So a
// sustained burst grew the WAL by all it wrote (460 MB in a six-second
// accept run, without end in a longer one). Past walRestartFrames the
// writer itself, between two group commits, runs a RESTART checkpoint: it
// copies the little written since the last PASSIVE one, waits briefly for
// readers to leave the log, and the next commit writes from its start.
// That pause, a copy and an fsync of the database file, is paid once per
// walRestartFrames of log.
//
// Should the writer's connection ever be replaced, the new one checkpoints
// by itself again, as SQLite does by default: slower, never wrong.
func (s *Store) startCheckpointer(ctx context.Context, dsn string, cfg Config) error {
	if _, err := s.w.ExecContext(ctx, `PRAGMA wal_autocheckpoint = 0`); err != nil {
		return fmt.Errorf("configuring the wal: %w", err)
	}
	// After a burst the WAL file would otherwise keep its peak size.
	if _, err := s.w.ExecContext(ctx, `PRAGMA journal_size_limit = 67108864`); err != nil {
		return fmt.Errorf("configuring the wal: %w", err)
	}
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return fmt.Errorf("opening the checkpointer: %w", err)
	}
	db.SetMaxOpenConns(1)
	s.ckpt, s.ckptStop, s.ckptDone = db, make(chan struct{}), make(chan struct{})
	s.walRestartAt, s.ckptEvery = cmp.Or(cfg.walRestartAt, walRestartFrames), cmp.Or(cfg.ckptEvery, checkpointEvery)
	go s.checkpointer()
	return nil
}

func (s *Store) checkpointer() {
	defer close(s.ckptDone)
	t := time.NewTicker(s.ckptEvery)
	defer t.Stop()
	for {
		select {
		case <-s.ckptStop:
			return
		case <-t.C:
		}
		if s.walFull.Load() {
			continue // the writer's RESTART is due; a copy here would keep it waiting
		}
		var busy, frames, done int
		if err := s.ckpt.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &done); err != nil {
			s.log.Warn("checkpointing wal", logattr.Err(err))
			continue
		}
		if frames > s.walRestartAt {
			s.walFull.Store(true)
		}
	}
}

// walRestartFrames is the WAL's length, in pages, past which the writer
// restarts it: journal_size_limit's 64 MiB at the default 4 KiB page.
const walRestartFrames = 16384

// walRestartWait bounds how long the writer waits for readers to leave
// the WAL. A reader in a long query keeps the log growing a while longer;
// it must not stall every send behind it.
const walRestartWait = 100 * time.Millisecond

// restartWAL runs on the writer's connection between two transactions.
func (s *Store) restartWAL() {
	if !s.walFull.Swap(false) {
		return
	}
	ctx := context.Background()
	conn, err := s.w.Conn(ctx)
	if err != nil {
		s.log.Warn("restarting wal", logattr.Err(err))
		return
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, walRestartWait.Milliseconds())); err != nil {
		s.log.Warn("restarting wal", logattr.Err(err))
		return
	}
	var busy, frames, done int
	if err := conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(RESTART)`).Scan(&busy, &frames, &done); err != nil {
		s.log.Warn("restarting wal", logattr.Err(err))
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA busy_timeout = 5000`); err != nil {
		// A writer that gives up on a lock after 100 ms would fail sends.
		s.log.Error("restoring the store's busy timeout", logattr.Err(err))
		conn.Raw(func(any) error { return driver.ErrBadConn })
	}
}

func (s *Store) stopCheckpointer() {
	if s.ckpt == nil {
		return
	}
	close(s.ckptStop)
	<-s.ckptDone
	s.ckpt.Close()
}

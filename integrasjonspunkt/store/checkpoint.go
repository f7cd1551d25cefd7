package store

import (
	"context"
	"database/sql"
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
// Should the writer's connection ever be replaced, the new one checkpoints
// by itself again, as SQLite does by default: slower, never wrong.
func (s *Store) startCheckpointer(ctx context.Context, dsn string) error {
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
	go s.checkpointer()
	return nil
}

func (s *Store) checkpointer() {
	defer close(s.ckptDone)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-s.ckptStop:
			return
		case <-t.C:
		}
		var busy, frames, done int
		if err := s.ckpt.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &done); err != nil {
			s.log.Warn("checkpointing wal", logattr.Err(err))
		}
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

// Package store is the daemon's database, the one source of truth for a
// message's state (DESIGN.md). SQL lives only here.
//
// SQLite is the default: one writer connection serialises writes (SQLite
// allows one writer; queueing in Go beats SQLITE_BUSY retries); a small pool
// of read-only connections serves reads concurrently under WAL.
//
// PostgreSQL (Config.Postgres) serves several daemons of one organisation:
// the same SQL and migrations (postgres.go translates), a transaction per
// Update on a connection pool, and row locks where SQLite relied on its one
// writer.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/events"
	_ "github.com/mattn/go-sqlite3" // the database/sql driver "sqlite3"

	"github.com/efm-go/efm/internal/logattr"
)

//go:embed migrations/*.sql
var migrations embed.FS

// ErrSchemaTooNew is returned by Open when the database was migrated by a newer
// binary: running an older one on it could lose what it does not understand
// (operations.md §4.4 rule M1).
var ErrSchemaTooNew = errors.New("store schema is newer than this binary knows")

// Store is an open database. It is safe for concurrent use.
type Store struct {
	w   *sql.DB // the one writer
	r   *sql.DB // readers
	log *slog.Logger
	now func() time.Time
	pg  bool // on PostgreSQL; w and r are then the same pool

	// ClaimMessage's connections on PostgreSQL: each claim holds one, so
	// they have their own pool, opened on first claim.
	pgURL      string
	claimsOnce sync.Once
	claims     *sql.DB
	claimsErr  error

	counts *counts // kept list counts (count.go); nil on PostgreSQL
	terms  terms   // the coded columns' terms (terms.go)

	// The background checkpointer of SQLite's WAL (checkpoint.go).
	ckpt         *sql.DB
	ckptStop     chan struct{}
	ckptDone     chan struct{}
	walFull      atomic.Bool // the WAL is past walRestartAt pages: the writer restarts it
	walRestartAt int
	ckptEvery    time.Duration

	// The group commit of Update (records.go).
	batchOnce   sync.Once
	ops         chan *op
	closing     chan struct{}
	batcherDone chan struct{}
}

// Config says where the database lives.
type Config struct {
	Path   string       // file path; created if missing
	Logger *slog.Logger // must not be nil

	// Postgres, when set, names a PostgreSQL database (a postgres:// URL
	// with user and password) to use instead of the file at Path.
	Postgres string

	upTo int // tests: migrate only up to this version (0: all)

	// tests: the checkpointer's period and WAL length (0: the defaults)
	ckptEvery    time.Duration
	walRestartAt int
}

// Open opens (creating if needed) and migrates the database.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Postgres != "" {
		db, err := openPostgres(cfg.Postgres)
		if err != nil {
			return nil, err
		}
		s := &Store{w: db, r: db, pg: true, pgURL: cfg.Postgres, log: cfg.Logger.With(logattr.Component("store")), now: time.Now, closing: make(chan struct{})}
		if err := s.migrate(ctx, cfg.upTo); err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	}
	// _txlock=immediate takes the write lock at BEGIN, so a transaction never
	// fails half-way on an upgrade from reader to writer.
	q := url.Values{
		"_journal_mode": {"WAL"},
		"_busy_timeout": {"5000"},
		"_foreign_keys": {"on"},
		"_synchronous":  {"NORMAL"},
		"_txlock":       {"immediate"},
		// Statements prepared once per connection, kept across calls.
		"_stmt_cache_size": {"128"},
	}
	dsn := url.Values{}
	for k, v := range q {
		dsn[k] = v
	}
	w, err := sql.Open("sqlite3", "file:"+cfg.Path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	// A group commit runs each Update in a savepoint, and SQLite journals
	// the pages a savepoint changes in a sub-journal that spills to a new
	// temporary file past 64 KiB: with temp files in memory it never does,
	// and a batch costs no file creation and half the page writes.
	if _, err := w.ExecContext(ctx, `PRAGMA temp_store = MEMORY`); err != nil {
		w.Close()
		return nil, fmt.Errorf("configuring store: %w", err)
	}
	// The writer's page cache outlives its transactions (no other
	// connection writes), but SQLite's default of 2 MiB holds less than the
	// indexes an insert walks, keyed by random message ids: at a few
	// thousand messages in the store every insert read pages back from the
	// WAL or the file, 5 pread calls a message. 16 MiB, filled only as used.
	if _, err := w.ExecContext(ctx, `PRAGMA cache_size = -16384`); err != nil {
		w.Close()
		return nil, fmt.Errorf("configuring store: %w", err)
	}
	q.Set("mode", "ro")
	q.Del("_txlock")
	r, err := sql.Open("sqlite3", "file:"+cfg.Path+"?"+q.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("opening store for reading: %w", err)
	}
	r.SetMaxOpenConns(4)
	// All kept open: database/sql keeps 2 idle by default, and each
	// reopened connection reads the schema and prepares its statements anew.
	r.SetMaxIdleConns(4)
	s := &Store{w: w, r: r, log: cfg.Logger.With(logattr.Component("store")), now: time.Now, closing: make(chan struct{}), counts: newCounts()}
	if err := s.migrate(ctx, cfg.upTo); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.startCheckpointer(ctx, "file:"+cfg.Path+"?"+dsn.Encode(), cfg); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close checkpoints the WAL into the main file and closes the database, so a
// backup of store.db alone is complete after a clean stop.
func (s *Store) Close() error {
	close(s.closing)
	s.batchOnce.Do(func() {}) // no batcher may start after this
	if s.batcherDone != nil {
		<-s.batcherDone
	}
	s.stopCheckpointer()
	if s.pg {
		s.claimsOnce.Do(func() {})
		if s.claims != nil {
			s.claims.Close()
		}
		return s.w.Close()
	}
	if _, err := s.w.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		s.log.Warn("checkpointing wal", logattr.Err(err))
	}
	return errors.Join(s.r.Close(), s.w.Close())
}

type migration struct {
	version int
	name    string
	sql     string
	pgSQL   string // NNNN_name.pg.sql: what PostgreSQL runs instead, if there is one
	// fkOff: SQLite runs it with foreign keys off and legacy_alter_table
	// on (a table renamed, copied and dropped) and checks the foreign keys
	// before the commit.
	fkOff bool
}

const fkOffMarker = "-- migrate: foreign_keys off\n"

func knownMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".pg.sql") {
			continue
		}
		num, name, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", e.Name())
		}
		b, err := migrations.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		if len(ms) > 0 && ms[len(ms)-1].version != v-1 {
			return nil, fmt.Errorf("migration %s: versions must be consecutive", e.Name())
		}
		m := migration{version: v, name: strings.TrimSuffix(name, ".sql"), sql: string(b), fkOff: strings.HasPrefix(string(b), fkOffMarker)}
		if pg, err := migrations.ReadFile(path.Join("migrations", strings.TrimSuffix(e.Name(), ".sql")+".pg.sql")); err == nil {
			m.pgSQL = string(pg)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// SchemaVersion is the newest migration this binary knows.
func SchemaVersion() int {
	ms, err := knownMigrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

func (s *Store) migrate(ctx context.Context, upTo int) error {
	ms, err := knownMigrations()
	if err != nil {
		return fmt.Errorf("reading embedded migrations: %w", err)
	}
	if s.pg {
		// Daemons starting together migrate one after the other; the session
		// lock lives on one connection, released when it returns to the pool.
		conn, err := s.w.Conn(ctx)
		if err != nil {
			return fmt.Errorf("connecting to PostgreSQL: %w", err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(?)`, migrationLock); err != nil {
			return fmt.Errorf("waiting for the migration lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(?)`, migrationLock)
		for i := range ms {
			if ms[i].pgSQL != "" {
				ms[i].sql = ms[i].pgSQL
			}
			ms[i].sql, ms[i].fkOff = pgDDL(ms[i].sql), false
		}
	}
	if upTo > 0 {
		for len(ms) > 0 && ms[len(ms)-1].version > upTo {
			ms = ms[:len(ms)-1]
		}
	}
	if _, err := s.w.ExecContext(ctx, s.ddl(`CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT;`)); err != nil {
		return fmt.Errorf("creating schema_migrations: %w", err)
	}
	var have int
	if err := s.w.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("reading schema version: %w", err)
	}
	if want := SchemaVersion(); have > want {
		return fmt.Errorf("%w: database is at %d, this binary knows up to %d", ErrSchemaTooNew, have, want)
	}
	for _, m := range ms {
		if m.version <= have {
			continue
		}
		if err := s.migrateOne(ctx, m); err != nil {
			return fmt.Errorf("applying migration %04d_%s: %w", m.version, m.name, err)
		}
		s.log.Info("migration applied", slog.Int("version", m.version), slog.String("name", m.name))
	}
	if upTo > 0 && upTo < 6 {
		return nil // no terms before 0006
	}
	return s.loadTerms(ctx)
}

// migrateOne applies m in one transaction.
func (s *Store) migrateOne(ctx context.Context, m migration) error {
	if m.fkOff {
		// The writer is one connection (Open): the pragmas hold for the
		// transaction below, which cannot change foreign_keys itself. With
		// both, renaming a table leaves the references to it by name, and
		// dropping it cascades to nothing.
		if _, err := s.w.ExecContext(ctx, `PRAGMA foreign_keys = OFF; PRAGMA legacy_alter_table = ON`); err != nil {
			return err
		}
		defer s.w.ExecContext(context.WithoutCancel(ctx), `PRAGMA legacy_alter_table = OFF; PRAGMA foreign_keys = ON`)
	}
	return s.Write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return err
		}
		if m.fkOff {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_foreign_key_check`).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return fmt.Errorf("%d rows break a foreign key", n)
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.version, m.name, s.now().UnixMilli())
		return err
	})
}

// Postgres reports whether the store is on PostgreSQL.
func (s *Store) Postgres() bool { return s.pg }

// ddl is q as the backend spells it.
func (s *Store) ddl(q string) string {
	if s.pg {
		return pgDDL(q)
	}
	return q
}

// Write runs fn in one write transaction: committed when fn returns nil,
// rolled back otherwise.
func (s *Store) Write(ctx context.Context, fn func(*sql.Tx) error) error {
	// Any of these may delete: the kept counts go, before and after.
	s.counts.bump("")
	defer s.counts.bump("")
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning write: %w", err)
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}

// Check reports whether the store can still take a write: what health's
// store component shows.
func (s *Store) Check(ctx context.Context) error {
	return s.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO installation (key, value) VALUES ('health_check', '') ON CONFLICT (key) DO NOTHING`)
		return err
	})
}

// InstallationID returns the installation's random id, made on first call and
// kept: the central log names installations by it, never by hostname.
func (s *Store) InstallationID(ctx context.Context) (string, error) {
	// events.NewID, not a bare UUID: about one in 11 000 would look like a
	// person number to the central log's scan, which would then drop it.
	id := events.NewID()
	err := s.Write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO installation (key, value) VALUES ('installation_id', ?) ON CONFLICT (key) DO NOTHING`, id); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT value FROM installation WHERE key = 'installation_id'`).Scan(&id)
	})
	if err != nil {
		return "", fmt.Errorf("reading installation id: %w", err)
	}
	return id, nil
}

// UnfinishedOutgoing lists the message ids of outgoing messages that have not
// reached a final status, oldest first: what the daemon re-enqueues at start.
func (s *Store) UnfinishedOutgoing(ctx context.Context) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT message_id FROM conversation
		WHERE direction = 'OUTGOING' AND finished = 0 ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("listing unfinished messages: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(idText{&id}); err != nil {
			return nil, fmt.Errorf("listing unfinished messages: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// QueuedOutgoing lists, oldest first, up to limit unfinished outgoing
// messages the client has sent (state QUEUED) whose conversation id is
// above after and at most upTo, and the last conversation id read (0 when
// none): one page of the queue the start rebuilds. Merely created messages
// are left out: enqueueing one would make the queue's deduplication drop
// its real send later.
func (s *Store) QueuedOutgoing(ctx context.Context, after, upTo int64, limit int) ([]string, int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT c.id, c.message_id FROM conversation c
		JOIN outgoing_message o ON o.message_id = `+textSQL(s.pg, "c.message_id")+`
		WHERE c.direction = 'OUTGOING' AND c.finished = 0 AND c.id > ? AND c.id <= ? AND o.state = 'QUEUED'
		ORDER BY c.id LIMIT ?`, after, upTo, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("listing queued messages: %w", err)
	}
	defer rows.Close()
	var ids []string
	var last int64
	for rows.Next() {
		var id string
		if err := rows.Scan(&last, idText{&id}); err != nil {
			return nil, 0, fmt.Errorf("listing queued messages: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, last, rows.Err()
}

// LastConversationID is the highest conversation id so far (0 in an empty
// store).
func (s *Store) LastConversationID(ctx context.Context) (int64, error) {
	var id int64
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM conversation`).Scan(&id)
	return id, err
}

// Counts are the unfinished messages per direction: the health details the
// reference calls outgoing and incoming.
type Counts struct {
	Outgoing, Incoming int
}

// Unfinished counts unfinished messages per direction.
func (s *Store) Unfinished(ctx context.Context) (Counts, error) {
	var c Counts
	err := s.r.QueryRowContext(ctx, `SELECT
		COUNT(*) FILTER (WHERE direction = 'OUTGOING'),
		COUNT(*) FILTER (WHERE direction = 'INCOMING')
		FROM conversation WHERE finished = 0`).Scan(&c.Outgoing, &c.Incoming)
	if err != nil {
		return c, fmt.Errorf("counting unfinished messages: %w", err)
	}
	return c, nil
}

// UnfinishedByService counts unfinished outgoing messages per channel: the
// daily heartbeat's numbers for central operations.
func (s *Store) UnfinishedByService(ctx context.Context) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT service_identifier, COUNT(*) FROM conversation
		WHERE direction = 'OUTGOING' AND finished = 0 GROUP BY service_identifier`)
	if err != nil {
		return nil, fmt.Errorf("counting unfinished messages per service: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var svc string
		var n int
		if err := rows.Scan(&svc, &n); err != nil {
			return nil, fmt.Errorf("counting unfinished messages per service: %w", err)
		}
		out[svc] = n
	}
	return out, rows.Err()
}

package pakkesporing

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	_ "github.com/mattn/go-sqlite3" // the database/sql driver "sqlite3"

	"github.com/efm-go/efm/integrasjonspunkt/events"
)

// schema is the central database outside the monthly partitions. Times are
// unix nanoseconds in UTC so range queries compare integers.
const schema = `
CREATE TABLE IF NOT EXISTS event_ids (
	event_id TEXT PRIMARY KEY,
	month    TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS partitions (month TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS conversation (
	orgnr           TEXT NOT NULL,
	message_id      TEXT NOT NULL,
	conversation_id TEXT NOT NULL,
	direction       TEXT NOT NULL,
	service         TEXT NOT NULL,
	latest_status   TEXT NOT NULL,
	latest_at       INTEGER NOT NULL,
	handled_at      INTEGER,
	first_event_at  INTEGER NOT NULL,
	last_event_at   INTEGER NOT NULL,
	status_times    TEXT NOT NULL,
	alert_status    TEXT,
	alerted_at      INTEGER,
	PRIMARY KEY (orgnr, message_id)
);
CREATE INDEX IF NOT EXISTS conversation_conv ON conversation(conversation_id);
-- No index on handled_at or last_event_at: every status moves them, and
-- only the daily retention job reads them, where a scan costs seconds.
CREATE INDEX IF NOT EXISTS conversation_alert ON conversation(alerted_at) WHERE alert_status IS NOT NULL;
CREATE TABLE IF NOT EXISTS installation (
	installation_id TEXT PRIMARY KEY,
	orgnr           TEXT NOT NULL,
	version         TEXT NOT NULL,
	os              TEXT NOT NULL DEFAULT '',
	arch            TEXT NOT NULL DEFAULT '',
	channels        TEXT NOT NULL DEFAULT '',
	started_at      INTEGER,
	last_seen       INTEGER NOT NULL,
	cert_not_after  INTEGER
);
CREATE TABLE IF NOT EXISTS alert_sent (
	kind    TEXT NOT NULL,
	key     TEXT NOT NULL,
	sent_at INTEGER NOT NULL,
	PRIMARY KEY (kind, key)
);
CREATE TABLE IF NOT EXISTS retention_run (
	run_at                  INTEGER NOT NULL,
	cutoff                  INTEGER NOT NULL,
	events_deleted          INTEGER NOT NULL,
	conversations_deleted   INTEGER NOT NULL,
	installations_deleted   INTEGER NOT NULL,
	partitions_dropped      INTEGER NOT NULL
);`

// partitionDDL is one month of events. The body is the event exactly as
// received (after validation); the columns beside it are what queries filter on.
const partitionDDL = `
CREATE TABLE IF NOT EXISTS %[1]s (
	event_id           TEXT NOT NULL,
	type               TEXT NOT NULL,
	occurred_at        INTEGER NOT NULL,
	received_at        INTEGER NOT NULL,
	orgnr              TEXT NOT NULL,
	installation_id    TEXT NOT NULL,
	message_id         TEXT,
	conversation_id    TEXT,
	service            TEXT,
	status             TEXT,
	receiver_pseudonym TEXT,
	body               TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS %[1]s_msg ON %[1]s(message_id) WHERE message_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS %[1]s_conv ON %[1]s(conversation_id) WHERE conversation_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS %[1]s_org ON %[1]s(orgnr, occurred_at);
CREATE INDEX IF NOT EXISTS %[1]s_time ON %[1]s(occurred_at);`

// db is the central store: one writer, WAL, so the query API reads while
// ingest writes.
type db struct {
	w, r *sql.DB

	mu     sync.Mutex // guards months; held by the single writer path
	months map[string]bool
}

func openDB(ctx context.Context, path string) (*db, error) {
	dsn := "file:" + path + "?_journal_mode=WAL&_busy_timeout=10000&_synchronous=NORMAL&_txlock=immediate&_cache_size=-65536"
	w, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening central store: %w", err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("opening central store for reading: %w", err)
	}
	r.SetMaxOpenConns(4)
	d := &db{w: w, r: r, months: map[string]bool{}}
	// Checkpoint every 32 MB of WAL rather than 4 MB: hot index pages are
	// copied back once per checkpoint, not once per few batches.
	if _, err := w.ExecContext(ctx, `PRAGMA wal_autocheckpoint = 8192`); err != nil {
		d.close()
		return nil, fmt.Errorf("configuring central store: %w", err)
	}
	if _, err := w.ExecContext(ctx, schema); err != nil {
		d.close()
		return nil, fmt.Errorf("creating central store schema: %w", err)
	}
	ms, err := d.partitions(ctx)
	if err != nil {
		d.close()
		return nil, err
	}
	for _, m := range ms {
		d.months[m] = true
	}
	return d, nil
}

func (d *db) close() error {
	return errors.Join(d.r.Close(), d.w.Close())
}

func monthOf(t time.Time) string { return t.UTC().Format("200601") }

func partitionTable(month string) string { return "events_" + month }

// querier is a *sql.DB or *sql.Tx: with one writer connection, code inside a
// transaction must query through it or wait on itself.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// partitions lists the months that have a table, oldest first.
func (d *db) partitions(ctx context.Context) ([]string, error) { return listPartitions(ctx, d.w) }

func listPartitions(ctx context.Context, q querier) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT month FROM partitions ORDER BY month`)
	if err != nil {
		return nil, fmt.Errorf("listing partitions: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return nil, fmt.Errorf("listing partitions: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// readPartitions is partitions through the read pool, for queries.
func (d *db) readPartitions(ctx context.Context) ([]string, error) { return listPartitions(ctx, d.r) }

// statusTime is one entry of conversation.status_times.
type statusTime struct {
	Status events.Status `json:"status"`
	At     time.Time     `json:"at"`
}

// stored is one validated event ready for insert.
type stored struct {
	ev   events.Event
	body []byte
}

// insertBatch stores events in one transaction, skipping event ids already
// stored, and updates the projections. It returns how many were new.
func (d *db) insertBatch(ctx context.Context, batch []stored, receivedAt time.Time) (inserted int, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("beginning ingest transaction: %w", err)
	}
	defer tx.Rollback()

	dedup, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO event_ids(event_id, month) VALUES (?, ?)`)
	if err != nil {
		return 0, fmt.Errorf("preparing dedup insert: %w", err)
	}
	defer dedup.Close()
	inserts := map[string]*sql.Stmt{}
	defer func() {
		for _, s := range inserts {
			s.Close()
		}
	}()
	var created []string
	proj, err := newProjector(ctx, tx)
	if err != nil {
		return 0, err
	}
	defer proj.close()

	for _, s := range batch {
		h := s.ev.EventHeader()
		month := monthOf(h.OccurredAt)
		res, err := dedup.ExecContext(ctx, h.EventID, month)
		if err != nil {
			return 0, fmt.Errorf("recording event id: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue // already stored: at-least-once delivery from the daemon
		}
		ins := inserts[month]
		if ins == nil {
			if !d.months[month] {
				if _, err := tx.ExecContext(ctx, fmt.Sprintf(partitionDDL, partitionTable(month))); err != nil {
					return 0, fmt.Errorf("creating partition %s: %w", month, err)
				}
				if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO partitions(month) VALUES (?)`, month); err != nil {
					return 0, fmt.Errorf("registering partition %s: %w", month, err)
				}
				created = append(created, month)
			}
			ins, err = tx.PrepareContext(ctx, `INSERT INTO `+partitionTable(month)+`
				(event_id, type, occurred_at, received_at, orgnr, installation_id, message_id, conversation_id,
				 service, status, receiver_pseudonym, body) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`)
			if err != nil {
				return 0, fmt.Errorf("preparing partition insert: %w", err)
			}
			inserts[month] = ins
		}
		var msgID, convID, service, status, pseudo any
		if ms, ok := s.ev.(*events.MessageStatus); ok {
			msgID, convID, service, status = ms.MessageID, ms.ConversationID, string(ms.ServiceIdentifier), string(ms.Status)
			if ms.ReceiverPseudonym != "" {
				pseudo = ms.ReceiverPseudonym
			}
		}
		if _, err := ins.ExecContext(ctx, h.EventID, string(h.Type), h.OccurredAt.UnixNano(), receivedAt.UnixNano(),
			h.OrgNr, h.InstallationID, msgID, convID, service, status, pseudo, s.body); err != nil {
			return 0, fmt.Errorf("inserting event: %w", err)
		}
		if err := proj.apply(ctx, s.ev); err != nil {
			return 0, err
		}
		inserted++
	}
	if err := proj.flush(ctx); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("committing ingest transaction: %w", err)
	}
	for _, m := range created {
		d.months[m] = true
	}
	return inserted, nil
}

// projector keeps the conversation and installation projections inside the
// ingest transaction. Rows are read once per batch and written at flush, so a
// batch with many statuses for one message costs one read and one write.
type projector struct {
	tx         *sql.Tx
	convs      map[[2]string]*convRow
	insts      map[string]*instRow
	selectConv *sql.Stmt
	selectInst *sql.Stmt
}

type convRow struct {
	exists                           bool
	orgnr, messageID, conversationID string
	direction, service, latestStatus string
	latestAt, firstAt, lastAt        int64
	handledAt                        sql.NullInt64
	times                            []statusTime
	alertStatus                      sql.NullString
}

type instRow struct {
	id, orgnr, version, os, arch, channels string
	startedAt, certNotAfter                sql.NullInt64
	lastSeen                               int64
}

const (
	selectConvSQL = `SELECT conversation_id, direction, service, latest_status, latest_at,
		handled_at, first_event_at, last_event_at, status_times, alert_status
		FROM conversation WHERE orgnr = ? AND message_id = ?`
	selectInstSQL = `SELECT orgnr, version, os, arch, channels, started_at, last_seen, cert_not_after
		FROM installation WHERE installation_id = ?`
	upsertConvSQL = `INSERT INTO conversation(orgnr, message_id, conversation_id, direction,
		service, latest_status, latest_at, handled_at, first_event_at, last_event_at, status_times, alert_status)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(orgnr, message_id) DO UPDATE SET latest_status=excluded.latest_status,
		latest_at=excluded.latest_at, handled_at=excluded.handled_at, first_event_at=excluded.first_event_at,
		last_event_at=excluded.last_event_at, status_times=excluded.status_times, alert_status=excluded.alert_status`
	upsertInstSQL = `INSERT INTO installation(installation_id, orgnr, version, os, arch,
		channels, started_at, last_seen, cert_not_after) VALUES (?,?,?,?,?,?,?,?,?)
		ON CONFLICT(installation_id) DO UPDATE SET orgnr=excluded.orgnr, version=excluded.version,
		os=excluded.os, arch=excluded.arch, channels=excluded.channels, started_at=excluded.started_at,
		last_seen=excluded.last_seen, cert_not_after=excluded.cert_not_after`
)

func newProjector(ctx context.Context, tx *sql.Tx) (*projector, error) {
	p := &projector{tx: tx, convs: map[[2]string]*convRow{}, insts: map[string]*instRow{}}
	var err error
	if p.selectConv, err = tx.PrepareContext(ctx, selectConvSQL); err != nil {
		return nil, fmt.Errorf("preparing projection: %w", err)
	}
	if p.selectInst, err = tx.PrepareContext(ctx, selectInstSQL); err != nil {
		p.selectConv.Close()
		return nil, fmt.Errorf("preparing projection: %w", err)
	}
	return p, nil
}

func (p *projector) close() {
	p.selectConv.Close()
	p.selectInst.Close()
}

func (p *projector) apply(ctx context.Context, e events.Event) error {
	if err := p.applyInstallation(ctx, e); err != nil {
		return err
	}
	ms, ok := e.(*events.MessageStatus)
	if !ok {
		return nil
	}
	key := [2]string{ms.OrgNr, ms.MessageID}
	c := p.convs[key]
	if c == nil {
		c = &convRow{orgnr: ms.OrgNr, messageID: ms.MessageID}
		var times string
		err := p.selectConv.QueryRowContext(ctx, ms.OrgNr, ms.MessageID).Scan(
			&c.conversationID, &c.direction, &c.service, &c.latestStatus, &c.latestAt,
			&c.handledAt, &c.firstAt, &c.lastAt, &times, &c.alertStatus)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("reading conversation projection: %w", err)
		default:
			c.exists = true
			if err := json.Unmarshal([]byte(times), &c.times); err != nil {
				return fmt.Errorf("reading conversation status times: %w", err)
			}
		}
		p.convs[key] = c
	}
	at := ms.OccurredAt.UnixNano()
	if c.conversationID == "" {
		c.conversationID, c.direction, c.service = ms.ConversationID, string(ms.Direction), string(ms.ServiceIdentifier)
		c.firstAt, c.lastAt = at, at
	}
	c.firstAt, c.lastAt = min(c.firstAt, at), max(c.lastAt, at)
	if at >= c.latestAt {
		c.latestAt, c.latestStatus = at, string(ms.Status)
	}
	c.times = append(c.times, statusTime{Status: ms.Status, At: ms.OccurredAt})
	sort.SliceStable(c.times, func(i, j int) bool { return c.times[i].At.Before(c.times[j].At) })
	// handled_at is the last final status; a LEST after it moves it (operations.md §5.4).
	if ms.Status.Final() || ms.Status == events.Lest && c.handledAt.Valid && at > c.handledAt.Int64 {
		if !c.handledAt.Valid || at > c.handledAt.Int64 {
			c.handledAt = sql.NullInt64{Int64: at, Valid: true}
		}
	}
	if ms.Direction == events.Outgoing && (ms.Status == events.Feil || ms.Status == events.LevetidUtlopt) && !c.alertStatus.Valid {
		c.alertStatus = sql.NullString{String: string(ms.Status), Valid: true}
	}
	return nil
}

func (p *projector) applyInstallation(ctx context.Context, e events.Event) error {
	h := e.EventHeader()
	in := p.insts[h.InstallationID]
	if in == nil {
		in = &instRow{id: h.InstallationID}
		err := p.selectInst.QueryRowContext(ctx, h.InstallationID).Scan(
			&in.orgnr, &in.version, &in.os, &in.arch, &in.channels, &in.startedAt, &in.lastSeen, &in.certNotAfter)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("reading installation projection: %w", err)
		}
		p.insts[h.InstallationID] = in
	}
	at := h.OccurredAt.UnixNano()
	if at >= in.lastSeen {
		in.lastSeen, in.version, in.orgnr = at, h.IPVersion, h.OrgNr
	}
	switch ev := e.(type) {
	case *events.InstallationStarted:
		if !in.startedAt.Valid || at >= in.startedAt.Int64 {
			in.startedAt = sql.NullInt64{Int64: at, Valid: true}
			in.os, in.arch = ev.OS, ev.Arch
			ch := make([]string, len(ev.Channels))
			for i, c := range ev.Channels {
				ch[i] = string(c)
			}
			in.channels = strings.Join(ch, ",")
		}
	case *events.InstallationHeartbeat:
		if !ev.CertificateNotAfter.IsZero() {
			in.certNotAfter = sql.NullInt64{Int64: ev.CertificateNotAfter.UnixNano(), Valid: true}
		}
	}
	return nil
}

func (p *projector) flush(ctx context.Context) error {
	if len(p.convs) > 0 {
		up, err := p.tx.PrepareContext(ctx, upsertConvSQL)
		if err != nil {
			return fmt.Errorf("preparing conversation projection: %w", err)
		}
		defer up.Close()
		for _, c := range p.convs {
			times, err := json.Marshal(c.times)
			if err != nil {
				return fmt.Errorf("encoding status times: %w", err)
			}
			if _, err := up.ExecContext(ctx, c.orgnr, c.messageID, c.conversationID, c.direction, c.service,
				c.latestStatus, c.latestAt, c.handledAt, c.firstAt, c.lastAt, string(times), c.alertStatus); err != nil {
				return fmt.Errorf("writing conversation projection: %w", err)
			}
		}
	}
	for _, in := range p.insts {
		if _, err := p.tx.ExecContext(ctx, upsertInstSQL, in.id, in.orgnr, in.version, in.os, in.arch, in.channels,
			in.startedAt, in.lastSeen, in.certNotAfter); err != nil {
			return fmt.Errorf("writing installation projection: %w", err)
		}
	}
	return nil
}

// StoredEvent is an event as the query API returns it: the event as sent,
// plus when central received it.
type StoredEvent struct {
	ReceivedAt time.Time       `json:"received_at"`
	Event      json.RawMessage `json:"event"`

	occurredAt int64
	eventID    string
}

// eventFilter selects events across partitions.
type eventFilter struct {
	where string // SQL condition on the partition's columns, with ? args
	args  []any
	from  time.Time // zero: from the first partition
	to    time.Time // zero: to the last
	after [2]any    // cursor (occurred_at, event_id); nil when none
	limit int
}

// queryEvents reads matching events ordered by (occurred_at, event_id) from
// the partitions that overlap [from, to].
func (d *db) queryEvents(ctx context.Context, f eventFilter) ([]StoredEvent, error) {
	months, err := d.readPartitions(ctx)
	if err != nil {
		return nil, err
	}
	var out []StoredEvent
	for _, m := range months {
		if !f.from.IsZero() && m < monthOf(f.from) || !f.to.IsZero() && m > monthOf(f.to) {
			continue
		}
		q := `SELECT occurred_at, event_id, received_at, body FROM ` + partitionTable(m) + ` WHERE ` + f.where
		args := slices.Clone(f.args)
		if !f.from.IsZero() {
			q += ` AND occurred_at >= ?`
			args = append(args, f.from.UnixNano())
		}
		if !f.to.IsZero() {
			q += ` AND occurred_at < ?`
			args = append(args, f.to.UnixNano())
		}
		if f.after[0] != nil {
			q += ` AND (occurred_at > ? OR occurred_at = ? AND event_id > ?)`
			args = append(args, f.after[0], f.after[0], f.after[1])
		}
		q += ` ORDER BY occurred_at, event_id`
		if f.limit > 0 {
			q += fmt.Sprintf(` LIMIT %d`, f.limit-len(out))
		}
		rows, err := d.r.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("querying events: %w", err)
		}
		for rows.Next() {
			var e StoredEvent
			var recv int64
			var body string
			if err := rows.Scan(&e.occurredAt, &e.eventID, &recv, &body); err != nil {
				rows.Close()
				return nil, fmt.Errorf("reading events: %w", err)
			}
			e.ReceivedAt = time.Unix(0, recv).UTC()
			e.Event = json.RawMessage(body)
			out = append(out, e)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("reading events: %w", err)
		}
		if f.limit > 0 && len(out) >= f.limit {
			break
		}
	}
	if f.limit <= 0 {
		// Unpaged lookups (one message, one conversation) span partitions;
		// months are ordered, but equal times across months are not.
		sort.SliceStable(out, func(i, j int) bool {
			if out[i].occurredAt != out[j].occurredAt {
				return out[i].occurredAt < out[j].occurredAt
			}
			return out[i].eventID < out[j].eventID
		})
	}
	return out, nil
}

// Package storegen fills a store with many messages quickly, for benchmarks
// that need a store as it looks after months of traffic: start-up, status
// and conversation queries, retention.
//
// The rows are those the one-step send (E5) of a small DPO message and its
// delivery leave behind (message/outgoing.go persist, message/service.go
// record): a conversation, its status history, the central-log outbox rows,
// and while unsent the outgoing_message row with its SBD and one attachment.
// They are written through the store's own schema (store.Write), many
// messages per multi-row INSERT and many INSERTs per transaction, so a
// million messages take seconds, not the hours the API would.
package storegen

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/integrasjonspunkt/store"
)

// State is where every generated message stands.
type State int

const (
	// Delivered messages have reached LEVERT (final): OPPRETTET, SENDT,
	// MOTTATT, LEVERT; their outgoing row and attachment are gone, as the
	// SENDT status removes them.
	Delivered State = iota
	// Queued messages were accepted and are waiting for their channel:
	// OPPRETTET, the outgoing row in state QUEUED and its attachment.
	Queued
)

func (s State) String() string {
	if s == Queued {
		return "queued"
	}
	return "delivered"
}

// Options shape the generated messages. The zero value (but N) gives
// delivered DPO messages to 100 receivers, one a second, starting at
// 2024-01-01.
type Options struct {
	N     int   // messages to generate
	State State // where they stand

	// Start is the first message's creation time; Step the time between
	// two messages. A delivered message's later statuses follow its
	// OPPRETTET at 1, 2 and 3 seconds. Every message expires a day after
	// its creation: for queued messages a daemon is to keep, make them
	// within the last day.
	Start time.Time
	Step  time.Duration

	// Receivers is the number of distinct receiver organisations, used
	// round-robin (default 100): what receiverIdentifier= filters on.
	Receivers int

	// Events keeps the central-log outbox rows the statuses wrote. Default
	// for Queued; for Delivered the shipper would have sent and deleted
	// them, so they are kept only when asked.
	Events *bool

	// Attachment is the sealed content of each queued message's one
	// attachment, as payload.Writer.Inline returns it, kept in the row.
	// Nil: the row names a payload file instead, which is not created (a
	// million files would take longer than the rows); what reads the
	// content fails, what reads the store does not. AttachmentSize is the
	// plaintext size recorded (default 10 KiB).
	Attachment     []byte
	AttachmentSize int64

	// Builder makes the outbox rows' bodies (nil: one with a fresh key).
	Builder *events.Builder

	// Sender is the sending organisation (default 910077473, the
	// sandbox's own).
	Sender string

	// Batch is the number of messages per transaction (default 20 000).
	Batch int
}

// Result says what was generated.
type Result struct {
	First, Last time.Time // creation times of the first and last message
	MessageIDs  []string  // only when N ≤ 10 000, for spot checks
	Receivers   []string  // the receivers' organisation numbers
}

// MessageID is the message id of the i-th generated message (0-based) of a
// run with the given seed prefix: deterministic, so benchmarks can ask for
// a known message, and shaped as a UUID as the daemon makes them.
func MessageID(prefix uint32, i int) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", prefix, i)
}

const (
	process  = "urn:no:difi:profile:avtalt:avtalt:ver1.0"
	docStd   = "urn:no:difi:avtalt:xsd::avtalt"
	service  = "DPO"
	client   = "efm-storegen/1"
	maxPerIn = 400 // messages per multi-row INSERT (SQLite allows 32 766 variables)
)

// receivers are valid organisation numbers (mod-11) for the generated
// messages, made once.
func receivers(n int) []string {
	out := make([]string, 0, n)
	w := []int{3, 2, 7, 6, 5, 4, 3, 2}
	for base := 91_000_000; len(out) < n; base++ {
		d := fmt.Sprintf("%08d", base)
		sum := 0
		for i := range 8 {
			sum += int(d[i]-'0') * w[i]
		}
		c := 11 - sum%11
		if c == 11 {
			c = 0
		}
		if c == 10 {
			continue
		}
		out = append(out, d+fmt.Sprint(c))
	}
	return out
}

// Generate adds o.N messages to s and returns when they are committed.
func Generate(ctx context.Context, s *store.Store, o Options) (*Result, error) {
	if o.N <= 0 {
		return &Result{}, nil
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if o.Step == 0 {
		o.Step = time.Second
	}
	if o.Receivers <= 0 {
		o.Receivers = 100
	}
	if o.Sender == "" {
		o.Sender = "910077473"
	}
	if o.Batch <= 0 {
		o.Batch = 20_000
	}
	if o.AttachmentSize <= 0 {
		o.AttachmentSize = 10 << 10
	}
	keepEvents := o.State == Queued
	if o.Events != nil {
		keepEvents = *o.Events
	}
	g := &gen{o: o, recv: receivers(o.Receivers), prefix: uuid.New().ID(), keepEvents: keepEvents, id: s.IDValue}
	if keepEvents {
		b := o.Builder
		if b == nil {
			k, err := events.NewPseudonymKey(make([]byte, 32))
			if err != nil {
				return nil, err
			}
			if b, err = events.NewBuilder(events.BuilderConfig{InstallationID: events.NewID(), OrgNr: o.Sender, Version: "storegen", Key: k}); err != nil {
				return nil, err
			}
		}
		g.builder = b
	}
	// The generated ids continue after the store's own, so a store that
	// already holds messages takes more.
	var firstConv, firstStatus int64
	err := s.Write(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM conversation`).Scan(&firstConv); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM message_status`).Scan(&firstStatus); err != nil {
			return err
		}
		var err error
		g.codes, err = termCodes(ctx, tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("storegen: reading ids: %w", err)
	}
	g.convID, g.statusID = firstConv, firstStatus
	if !s.Postgres() {
		// The indexes of a million rows outgrow SQLite's default 2 MB page
		// cache; the writer connection gets it back afterwards.
		var pages int
		_ = s.Write(ctx, func(tx *sql.Tx) error {
			if err := tx.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&pages); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `PRAGMA cache_size = -262144`)
			return err
		})
		if pages != 0 {
			defer s.Write(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA cache_size = %d`, pages))
				return err
			})
		}
	}
	res := &Result{First: o.Start, Last: o.Start.Add(time.Duration(o.N-1) * o.Step), Receivers: g.recv}
	for lo := 0; lo < o.N; lo += o.Batch {
		hi := min(lo+o.Batch, o.N)
		if err := s.Write(ctx, func(tx *sql.Tx) error { return g.batch(ctx, tx, lo, hi) }); err != nil {
			return nil, fmt.Errorf("storegen: messages %d–%d: %w", lo, hi, err)
		}
	}
	if err := g.fixSequences(ctx, s); err != nil {
		return nil, err
	}
	if o.N <= 10_000 {
		for i := range o.N {
			res.MessageIDs = append(res.MessageIDs, MessageID(g.prefix, i))
		}
	}
	return res, nil
}

type gen struct {
	o                Options
	recv             []string
	prefix           uint32
	keepEvents       bool
	builder          *events.Builder
	convID, statusID int64
	codes            map[string]int64 // the term ids of the coded texts (store migration 0006)
	id               func(string) any // a message or conversation id as the conversation table holds it
}

// termCodes gives the texts the daemon stores as codes their terms, as the
// daemon would once it met them: the statuses are there from the start.
func termCodes(ctx context.Context, tx *sql.Tx) (map[string]int64, error) {
	codes := map[string]int64{}
	for _, v := range []string{process, docStd, client} {
		if _, err := tx.ExecContext(ctx, `INSERT INTO term (id, value) SELECT COALESCE(MAX(id), 0) + 1, ? FROM term
			WHERE true ON CONFLICT DO NOTHING`, v); err != nil {
			return nil, fmt.Errorf("adding term: %w", err)
		}
	}
	for _, v := range append([]string{process, docStd, client}, deliveredSteps...) {
		var id int64
		if err := tx.QueryRowContext(ctx, `SELECT id FROM term WHERE value = ?`, v).Scan(&id); err != nil {
			return nil, fmt.Errorf("reading term %s: %w", v, err)
		}
		codes[v] = id
	}
	return codes, nil
}

// batch writes messages lo..hi-1 in the caller's transaction.
func (g *gen) batch(ctx context.Context, tx *sql.Tx, lo, hi int) error {
	for a := lo; a < hi; a += maxPerIn {
		b := min(a+maxPerIn, hi)
		if err := g.chunk(ctx, tx, a, b); err != nil {
			return err
		}
	}
	return nil
}

var deliveredSteps = []string{"OPPRETTET", "SENDT", "MOTTATT", "LEVERT"}

func (g *gen) chunk(ctx context.Context, tx *sql.Tx, lo, hi int) error {
	n := hi - lo
	steps := deliveredSteps
	if g.o.State == Queued {
		steps = steps[:1]
	}
	conv := newInsert(`INSERT INTO conversation (id, message_id, conversation_id, direction, parties, sender, sender_identifier,
		receiver, receiver_identifier, process_identifier, process_code, document_identifier, document_code,
		message_reference, message_title, service_identifier, client, client_code, status, status_code, finished, pollable, expiry,
		created_at, last_update) VALUES `, 25, n)
	stat := newInsert(`INSERT INTO message_status (id, conv_id, status, status_code, last_update) VALUES `, 5, n*len(steps))
	var ev, out, att *insert
	if g.keepEvents {
		ev = newInsert(`INSERT INTO event_outbox (kind, body, created_at) VALUES `, 3, n*len(steps))
	}
	if g.o.State == Queued {
		out = newInsert(`INSERT INTO outgoing_message (message_id, conversation_id, process_identifier, sender_identifier,
			receiver_identifier, service_identifier, document_type, sbd, state, expiry, last_updated) VALUES `, 11, n)
		att = newInsert(`INSERT INTO attachment (message_id, doc_no, filename, title, mime_type, size, is_primary, file, data) VALUES `, 9, n)
	}
	for i := lo; i < hi; i++ {
		id := MessageID(g.prefix, i)
		created := g.o.Start.Add(time.Duration(i) * g.o.Step)
		expiry := created.Add(24 * time.Hour)
		recv := g.recv[i%len(g.recv)]
		last := created.Add(time.Duration(len(steps)-1) * time.Second)
		g.convID++
		finished := 0
		if g.o.State == Delivered {
			finished = 1
		}
		// Sender and receiver as the store writes them: derived from the
		// identifiers (parties, migration 0007).
		conv.row(g.convID, g.id(id), g.id(id), "OUTGOING", 3, "", g.o.Sender, "", recv, "", g.codes[process],
			"", g.codes[docStd], id, "", service, "", g.codes[client], "", g.codes[steps[len(steps)-1]], finished, 0, expiry.UnixMilli(),
			created.UnixMilli(), last.UnixMilli())
		for k, st := range steps {
			g.statusID++
			at := created.Add(time.Duration(k) * time.Second)
			stat.row(g.statusID, g.convID, "", g.codes[st], at.UnixMilli())
			if ev != nil {
				typ, body, err := g.builder.MessageStatus(events.StatusInput{OccurredAt: at, MessageID: id, ConversationID: id,
					Direction: events.Direction("OUTGOING"), Service: events.ServiceID(service), ProcessIdentifier: process,
					DocumentIdentifier: docStd, Status: events.Status(st), SenderOrgNr: g.o.Sender,
					Receiver: events.OrganisationReceiver(recv), Client: client})
				if err != nil {
					return fmt.Errorf("building event: %w", err)
				}
				ev.row(string(typ), body, at.UnixMilli())
			}
		}
		if out != nil {
			out.row(id, id, process, g.o.Sender, recv, service, "avtalt", sbdJSON(id, g.o.Sender, recv, created, expiry),
				store.StateQueued, expiry.UnixMilli(), created.UnixMilli())
			file := ""
			if g.o.Attachment == nil {
				file = fmt.Sprintf("%08x%024x", g.prefix, i) // the payload package's 32 hex digits
			}
			att.row(id, 1, "vedlegg.pdf", "Vedlegg", "application/pdf", g.o.AttachmentSize, 0, file, g.o.Attachment)
		}
	}
	for _, in := range []*insert{conv, stat, ev, out, att} {
		if in == nil {
			continue
		}
		if _, err := tx.ExecContext(ctx, in.sql(), in.args...); err != nil {
			return err
		}
	}
	return nil
}

// sbdJSON is the SBD an avtalt DPO message is stored with after E5
// normalised it: sender and receiver, instance id, times, the conversation
// scope.
func sbdJSON(id, sender, recv string, created, expiry time.Time) []byte {
	return fmt.Appendf(nil, `{"standardBusinessDocumentHeader":{"headerVersion":"1.0",`+
		`"sender":[{"identifier":{"authority":"iso6523-actorid-upis","value":"0192:%s"}}],`+
		`"receiver":[{"identifier":{"authority":"iso6523-actorid-upis","value":"0192:%s"}}],`+
		`"documentIdentification":{"standard":"%s","typeVersion":"2.0","instanceIdentifier":"%s","type":"avtalt","creationDateAndTime":"%s"},`+
		`"businessScope":{"scope":[{"type":"ConversationId","instanceIdentifier":"%s","identifier":"%s",`+
		`"scopeInformation":[{"expectedResponseDateTime":"%s"}]}]}},`+
		`"avtalt":{"identifier":"no.example.tilskudd.v1","content":{"sum":100}}}`,
		sender, recv, docStd, id, created.Format(time.RFC3339), id, process, expiry.Format(time.RFC3339))
}

// fixSequences moves PostgreSQL's identity sequences past the explicit ids
// written (SQLite's AUTOINCREMENT follows them by itself).
func (g *gen) fixSequences(ctx context.Context, s *store.Store) error {
	if !s.Postgres() {
		return nil
	}
	return s.Write(ctx, func(tx *sql.Tx) error {
		for _, t := range []string{"conversation", "message_status"} {
			if _, err := tx.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('`+t+`', 'id'), (SELECT MAX(id) FROM `+t+`))`); err != nil {
				return fmt.Errorf("storegen: moving the %s sequence: %w", t, err)
			}
		}
		return nil
	})
}

// insert is one multi-row INSERT being built.
type insert struct {
	head string
	cols int
	rows int
	args []any
}

func newInsert(head string, cols, rows int) *insert {
	return &insert{head: head, cols: cols, args: make([]any, 0, cols*rows)}
}

func (in *insert) row(v ...any) {
	in.args = append(in.args, v...)
	in.rows++
}

func (in *insert) sql() string {
	one := "(" + strings.Repeat("?,", in.cols-1) + "?)"
	var b strings.Builder
	b.Grow(len(in.head) + in.rows*(len(one)+1))
	b.WriteString(in.head)
	for i := range in.rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(one)
	}
	return b.String()
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrNotFound is returned when the asked-for row does not exist.
var ErrNotFound = errors.New("not found")

// SortError names a sort property the resource does not know; the API
// answers it with 400 (local-api.md §2.6, D3).
type SortError struct{ Property string }

func (e *SortError) Error() string { return "unknown sort property " + e.Property }

// Conversation is one message's record per direction (local-api.md §7.1).
type Conversation struct {
	ID                      int64
	MessageID               string
	ConversationID          string
	Direction               string
	Sender                  string
	SenderIdentifier        string
	Receiver                string
	ReceiverIdentifier      string
	ProcessIdentifier       string
	DocumentIdentifier      string
	MessageReference        string
	MessageTitle            string
	ServiceIdentifier       string
	ExternalSystemReference string
	Client                  string
	Status                  string
	Finished                bool
	Pollable                bool
	Expiry                  time.Time
	LastUpdate              time.Time
	Statuses                []Status // ordered by id; filled by the read methods
}

// Status is one entry of a conversation's history (local-api.md §8.1).
type Status struct {
	ID             int64
	ConvID         int64
	MessageID      string
	ConversationID string
	Status         string
	Description    string
	RawReceipt     string
	LastUpdate     time.Time
}

// Outgoing is a message in the outgoing store (local-api.md §5).
type Outgoing struct {
	MessageID          string
	ConversationID     string
	ProcessIdentifier  string
	SenderIdentifier   string
	ReceiverIdentifier string
	ServiceIdentifier  string
	DocumentType       string
	SBD                []byte
	State              string // CREATED or QUEUED
	Expiry             time.Time
	LastUpdated        time.Time
}

// Outgoing states.
const (
	StateCreated = "CREATED"
	StateQueued  = "QUEUED"
)

// Attachment is one uploaded file of an outgoing message.
type Attachment struct {
	ID        int64
	MessageID string
	DocNo     int
	Filename  string
	Title     string
	MimeType  string
	Size      int64
	Primary   bool
	File      string // payload file name; "" when Data holds the content
	Data      []byte // sealed content of a small attachment (payload.Writer.Inline)
}

// Incoming is a message on the incoming queue (local-api.md §6).
type Incoming struct {
	MessageID          string
	ConversationID     string
	ProcessIdentifier  string
	SenderIdentifier   string
	ReceiverIdentifier string
	ServiceIdentifier  string
	DocumentType       string
	SBD                []byte
	Package            string // payload file name; "" when none
	LockedUntil        time.Time
	Expiry             time.Time
	LastUpdated        time.Time
}

// StatusReply is an internal status message owed to a sender's integration
// point (local-api.md §12.10).
type StatusReply struct {
	ID                int64
	MessageID         string
	ConversationID    string
	ServiceIdentifier string
	Status            string
	SBD               []byte
	CreatedAt         time.Time
}

// Subscription is a webhook subscription (local-api.md §9.1).
type Subscription struct {
	ID           int64
	Name         string
	PushEndpoint string
	Resource     string
	Event        string
	Filter       string
}

// Page asks for one page of a list. Sort holds property names as the API
// spells them; the store maps them to columns and rejects unknown ones.
type Page struct {
	Number, Size int
	Sort         []Order
	NoTotal      bool // the caller needs no total: the list methods return 0 without counting
}

// Order is one sort key.
type Order struct {
	Property string
	Desc     bool
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// where collects AND-combined conditions with their arguments.
type where struct {
	clauses []string
	args    []any
}

func (w *where) eq(col string, v string) {
	if v != "" {
		w.clauses = append(w.clauses, col+" = ?")
		w.args = append(w.args, v)
	}
}

func (w *where) add(clause string, args ...any) {
	w.clauses = append(w.clauses, clause)
	w.args = append(w.args, args...)
}

func (w *where) sql() string {
	if len(w.clauses) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.clauses, " AND ")
}

// orderBy renders p.Sort against the resource's columns, with the id as the
// last key so pages are stable.
func orderBy(p Page, cols map[string]string, idCol string) (string, error) {
	var parts []string
	for _, o := range p.Sort {
		c, ok := cols[o.Property]
		if !ok {
			return "", &SortError{Property: o.Property}
		}
		if o.Desc {
			c += " DESC"
		}
		parts = append(parts, c)
	}
	parts = append(parts, idCol)
	return " ORDER BY " + strings.Join(parts, ", "), nil
}

func limit(p Page) string {
	return fmt.Sprintf(" LIMIT %d OFFSET %d", p.Size, p.Number*p.Size)
}

// listPage counts the rows of table matching w and reads page p of them in
// the given order: the shape of every paged list of the local API.
func listPage[T any](ctx context.Context, db *sql.DB, table, cols string, w *where, order string, p Page, scan func(scanner) (T, error), what string) ([]T, int, error) {
	return listPageCount(ctx, db, table, cols, w, order, p, scan, what, func() (int, error) {
		var n int
		err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table+w.sql(), w.args...).Scan(&n)
		return n, err
	})
}

// listPageCount is listPage with the rows counted by count.
func listPageCount[T any](ctx context.Context, db *sql.DB, table, cols string, w *where, order string, p Page, scan func(scanner) (T, error), what string, count func() (int, error)) ([]T, int, error) {
	var total int
	if !p.NoTotal {
		var err error
		if total, err = count(); err != nil {
			return nil, 0, fmt.Errorf("counting %s: %w", what, err)
		}
	}
	rows, err := db.QueryContext(ctx, `SELECT `+cols+` FROM `+table+w.sql()+order+limit(p), w.args...)
	if err != nil {
		return nil, 0, fmt.Errorf("listing %s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("listing %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("listing %s: %w", what, err)
	}
	return out, total, nil
}

var convCols = `id, message_id, conversation_id, direction, ` + senderCol + `, sender_identifier, ` + receiverCol + `,
	receiver_identifier, ` + decoded("process_code", "process_identifier") + `, ` + decoded("document_code", "document_identifier") + `,
	message_reference, message_title, service_identifier, COALESCE(external_system_reference, ''), ` + decoded("client_code", "client") + `,
	` + decoded("status_code", "status") + `, finished, pollable, COALESCE(expiry, 0), last_update`

type scanner interface{ Scan(...any) error }

func scanConv(r scanner) (*Conversation, error) {
	var c Conversation
	var exp, lu int64
	if err := r.Scan(&c.ID, idText{&c.MessageID}, idText{&c.ConversationID}, &c.Direction, &c.Sender, &c.SenderIdentifier, &c.Receiver,
		&c.ReceiverIdentifier, &c.ProcessIdentifier, &c.DocumentIdentifier, &c.MessageReference, &c.MessageTitle,
		&c.ServiceIdentifier, &c.ExternalSystemReference, &c.Client, &c.Status, &c.Finished, &c.Pollable, &exp, &lu); err != nil {
		return nil, err
	}
	c.Expiry, c.LastUpdate = fromMS(exp), fromMS(lu)
	return &c, nil
}

// InsertConversation stores c and sets c.ID.
func (t *Tx) InsertConversation(c *Conversation) error {
	var ext any
	if c.ExternalSystemReference != "" {
		ext = c.ExternalSystemReference
	}
	pc, p := t.code(c.ProcessIdentifier)
	dc, d := t.code(c.DocumentIdentifier)
	cc, cl := t.code(c.Client)
	sc, st := statusCode(t.terms, c.Status)
	pf, sender, receiver := parties(c)
	var err error
	c.ID, err = t.insertID(`INSERT INTO conversation (message_id, conversation_id, direction, parties, sender,
		sender_identifier, receiver, receiver_identifier, process_identifier, process_code, document_identifier,
		document_code, message_reference, message_title, service_identifier, external_system_reference, client,
		client_code, status, status_code, finished, pollable, expiry, created_at, last_update)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		idArg(t.pg, c.MessageID), idArg(t.pg, c.ConversationID), c.Direction, pf, sender, c.SenderIdentifier, receiver, c.ReceiverIdentifier,
		p, pc, d, dc, c.MessageReference, c.MessageTitle, c.ServiceIdentifier, ext,
		cl, cc, st, sc, b2i(c.Finished), b2i(c.Pollable), ms(c.Expiry), ms(c.LastUpdate), ms(c.LastUpdate))
	if err != nil {
		return fmt.Errorf("inserting conversation: %w", conflict(err))
	}
	return nil
}

// Conversation returns the conversation of a message in one direction, with
// its statuses.
func (t *Tx) Conversation(messageID, direction string) (*Conversation, error) {
	c, err := scanConv(t.queryRow(`SELECT `+convCols+` FROM conversation
		WHERE message_id = ? AND direction = ?`+t.forUpdate(), idArg(t.pg, messageID), direction))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading conversation: %w", err)
	}
	c.Statuses, err = statusesOf(t.ctx, t.tx, []*Conversation{c})
	return c, err
}

// MessageIDTaken reports whether a message id is in the outgoing store or,
// unless onlyOutgoing, on any conversation: the duplicate check of E2.
func (s *Store) MessageIDTaken(ctx context.Context, messageID string, onlyOutgoing bool) (bool, error) {
	var taken bool
	if err := s.r.QueryRowContext(ctx, messageIDTaken, messageID, onlyOutgoing, idArg(s.pg, messageID)).Scan(&taken); err != nil {
		return false, fmt.Errorf("checking message id: %w", err)
	}
	return taken, nil
}

// MessageIDTaken is the store's MessageIDTaken inside the transaction that
// then inserts the message: no race past it, and on SQLite it reads through
// the writer's warm page cache instead of starting a read transaction.
func (t *Tx) MessageIDTaken(messageID string, onlyOutgoing bool) (bool, error) {
	var taken bool
	if err := t.queryRow(messageIDTaken, messageID, onlyOutgoing, idArg(t.pg, messageID)).Scan(&taken); err != nil {
		return false, fmt.Errorf("checking message id: %w", err)
	}
	return taken, nil
}

// messageIDTaken takes the id twice: as outgoing_message stores it, and
// as the conversation table does (idArg).
const messageIDTaken = `SELECT EXISTS (SELECT 1 FROM outgoing_message WHERE message_id = ?1)
		OR (NOT ?2 AND EXISTS (SELECT 1 FROM conversation WHERE message_id = ?3))`

// ConversationExists reports whether any conversation has the message id.
func (s *Store) ConversationExists(ctx context.Context, messageID string) (bool, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM conversation WHERE message_id = ?`, idArg(s.pg, messageID)).Scan(&n)
	return n > 0, err
}

// ConversationExists reports whether any conversation has the message id.
func (t *Tx) ConversationExists(messageID string) (bool, error) {
	var n int
	err := t.queryRow(`SELECT COUNT(*) FROM conversation WHERE message_id = ?`, idArg(t.pg, messageID)).Scan(&n)
	return n > 0, err
}

// UpdateConversation writes c's mutable fields.
// Written is what UpdateConversation writes, times as stored
// (milliseconds): a caller that compares it before and after a change can
// skip a write that would change nothing. It must list every column the
// UPDATE below sets.
type Written struct {
	status, title, reference, external string
	finished, pollable                 bool
	lastUpdate                         int64
}

// Written returns what UpdateConversation would write of c.
func (c *Conversation) Written() Written {
	return Written{status: c.Status, title: c.MessageTitle, reference: c.MessageReference, external: c.ExternalSystemReference,
		finished: c.Finished, pollable: c.Pollable, lastUpdate: ms(c.LastUpdate)}
}

func (t *Tx) UpdateConversation(c *Conversation) error {
	var ext any
	if c.ExternalSystemReference != "" {
		ext = c.ExternalSystemReference
	}
	sc, st := statusCode(t.terms, c.Status)
	_, err := t.exec(`UPDATE conversation SET status = ?, status_code = ?, finished = ?, pollable = ?, last_update = ?,
		message_title = ?, message_reference = ?, external_system_reference = ? WHERE id = ?`,
		st, sc, b2i(c.Finished), b2i(c.Pollable), ms(c.LastUpdate), c.MessageTitle, c.MessageReference, ext, c.ID)
	if err != nil {
		return fmt.Errorf("updating conversation: %w", err)
	}
	return nil
}

// InsertStatus appends st to its conversation's history and sets st.ID.
func (t *Tx) InsertStatus(st *Status) error {
	var desc, raw any
	if st.Description != "" {
		desc = st.Description
	}
	if st.RawReceipt != "" {
		raw = st.RawReceipt
	}
	code, status := statusCode(t.terms, st.Status)
	var err error
	if st.ID, err = t.insertID(`INSERT INTO message_status (conv_id, status_code, status, description, raw_receipt, last_update)
		VALUES (?,?,?,?,?,?)`, st.ConvID, code, status, desc, raw, ms(st.LastUpdate)); err != nil {
		return fmt.Errorf("inserting status: %w", err)
	}
	return nil
}

// InsertEvent writes one central-log outbox row (operations.md §5.4).
func (t *Tx) InsertEvent(kind string, body []byte, at time.Time) error {
	_, err := t.exec(`INSERT INTO event_outbox (kind, body, created_at) VALUES (?,?,?)`, kind, body, ms(at))
	if err != nil {
		return fmt.Errorf("inserting outbox event: %w", err)
	}
	return nil
}

// QueueStatus appends a status to the status queue of E21.
func (t *Tx) QueueStatus(statusID int64) error {
	_, err := t.exec(`INSERT INTO status_queue (status_id) VALUES (?) ON CONFLICT DO NOTHING`, statusID)
	return err
}

// InsertStatusReply records an internal status message owed to a sender.
func (t *Tx) InsertStatusReply(r *StatusReply) error {
	var err error
	if r.ID, err = t.insertID(`INSERT INTO status_reply (message_id, conversation_id, service_identifier, status, sbd, created_at)
		VALUES (?,?,?,?,?,?)`, r.MessageID, r.ConversationID, r.ServiceIdentifier, r.Status, r.SBD, ms(r.CreatedAt)); err != nil {
		return fmt.Errorf("inserting status reply: %w", err)
	}
	return nil
}

const outCols = `message_id, conversation_id, process_identifier, sender_identifier, receiver_identifier,
	service_identifier, document_type, sbd, state, expiry, last_updated`

func scanOut(r scanner) (*Outgoing, error) {
	var o Outgoing
	var exp, lu int64
	if err := r.Scan(&o.MessageID, &o.ConversationID, &o.ProcessIdentifier, &o.SenderIdentifier, &o.ReceiverIdentifier,
		&o.ServiceIdentifier, &o.DocumentType, &o.SBD, &o.State, &exp, &lu); err != nil {
		return nil, err
	}
	o.Expiry, o.LastUpdated = fromMS(exp), fromMS(lu)
	return &o, nil
}

// InsertOutgoing puts a message into the outgoing store.
func (t *Tx) InsertOutgoing(o *Outgoing) error {
	_, err := t.exec(`INSERT INTO outgoing_message (`+outCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
		o.MessageID, o.ConversationID, o.ProcessIdentifier, o.SenderIdentifier, o.ReceiverIdentifier, o.ServiceIdentifier,
		o.DocumentType, o.SBD, o.State, ms(o.Expiry), ms(o.LastUpdated))
	if err != nil {
		return fmt.Errorf("inserting outgoing message: %w", conflict(err))
	}
	return nil
}

// Outgoing reads one message of the outgoing store.
func (t *Tx) Outgoing(messageID string) (*Outgoing, error) {
	o, err := scanOut(t.queryRow(`SELECT `+outCols+` FROM outgoing_message WHERE message_id = ?`+t.forUpdate(), messageID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading outgoing message: %w", err)
	}
	return o, nil
}

// SetOutgoingState moves a message between CREATED and QUEUED.
func (t *Tx) SetOutgoingState(messageID, state string, at time.Time) error {
	_, err := t.exec(`UPDATE outgoing_message SET state = ?, last_updated = ? WHERE message_id = ?`, state, ms(at), messageID)
	return err
}

// DeleteOutgoing removes a message and its attachment rows and returns the
// payload files to delete once the transaction has committed.
func (t *Tx) DeleteOutgoing(messageID string) ([]string, error) {
	// Only the names of the payload files: reading whole rows read every
	// inline attachment's bytes on the one writer at each SENDT (issue 18).
	rows, err := t.query(`SELECT file FROM attachment WHERE message_id = ? AND file != '' ORDER BY doc_no`, messageID)
	if err != nil {
		return nil, fmt.Errorf("listing attachment files: %w", err)
	}
	var files []string
	for rows.Next() {
		var f string
		if err := rows.Scan(&f); err != nil {
			rows.Close()
			return nil, fmt.Errorf("listing attachment files: %w", err)
		}
		files = append(files, f)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("listing attachment files: %w", err)
	}
	if _, err := t.exec(`DELETE FROM outgoing_message WHERE message_id = ?`, messageID); err != nil {
		return nil, fmt.Errorf("deleting outgoing message: %w", err)
	}
	return files, nil
}

// InsertAttachment records one uploaded file; its doc number is the next in
// upload order, or a.DocNo when the caller numbers the files of a new
// message itself.
func (t *Tx) InsertAttachment(a *Attachment) error {
	if a.DocNo > 0 {
		return t.insertAttachment(a)
	}
	if t.pg {
		// Two uploads to one message on two daemons would otherwise number
		// their files alike.
		if _, err := t.exec(`SELECT 1 FROM outgoing_message WHERE message_id = ? FOR UPDATE`, a.MessageID); err != nil {
			return fmt.Errorf("numbering attachment: %w", err)
		}
	}
	if err := t.queryRow(`SELECT COALESCE(MAX(doc_no), 0) + 1 FROM attachment WHERE message_id = ?`, a.MessageID).Scan(&a.DocNo); err != nil {
		return fmt.Errorf("numbering attachment: %w", err)
	}
	return t.insertAttachment(a)
}

func (t *Tx) insertAttachment(a *Attachment) error {
	var err error
	if a.ID, err = t.insertID(`INSERT INTO attachment (message_id, doc_no, filename, title, mime_type, size, is_primary, file, data)
		VALUES (?,?,?,?,?,?,?,?,?)`, a.MessageID, a.DocNo, a.Filename, a.Title, a.MimeType, a.Size, b2i(a.Primary), a.File, a.Data); err != nil {
		return fmt.Errorf("inserting attachment: %w", conflict(err))
	}
	return nil
}

// Attachments lists a message's files in upload order.
func (t *Tx) Attachments(messageID string) ([]Attachment, error) {
	return attachments(t.ctx, t.tx, messageID)
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func attachments(ctx context.Context, q querier, messageID string) ([]Attachment, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, message_id, doc_no, filename, title, mime_type, size, is_primary, file, data
		FROM attachment WHERE message_id = ? ORDER BY doc_no`, messageID)
	if err != nil {
		return nil, fmt.Errorf("listing attachments: %w", err)
	}
	defer rows.Close()
	var as []Attachment
	for rows.Next() {
		var a Attachment
		if err := rows.Scan(&a.ID, &a.MessageID, &a.DocNo, &a.Filename, &a.Title, &a.MimeType, &a.Size, &a.Primary, &a.File, &a.Data); err != nil {
			return nil, fmt.Errorf("listing attachments: %w", err)
		}
		as = append(as, a)
	}
	return as, rows.Err()
}

// Attachments lists a message's files in upload order.
func (s *Store) Attachments(ctx context.Context, messageID string) ([]Attachment, error) {
	return attachments(ctx, s.r, messageID)
}

// GetOutgoing reads one message of the outgoing store.
func (s *Store) GetOutgoing(ctx context.Context, messageID string) (*Outgoing, error) {
	o, err := scanOut(s.r.QueryRowContext(ctx, `SELECT `+outCols+` FROM outgoing_message WHERE message_id = ?`, messageID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading outgoing message: %w", err)
	}
	return o, nil
}

// MessageFilter holds the exact-match filters of E6, E9 and E10.
type MessageFilter struct {
	MessageID, ConversationID, Process, Receiver, Sender, Service string
}

func (f MessageFilter) where() *where {
	w := &where{}
	w.eq("message_id", f.MessageID)
	w.eq("conversation_id", f.ConversationID)
	w.eq("process_identifier", f.Process)
	w.eq("receiver_identifier", f.Receiver)
	w.eq("sender_identifier", f.Sender)
	w.eq("service_identifier", f.Service)
	return w
}

var messageSort = map[string]string{
	"lastUpdated": "last_updated", "lastUpdate": "last_updated", "id": "rowid", "messageId": "message_id",
	"conversationId": "conversation_id", "processIdentifier": "process_identifier",
	"receiverIdentifier": "receiver_identifier", "senderIdentifier": "sender_identifier",
	"serviceIdentifier": "service_identifier",
}

// ListOutgoing returns one page of the outgoing store and the total count.
func (s *Store) ListOutgoing(ctx context.Context, f MessageFilter, p Page) ([]*Outgoing, int, error) {
	w := f.where()
	ob, err := orderBy(p, messageSort, "rowid")
	if err != nil {
		return nil, 0, err
	}
	return listPage(ctx, s.r, "outgoing_message", outCols, w, ob, p, scanOut, "outgoing messages")
}

// ExpiredOutgoing lists outgoing conversations past their expiry that are not
// finished: what the deadline sweep marks LEVETID_UTLOPT (local-api.md §14.5).
func (s *Store) ExpiredOutgoing(ctx context.Context, now time.Time) ([]string, error) {
	return s.ids(ctx, `SELECT message_id FROM conversation WHERE direction = 'OUTGOING' AND finished = 0
		AND expiry IS NOT NULL AND expiry > 0 AND expiry < ? ORDER BY id`, ms(now))
}

// ExpiredIncoming lists queued incoming messages past their expiry.
func (s *Store) ExpiredIncoming(ctx context.Context, now time.Time) ([]string, error) {
	return s.ids(ctx, `SELECT message_id FROM incoming_message WHERE expiry > 0 AND expiry < ? ORDER BY last_updated`, ms(now))
}

func (s *Store) ids(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing ids: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(idText{&id}); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

const inCols = `message_id, conversation_id, process_identifier, sender_identifier, receiver_identifier,
	service_identifier, document_type, sbd, package, locked_until, expiry, last_updated`

func scanIn(r scanner) (*Incoming, error) {
	var m Incoming
	var lock, exp, lu int64
	if err := r.Scan(&m.MessageID, &m.ConversationID, &m.ProcessIdentifier, &m.SenderIdentifier, &m.ReceiverIdentifier,
		&m.ServiceIdentifier, &m.DocumentType, &m.SBD, &m.Package, &lock, &exp, &lu); err != nil {
		return nil, err
	}
	m.LockedUntil, m.Expiry, m.LastUpdated = fromMS(lock), fromMS(exp), fromMS(lu)
	return &m, nil
}

// InsertIncoming puts a message on the incoming queue.
func (t *Tx) InsertIncoming(m *Incoming) error {
	_, err := t.exec(`INSERT INTO incoming_message (`+inCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
		m.MessageID, m.ConversationID, m.ProcessIdentifier, m.SenderIdentifier, m.ReceiverIdentifier, m.ServiceIdentifier,
		m.DocumentType, m.SBD, m.Package, ms(m.LockedUntil), ms(m.Expiry), ms(m.LastUpdated))
	if err != nil {
		return fmt.Errorf("inserting incoming message: %w", conflict(err))
	}
	return nil
}

// Incoming reads one message of the incoming queue.
func (t *Tx) Incoming(messageID string) (*Incoming, error) {
	m, err := scanIn(t.queryRow(`SELECT `+inCols+` FROM incoming_message WHERE message_id = ?`+t.forUpdate(), messageID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading incoming message: %w", err)
	}
	return m, nil
}

// DeleteIncoming removes a message from the incoming queue.
func (t *Tx) DeleteIncoming(messageID string) error {
	_, err := t.exec(`DELETE FROM incoming_message WHERE message_id = ?`, messageID)
	return err
}

// LockNextIncoming locks the oldest unlocked message matching f until
// lockUntil and returns it, or ErrNotFound. It runs in the one writer (on
// PostgreSQL: skipping rows another daemon's peek holds), so two peeks never
// lock the same message.
func (t *Tx) LockNextIncoming(f MessageFilter, now, lockUntil time.Time) (*Incoming, error) {
	w := f.where()
	w.add("locked_until <= ?", ms(now))
	skip := ""
	if t.pg {
		skip = " FOR UPDATE SKIP LOCKED"
	}
	m, err := scanIn(t.queryRow(`SELECT `+inCols+` FROM incoming_message`+w.sql()+
		` ORDER BY last_updated, rowid LIMIT 1`+skip, w.args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("peeking incoming message: %w", err)
	}
	if _, err := t.exec(`UPDATE incoming_message SET locked_until = ? WHERE message_id = ?`, ms(lockUntil), m.MessageID); err != nil {
		return nil, fmt.Errorf("locking incoming message: %w", err)
	}
	m.LockedUntil = lockUntil
	return m, nil
}

// GetIncoming reads one message of the incoming queue.
func (s *Store) GetIncoming(ctx context.Context, messageID string) (*Incoming, error) {
	m, err := scanIn(s.r.QueryRowContext(ctx, `SELECT `+inCols+` FROM incoming_message WHERE message_id = ?`, messageID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading incoming message: %w", err)
	}
	return m, nil
}

// ListIncoming returns one page of the incoming queue, oldest first by
// default.
func (s *Store) ListIncoming(ctx context.Context, f MessageFilter, p Page) ([]*Incoming, int, error) {
	w := f.where()
	ob, err := orderBy(p, messageSort, "last_updated, rowid")
	if err != nil {
		return nil, 0, err
	}
	return listPage(ctx, s.r, "incoming_message", inCols, w, ob, p, scanIn, "incoming messages")
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/events"
)

// ConversationFilter holds the filters of E13 (local-api.md §7.2).
type ConversationFilter struct {
	MessageID, ConversationID, Sender, Receiver, SenderIdentifier, ReceiverIdentifier string
	Service, MessageReference, MessageTitle, Direction                                string
	Status                                                                            string // the latest status
	Pollable, Finished                                                                *bool
	HasTitle, HasReference                                                            bool // exact match on possibly empty text
	From, To                                                                          time.Time
}

var conversationSort = map[string]string{
	"lastUpdate": "last_update", "lastUpdated": "last_update", "id": "id", "messageId": "message_id",
	"conversationId": "conversation_id", "expiry": "expiry", "direction": "direction",
	"serviceIdentifier": "service_identifier", "processIdentifier": decoded("process_code", "process_identifier"),
	"messageReference": "message_reference", "messageTitle": "message_title", "finished": "finished",
}

// ListConversations returns one page of conversations with their statuses.
func (s *Store) ListConversations(ctx context.Context, f ConversationFilter, p Page) ([]*Conversation, int, error) {
	w := &where{}
	w.eqID(s.pg, "message_id", f.MessageID)
	w.eqID(s.pg, "conversation_id", f.ConversationID)
	w.eq(senderCol, f.Sender)
	w.eq(receiverCol, f.Receiver)
	w.eq("sender_identifier", f.SenderIdentifier)
	w.eq("receiver_identifier", f.ReceiverIdentifier)
	w.eq("service_identifier", f.Service)
	w.eq("direction", f.Direction)
	if f.Status != "" {
		convStatusIs(w, &s.terms, f.Status)
	}
	if f.HasReference {
		w.add("message_reference = ?", f.MessageReference)
	}
	if f.HasTitle {
		w.add("message_title = ?", f.MessageTitle)
	}
	if f.Pollable != nil {
		w.add("pollable = ?", b2i(*f.Pollable))
	}
	if f.Finished != nil {
		w.add("finished = ?", b2i(*f.Finished))
	}
	if !f.From.IsZero() {
		w.add("last_update >= ?", ms(f.From))
	}
	if !f.To.IsZero() {
		w.add("last_update <= ?", ms(f.To))
	}
	ob, err := orderBy(p, conversationSort, "id")
	if err != nil {
		return nil, 0, err
	}
	// Status, flags, times, title and reference change: a count over them
	// cannot be kept (count.go).
	keep := f.Status == "" && f.Pollable == nil && f.Finished == nil && !f.HasTitle && !f.HasReference && f.From.IsZero() && f.To.IsZero()
	cs, total, err := listPageCount(ctx, s.r, "conversation", convCols, w, ob, p, scanConv, "conversations", func() (int, error) {
		return s.countRows(ctx, "conversation", "id", "conversation", w, keep)
	})
	if err != nil {
		return nil, 0, err
	}
	if _, err := statusesOf(ctx, s.r, cs); err != nil {
		return nil, 0, err
	}
	return cs, total, nil
}

// statusesOf fills each conversation's Statuses, ordered by id, and returns
// those of the first (convenient for one conversation).
func statusesOf(ctx context.Context, q querier, cs []*Conversation) ([]Status, error) {
	if len(cs) == 0 {
		return nil, nil
	}
	byID := make(map[int64]*Conversation, len(cs))
	ph := make([]string, 0, len(cs))
	args := make([]any, 0, len(cs))
	for _, c := range cs {
		byID[c.ID] = c
		c.Statuses = []Status{}
		ph = append(ph, "?")
		args = append(args, c.ID)
	}
	rows, err := q.QueryContext(ctx, `SELECT id, conv_id, `+decoded("status_code", "status")+`, COALESCE(description, ''),
		COALESCE(raw_receipt, ''), last_update FROM message_status WHERE conv_id IN (`+strings.Join(ph, ",")+`) ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("reading statuses: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var st Status
		var lu int64
		if err := rows.Scan(&st.ID, &st.ConvID, &st.Status, &st.Description, &st.RawReceipt, &lu); err != nil {
			return nil, fmt.Errorf("reading statuses: %w", err)
		}
		st.LastUpdate = fromMS(lu)
		c := byID[st.ConvID]
		st.MessageID, st.ConversationID = c.MessageID, c.ConversationID
		c.Statuses = append(c.Statuses, st)
	}
	return cs[0].Statuses, rows.Err()
}

// GetConversation reads a conversation by numeric id.
func (s *Store) GetConversation(ctx context.Context, id int64) (*Conversation, error) {
	c, err := scanConv(s.r.QueryRowContext(ctx, `SELECT `+convCols+` FROM conversation WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading conversation: %w", err)
	}
	_, err = statusesOf(ctx, s.r, []*Conversation{c})
	return c, err
}

// ConversationByMessageID reads a message's conversation in one direction.
func (s *Store) ConversationByMessageID(ctx context.Context, messageID, direction string) (*Conversation, error) {
	c, err := scanConv(s.r.QueryRowContext(ctx, `SELECT `+convCols+` FROM conversation WHERE message_id = ? AND direction = ?`, idArg(s.pg, messageID), direction))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading conversation: %w", err)
	}
	_, err = statusesOf(ctx, s.r, []*Conversation{c})
	return c, err
}

// DeleteConversation removes a conversation and its statuses by numeric id.
func (s *Store) DeleteConversation(ctx context.Context, id int64) error {
	return s.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM conversation WHERE id = ?`, id)
		return err
	})
}

// DeleteConversationsByMessageID removes every conversation of a message id.
func (s *Store) DeleteConversationsByMessageID(ctx context.Context, messageID string) error {
	return s.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM conversation WHERE message_id = ?`, idArg(s.pg, messageID))
		return err
	})
}

// StatusFilter holds the filters of E19 and E20 (local-api.md §8.2).
type StatusFilter struct {
	ID                                int64
	AfterID                           int64  // only statuses with a larger id
	Direction                         string // the conversation's
	MessageID, ConversationID, Status string
	From, To                          time.Time // applied only when both are set
}

var statusSort = map[string]string{
	"id": "s.id", "lastUpdate": "s.last_update", "lastUpdated": "s.last_update", "status": decoded("s.status_code", "s.status"),
}

// ListStatuses returns one page of statuses.
func (s *Store) ListStatuses(ctx context.Context, f StatusFilter, p Page) ([]Status, int, error) {
	w := &where{}
	if f.ID != 0 {
		w.add("s.id = ?", f.ID)
	}
	w.eqID(s.pg, "c.message_id", f.MessageID)
	w.eqID(s.pg, "c.conversation_id", f.ConversationID)
	if f.Status != "" {
		statusIs(w, &s.terms, "s.", f.Status)
	}
	w.eq("c.direction", f.Direction)
	if f.AfterID != 0 {
		w.add("s.id > ?", f.AfterID)
	}
	if !f.From.IsZero() && !f.To.IsZero() {
		w.add("s.last_update BETWEEN ? AND ?", ms(f.From), ms(f.To))
	}
	ob, err := orderBy(p, statusSort, "s.id")
	if err != nil {
		return nil, 0, err
	}
	from := ` FROM message_status s JOIN conversation c ON c.id = s.conv_id`
	var total int
	if !p.NoTotal {
		// Every status has its conversation (ON DELETE CASCADE): without a
		// filter on the conversation the count needs no join.
		cfrom := "message_status s"
		if f.MessageID != "" || f.ConversationID != "" || f.Direction != "" {
			cfrom = from[len(" FROM "):]
		}
		if total, err = s.countRows(ctx, "message_status", "s.id", cfrom, w, true); err != nil {
			return nil, 0, fmt.Errorf("counting statuses: %w", err)
		}
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+statusCols+from+w.sql()+ob+limit(p), w.args...)
	if err != nil {
		return nil, 0, fmt.Errorf("listing statuses: %w", err)
	}
	defer rows.Close()
	var out []Status
	for rows.Next() {
		st, err := scanStatus(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("listing statuses: %w", err)
		}
		out = append(out, st)
	}
	return out, total, rows.Err()
}

var statusCols = `s.id, s.conv_id, c.message_id, c.conversation_id, ` + decoded("s.status_code", "s.status") + `,
	COALESCE(s.description, ''), COALESCE(s.raw_receipt, ''), s.last_update`

func scanStatus(r scanner) (Status, error) {
	var st Status
	var lu int64
	err := r.Scan(&st.ID, &st.ConvID, idText{&st.MessageID}, idText{&st.ConversationID}, &st.Status, &st.Description, &st.RawReceipt, &lu)
	st.LastUpdate = fromMS(lu)
	return st, err
}

// PeekStatusQueue returns the oldest status on the status queue, or
// ErrNotFound when it is empty.
func (s *Store) PeekStatusQueue(ctx context.Context) (Status, error) {
	st, err := scanStatus(s.r.QueryRowContext(ctx, `SELECT `+statusCols+`
		FROM status_queue q JOIN message_status s ON s.id = q.status_id JOIN conversation c ON c.id = s.conv_id
		ORDER BY q.status_id LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return st, ErrNotFound
	}
	return st, err
}

// DeleteFromStatusQueue removes a status from the queue; ErrNotFound when it
// was not queued.
func (s *Store) DeleteFromStatusQueue(ctx context.Context, statusID int64) error {
	return s.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM status_queue WHERE status_id = ?`, statusID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// StatusReplies lists the internal status messages not yet carried back, oldest
// first.
func (s *Store) StatusReplies(ctx context.Context, limit int) ([]StatusReply, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, message_id, conversation_id, service_identifier, status, sbd, created_at
		FROM status_reply ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("listing status replies: %w", err)
	}
	defer rows.Close()
	var out []StatusReply
	for rows.Next() {
		var r StatusReply
		var at int64
		if err := rows.Scan(&r.ID, &r.MessageID, &r.ConversationID, &r.ServiceIdentifier, &r.Status, &r.SBD, &at); err != nil {
			return nil, err
		}
		r.CreatedAt = fromMS(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// DeleteStatusReply removes a status reply once its channel carried it.
func (s *Store) DeleteStatusReply(ctx context.Context, id int64) error {
	return s.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM status_reply WHERE id = ?`, id)
		return err
	})
}

// Subscriptions

var subscriptionSort = map[string]string{"id": "id", "name": "name"}

// ListSubscriptions returns one page of subscriptions.
func (s *Store) ListSubscriptions(ctx context.Context, p Page) ([]Subscription, int, error) {
	ob, err := orderBy(p, subscriptionSort, "id")
	if err != nil {
		return nil, 0, err
	}
	var total int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM subscription`).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("counting subscriptions: %w", err)
	}
	subs, err := s.subscriptions(ctx, `SELECT id, name, push_endpoint, resource, event, filter FROM subscription`+ob+limit(p))
	return subs, total, err
}

// AllSubscriptions lists every subscription: what event delivery matches.
func (s *Store) AllSubscriptions(ctx context.Context) ([]Subscription, error) {
	return s.subscriptions(ctx, `SELECT id, name, push_endpoint, resource, event, filter FROM subscription ORDER BY id`)
}

func (s *Store) subscriptions(ctx context.Context, q string, args ...any) ([]Subscription, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing subscriptions: %w", err)
	}
	defer rows.Close()
	var out []Subscription
	for rows.Next() {
		var sub Subscription
		if err := rows.Scan(&sub.ID, &sub.Name, &sub.PushEndpoint, &sub.Resource, &sub.Event, &sub.Filter); err != nil {
			return nil, err
		}
		out = append(out, sub)
	}
	return out, rows.Err()
}

// GetSubscription reads one subscription.
func (s *Store) GetSubscription(ctx context.Context, id int64) (Subscription, error) {
	subs, err := s.subscriptions(ctx, `SELECT id, name, push_endpoint, resource, event, filter FROM subscription WHERE id = ?`, id)
	if err != nil {
		return Subscription{}, err
	}
	if len(subs) == 0 {
		return Subscription{}, ErrNotFound
	}
	return subs[0], nil
}

// ErrDuplicate means a row with the same key exists: a message id already
// stored, a file name already attached, or another subscription with the
// same name and push endpoint.
var ErrDuplicate = errors.New("duplicate")

// SaveSubscription inserts (ID 0) or replaces a subscription, refusing a
// second one with the same name and push endpoint.
func (s *Store) SaveSubscription(ctx context.Context, sub *Subscription) error {
	return s.Write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM subscription WHERE name = ? AND push_endpoint = ? AND id != ?`,
			sub.Name, sub.PushEndpoint, sub.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrDuplicate
		}
		if sub.ID == 0 {
			return tx.QueryRowContext(ctx, `INSERT INTO subscription (name, push_endpoint, resource, event, filter) VALUES (?,?,?,?,?) RETURNING id`,
				sub.Name, sub.PushEndpoint, sub.Resource, sub.Event, sub.Filter).Scan(&sub.ID)
		}
		res, err := tx.ExecContext(ctx, `UPDATE subscription SET name = ?, push_endpoint = ?, resource = ?, event = ?, filter = ? WHERE id = ?`,
			sub.Name, sub.PushEndpoint, sub.Resource, sub.Event, sub.Filter, sub.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// DeleteSubscription removes one subscription; ErrNotFound when unknown.
func (s *Store) DeleteSubscription(ctx context.Context, id int64) error {
	return s.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM subscription WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// DeleteAllSubscriptions removes every subscription.
func (s *Store) DeleteAllSubscriptions(ctx context.Context) error {
	return s.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM subscription`)
		return err
	})
}

// The central-log outbox (events.Outbox).

var _ events.Outbox = (*Store)(nil)

// Pending returns the oldest outbox rows in id order: at most limit rows,
// stopping before the bodies would exceed maxBytes, but always the first.
func (s *Store) Pending(ctx context.Context, limit, maxBytes int) ([]events.Row, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, kind, body, created_at FROM event_outbox ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("reading outbox: %w", err)
	}
	defer rows.Close()
	var out []events.Row
	size := 0
	for rows.Next() {
		var r events.Row
		var kind string
		var at int64
		if err := rows.Scan(&r.ID, &kind, &r.Body, &at); err != nil {
			return nil, fmt.Errorf("reading outbox: %w", err)
		}
		if len(out) > 0 && size+len(r.Body) > maxBytes {
			break
		}
		size += len(r.Body)
		r.Type, r.CreatedAt = events.Type(kind), fromMS(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Delete removes shipped outbox rows; unknown ids are ignored.
func (s *Store) Delete(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	return s.Write(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `DELETE FROM event_outbox WHERE id = ?`, id); err != nil {
				return fmt.Errorf("deleting outbox rows: %w", err)
			}
		}
		return nil
	})
}

// Reject moves an outbox row to event_rejected with a short reason.
func (s *Store) Reject(ctx context.Context, id int64, reason string) error {
	return s.Write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO event_rejected (id, kind, body, created_at, rejected_at, reason)
			SELECT id, kind, body, created_at, ?, ? FROM event_outbox WHERE id = ?`, ms(s.now()), reason, id); err != nil {
			return fmt.Errorf("rejecting outbox row: %w", err)
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM event_outbox WHERE id = ?`, id)
		return err
	})
}

// Backlog counts the outbox rows, their bytes and the oldest row's time.
func (s *Store) Backlog(ctx context.Context) (events.BacklogInfo, error) {
	var b events.BacklogInfo
	var oldest int64
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0), COALESCE(MIN(created_at), 0) FROM event_outbox`).
		Scan(&b.Count, &b.Bytes, &oldest)
	if err != nil {
		return b, fmt.Errorf("counting outbox: %w", err)
	}
	b.Oldest = fromMS(oldest)
	return b, nil
}

// DropOldest deletes up to limit of the oldest rows of type t created before
// olderThan (zero: any age) and returns how many and their bytes.
func (s *Store) DropOldest(ctx context.Context, t events.Type, olderThan time.Time, limit int) (int, int64, error) {
	var n int
	var bytes int64
	err := s.Write(ctx, func(tx *sql.Tx) error {
		w := &where{}
		w.add("kind = ?", string(t))
		if !olderThan.IsZero() {
			w.add("created_at < ?", ms(olderThan))
		}
		sel := `SELECT id FROM event_outbox` + w.sql() + ` ORDER BY id LIMIT ?`
		args := append(append([]any{}, w.args...), limit)
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM event_outbox WHERE id IN (`+sel+`)`, args...).
			Scan(&n, &bytes); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM event_outbox WHERE id IN (`+sel+`)`, args...)
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("dropping outbox rows: %w", err)
	}
	return n, bytes, nil
}

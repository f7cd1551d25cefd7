package pakkesporing

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/internal/logattr"
)

// Conversation is one side's projection of a message (operations.md §5.4).
type Conversation struct {
	OrgNr          string       `json:"orgnr"`
	MessageID      string       `json:"message_id"`
	ConversationID string       `json:"conversation_id"`
	Direction      string       `json:"direction"`
	Service        string       `json:"service"`
	LatestStatus   string       `json:"latest_status"`
	LatestAt       time.Time    `json:"latest_at"`
	HandledAt      *time.Time   `json:"handled_at,omitempty"`
	StatusTimes    []statusTime `json:"status_times"`
}

// MessageView is GET /v1/messages/{message_id}: every side's projection and
// every event from every side, ordered by time.
type MessageView struct {
	MessageID     string         `json:"message_id"`
	Conversations []Conversation `json:"conversations"`
	Events        []StoredEvent  `json:"events"`
}

func (s *Server) internalError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.ErrorContext(r.Context(), "query failed", logattr.Route(r.Pattern), logattr.Err(err))
	writeJSON(w, http.StatusInternalServerError, apiError{"internal error"})
}

func (d *db) conversations(ctx context.Context, where string, args ...any) ([]Conversation, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT orgnr, message_id, conversation_id, direction, service, latest_status,
		latest_at, handled_at, status_times FROM conversation WHERE `+where+` ORDER BY first_event_at, orgnr`, args...)
	if err != nil {
		return nil, fmt.Errorf("querying conversations: %w", err)
	}
	defer rows.Close()
	out := []Conversation{}
	for rows.Next() {
		var c Conversation
		var latest int64
		var handled sql.NullInt64
		var times string
		if err := rows.Scan(&c.OrgNr, &c.MessageID, &c.ConversationID, &c.Direction, &c.Service, &c.LatestStatus,
			&latest, &handled, &times); err != nil {
			return nil, fmt.Errorf("reading conversations: %w", err)
		}
		c.LatestAt = time.Unix(0, latest).UTC()
		if handled.Valid {
			t := time.Unix(0, handled.Int64).UTC()
			c.HandledAt = &t
		}
		if err := json.Unmarshal([]byte(times), &c.StatusTimes); err != nil {
			return nil, fmt.Errorf("reading status times: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// message gathers one message's road: the projections of every org keyed on
// this message id and all their events.
func (d *db) message(ctx context.Context, messageID string) (MessageView, error) {
	v := MessageView{MessageID: messageID}
	var err error
	if v.Conversations, err = d.conversations(ctx, `message_id = ?`, messageID); err != nil {
		return v, err
	}
	if v.Events, err = d.queryEvents(ctx, eventFilter{where: `message_id = ?`, args: []any{messageID}}); err != nil {
		return v, err
	}
	if v.Events == nil {
		v.Events = []StoredEvent{}
	}
	return v, nil
}

func (s *Server) getMessage(w http.ResponseWriter, r *http.Request) {
	v, err := s.db.message(r.Context(), r.PathValue("message_id"))
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if len(v.Events) == 0 {
		writeJSON(w, http.StatusNotFound, apiError{"no events for this message id"})
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// ConversationView is GET /v1/conversations/{conversation_id}.
type ConversationView struct {
	ConversationID string         `json:"conversation_id"`
	Conversations  []Conversation `json:"conversations"`
	Events         []StoredEvent  `json:"events"`
}

func (s *Server) getConversation(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("conversation_id")
	ctx := r.Context()
	v := ConversationView{ConversationID: id}
	var err error
	if v.Conversations, err = s.db.conversations(ctx, `conversation_id = ?`, id); err != nil {
		s.internalError(w, r, err)
		return
	}
	if v.Events, err = s.db.queryEvents(ctx, eventFilter{where: `conversation_id = ?`, args: []any{id}}); err != nil {
		s.internalError(w, r, err)
		return
	}
	if len(v.Events) == 0 {
		writeJSON(w, http.StatusNotFound, apiError{"no events for this conversation id"})
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// EventPage is GET /v1/events: a page and the cursor for the next one.
type EventPage struct {
	Events     []StoredEvent `json:"events"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

const defaultPageSize, maxPageSize = 100, 1000

func parseTimeParam(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%s must be RFC 3339 or YYYY-MM-DD", name)
}

func encodeCursor(e StoredEvent) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(e.occurredAt, 10) + "/" + e.eventID))
}

func decodeCursor(c string) ([2]any, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return [2]any{}, errors.New("bad cursor")
	}
	at, id, ok := strings.Cut(string(b), "/")
	n, err := strconv.ParseInt(at, 10, 64)
	if !ok || err != nil {
		return [2]any{}, errors.New("bad cursor")
	}
	return [2]any{n, id}, nil
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := eventFilter{where: `1=1`, limit: defaultPageSize}
	if v := q.Get("orgnr"); v != "" {
		if !ident.ValidOrgNumber(v) {
			writeJSON(w, http.StatusBadRequest, apiError{"orgnr must be an organisation number"})
			return
		}
		f.where += ` AND orgnr = ?`
		f.args = append(f.args, v)
	}
	if v := q.Get("service"); v != "" {
		f.where += ` AND service = ?`
		f.args = append(f.args, v)
	}
	if v := q.Get("status"); v != "" {
		f.where += ` AND status = ?`
		f.args = append(f.args, v)
	}
	if v := q.Get("type"); v != "" {
		f.where += ` AND type = ?`
		f.args = append(f.args, v)
	}
	var err error
	if f.from, err = parseTimeParam(r, "from"); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	if f.to, err = parseTimeParam(r, "to"); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			writeJSON(w, http.StatusBadRequest, apiError{"limit must be 1..1000"})
			return
		}
		f.limit = n
	}
	if c := q.Get("cursor"); c != "" {
		if f.after, err = decodeCursor(c); err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
			return
		}
	}
	evs, err := s.db.queryEvents(r.Context(), f)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	page := EventPage{Events: evs}
	if page.Events == nil {
		page.Events = []StoredEvent{}
	}
	if len(evs) == f.limit {
		page.NextCursor = encodeCursor(evs[len(evs)-1])
	}
	writeJSON(w, http.StatusOK, page)
}

// StatBucket is one row of GET /v1/stats: message.status events per day and
// the requested grouping.
type StatBucket struct {
	Day     string `json:"day"`
	OrgNr   string `json:"orgnr,omitempty"`
	Service string `json:"service,omitempty"`
	Status  string `json:"status,omitempty"`
	Count   int    `json:"count"`
}

var statColumns = []string{"orgnr", "service", "status"}

// stats counts message.status events per UTC day over [from, to).
func (d *db) stats(ctx context.Context, groupBy []string, from, to time.Time) ([]StatBucket, error) {
	months, err := d.readPartitions(ctx)
	if err != nil {
		return nil, err
	}
	parts, group := []string{}, "day"
	for _, c := range []string{"orgnr", "service", "status"} {
		if slices.Contains(groupBy, c) {
			parts = append(parts, "coalesce("+c+", '')")
			group += ", " + c
		} else {
			parts = append(parts, "''")
		}
	}
	sel := strings.Join(parts, ", ")
	merged := map[StatBucket]int{}
	var order []StatBucket
	for _, m := range months {
		if !from.IsZero() && m < monthOf(from) || !to.IsZero() && m > monthOf(to) {
			continue
		}
		q := `SELECT strftime('%Y-%m-%d', occurred_at / 1000000000, 'unixepoch') AS day, ` + sel + `, count(*)
			FROM ` + partitionTable(m) + ` WHERE type = 'message.status' AND occurred_at >= ? AND occurred_at < ?
			GROUP BY ` + group + ` ORDER BY ` + group
		lo, hi := int64(0), int64(1<<63-1)
		if !from.IsZero() {
			lo = from.UnixNano()
		}
		if !to.IsZero() {
			hi = to.UnixNano()
		}
		rows, err := d.r.QueryContext(ctx, q, lo, hi)
		if err != nil {
			return nil, fmt.Errorf("querying stats: %w", err)
		}
		for rows.Next() {
			var b StatBucket
			var n int
			if err := rows.Scan(&b.Day, &b.OrgNr, &b.Service, &b.Status, &n); err != nil {
				rows.Close()
				return nil, fmt.Errorf("reading stats: %w", err)
			}
			if _, ok := merged[b]; !ok {
				order = append(order, b)
			}
			merged[b] += n
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("reading stats: %w", err)
		}
	}
	out := make([]StatBucket, 0, len(order))
	for _, b := range order {
		b.Count = merged[b]
		out = append(out, b)
	}
	return out, nil
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if iv := q.Get("interval"); iv != "" && iv != "day" {
		writeJSON(w, http.StatusBadRequest, apiError{"interval must be day"})
		return
	}
	var groupBy []string
	if g := q.Get("group_by"); g != "" {
		for _, f := range strings.Split(g, ",") {
			if !slices.Contains(statColumns, f) {
				writeJSON(w, http.StatusBadRequest, apiError{"group_by takes orgnr, service, status"})
				return
			}
			groupBy = append(groupBy, f)
		}
	}
	from, err := parseTimeParam(r, "from")
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	to, err := parseTimeParam(r, "to")
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	b, err := s.db.stats(r.Context(), groupBy, from, to)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"interval": "day", "buckets": b})
}

// Installation is one row of the fleet view.
type Installation struct {
	InstallationID      string     `json:"installation_id"`
	OrgNr               string     `json:"orgnr"`
	Version             string     `json:"version"`
	OS                  string     `json:"os,omitempty"`
	Arch                string     `json:"arch,omitempty"`
	Channels            []string   `json:"channels,omitempty"`
	StartedAt           *time.Time `json:"started_at,omitempty"`
	LastSeen            time.Time  `json:"last_seen"`
	CertificateNotAfter *time.Time `json:"certificate_not_after,omitempty"`
}

func (d *db) installations(ctx context.Context, where string, args ...any) ([]Installation, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT installation_id, orgnr, version, os, arch, channels, started_at,
		last_seen, cert_not_after FROM installation WHERE `+where+` ORDER BY version DESC, last_seen DESC`, args...)
	if err != nil {
		return nil, fmt.Errorf("querying installations: %w", err)
	}
	defer rows.Close()
	out := []Installation{}
	for rows.Next() {
		var in Installation
		var channels string
		var started, notAfter sql.NullInt64
		var seen int64
		if err := rows.Scan(&in.InstallationID, &in.OrgNr, &in.Version, &in.OS, &in.Arch, &channels, &started,
			&seen, &notAfter); err != nil {
			return nil, fmt.Errorf("reading installations: %w", err)
		}
		if channels != "" {
			in.Channels = strings.Split(channels, ",")
		}
		in.LastSeen = time.Unix(0, seen).UTC()
		if started.Valid {
			t := time.Unix(0, started.Int64).UTC()
			in.StartedAt = &t
		}
		if notAfter.Valid {
			t := time.Unix(0, notAfter.Int64).UTC()
			in.CertificateNotAfter = &t
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

func (s *Server) installations(w http.ResponseWriter, r *http.Request) {
	where, args := `1=1`, []any{}
	if v := r.URL.Query().Get("version"); v != "" {
		where += ` AND version = ?`
		args = append(args, v)
	}
	before, err := parseTimeParam(r, "last_seen_before")
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	if !before.IsZero() {
		where += ` AND last_seen < ?`
		args = append(args, before.UnixNano())
	}
	in, err := s.db.installations(r.Context(), where, args...)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"installations": in})
}

// pseudonymEvents needs both the pseudonym and the org that computed it: a
// pseudonym only means something within its agency's key.
func (s *Server) pseudonymEvents(w http.ResponseWriter, r *http.Request) {
	org := r.URL.Query().Get("orgnr")
	if !ident.ValidOrgNumber(org) {
		writeJSON(w, http.StatusBadRequest, apiError{"orgnr is required: a pseudonym is only meaningful with its agency"})
		return
	}
	p := r.PathValue("pseudonym")
	evs, err := s.db.queryEvents(r.Context(), eventFilter{
		where: `orgnr = ? AND receiver_pseudonym = ? AND type = ?`, args: []any{org, p, string(events.TypeMessageStatus)},
	})
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if evs == nil {
		evs = []StoredEvent{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": evs})
}

package api

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/message"
	"github.com/efm-go/efm/integrasjonspunkt/sbd"
	"github.com/efm-go/efm/integrasjonspunkt/store"
)

// conversationJSON is local-api.md §7.1. pollable is internal and never
// serialised; null values are omitted.
type conversationJSON struct {
	ID                      int64            `json:"id"`
	ConversationID          string           `json:"conversationId"`
	MessageID               string           `json:"messageId"`
	Sender                  string           `json:"sender,omitempty"`
	SenderIdentifier        string           `json:"senderIdentifier,omitempty"`
	Receiver                string           `json:"receiver,omitempty"`
	ReceiverIdentifier      string           `json:"receiverIdentifier,omitempty"`
	ProcessIdentifier       string           `json:"processIdentifier,omitempty"`
	DocumentIdentifier      string           `json:"documentIdentifier,omitempty"`
	MessageReference        string           `json:"messageReference,omitempty"`
	MessageTitle            string           `json:"messageTitle"`
	LastUpdate              string           `json:"lastUpdate"`
	Finished                bool             `json:"finished"`
	Expiry                  string           `json:"expiry,omitempty"`
	Direction               string           `json:"direction"`
	ServiceIdentifier       string           `json:"serviceIdentifier,omitempty"`
	ExternalSystemReference string           `json:"externalSystemReference,omitempty"`
	MessageStatuses         []convStatusJSON `json:"messageStatuses"`
}

type convStatusJSON struct {
	ID          int64  `json:"id"`
	LastUpdate  string `json:"lastUpdate"`
	Status      string `json:"status"`
	Description string `json:"description,omitempty"`
}

// statusJSON is local-api.md §8.1.
type statusJSON struct {
	ID             int64  `json:"id"`
	ConvID         int64  `json:"convId"`
	MessageID      string `json:"messageId"`
	ConversationID string `json:"conversationId"`
	Status         string `json:"status"`
	Description    string `json:"description,omitempty"`
	LastUpdate     string `json:"lastUpdate"`
	RawReceipt     string `json:"rawReceipt,omitempty"`
}

func timeJSON(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return sbd.FormatTime(t)
}

func toConversation(c *store.Conversation) conversationJSON {
	j := conversationJSON{ID: c.ID, ConversationID: c.ConversationID, MessageID: c.MessageID, Sender: c.Sender,
		SenderIdentifier: c.SenderIdentifier, Receiver: c.Receiver, ReceiverIdentifier: c.ReceiverIdentifier,
		ProcessIdentifier: c.ProcessIdentifier, DocumentIdentifier: c.DocumentIdentifier, MessageReference: c.MessageReference,
		MessageTitle: c.MessageTitle, LastUpdate: timeJSON(c.LastUpdate), Finished: c.Finished, Expiry: timeJSON(c.Expiry),
		Direction: c.Direction, ServiceIdentifier: c.ServiceIdentifier, ExternalSystemReference: c.ExternalSystemReference,
		MessageStatuses: make([]convStatusJSON, 0, len(c.Statuses))}
	for _, st := range c.Statuses {
		j.MessageStatuses = append(j.MessageStatuses, convStatusJSON{ID: st.ID, LastUpdate: timeJSON(st.LastUpdate), Status: st.Status, Description: st.Description})
	}
	return j
}

func toStatus(st store.Status) statusJSON {
	return statusJSON{ID: st.ID, ConvID: st.ConvID, MessageID: st.MessageID, ConversationID: st.ConversationID,
		Status: st.Status, Description: st.Description, LastUpdate: timeJSON(st.LastUpdate), RawReceipt: st.RawReceipt}
}

var defaultConversationSort = []store.Order{{Property: "lastUpdate", Desc: true}}

func boolParam(v, name string) (*bool, error) {
	if v == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(strings.ToLower(v))
	if err != nil {
		return nil, badParam(name, v)
	}
	return &b, nil
}

func (s *Server) listConversations(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := store.ConversationFilter{MessageID: q.Get("messageId"), ConversationID: q.Get("conversationId"),
		Sender: q.Get("sender"), Receiver: q.Get("receiver"), SenderIdentifier: bareIdentifier(q.Get("senderIdentifier")),
		ReceiverIdentifier: bareIdentifier(q.Get("receiverIdentifier")), Service: q.Get("serviceIdentifier"),
		Direction: q.Get("direction")}
	if f.Service != "" && !slices.Contains(message.Channels, f.Service) {
		return badParam("serviceIdentifier", f.Service)
	}
	if f.Direction != "" && f.Direction != message.Outgoing && f.Direction != message.Incoming {
		return badParam("direction", f.Direction)
	}
	if q.Has("messageReference") {
		f.HasReference, f.MessageReference = true, q.Get("messageReference")
	}
	if q.Has("messageTitle") {
		f.HasTitle, f.MessageTitle = true, q.Get("messageTitle")
	}
	var err error
	if f.Pollable, err = boolParam(q.Get("pollable"), "pollable"); err != nil {
		return err
	}
	if f.Finished, err = boolParam(q.Get("finished"), "finished"); err != nil {
		return err
	}
	if v := q.Get("lastUpdateFrom"); v != "" {
		d, err := time.ParseInLocation(time.DateOnly, v, sbd.Oslo)
		if err != nil {
			return badParam("lastUpdateFrom", v)
		}
		f.From = d
	}
	if v := q.Get("lastUpdateTo"); v != "" {
		d, err := time.ParseInLocation(time.DateOnly, v, sbd.Oslo)
		if err != nil {
			return badParam("lastUpdateTo", v)
		}
		f.To = d.AddDate(0, 0, 1).Add(-time.Millisecond)
	}
	return s.conversationPage(w, r, f)
}

func (s *Server) conversationPage(w http.ResponseWriter, r *http.Request, f store.ConversationFilter) error {
	p := pageRequest(r.URL.Query(), defaultConversationSort)
	cs, total, err := s.d.Store.ListConversations(r.Context(), f, p)
	if err != nil {
		return err
	}
	out := make([]conversationJSON, len(cs))
	for i, c := range cs {
		out[i] = toConversation(c)
	}
	writePage(w, out, p, total)
	return nil
}

func (s *Server) conversationQueue(w http.ResponseWriter, r *http.Request) error {
	t := true
	return s.conversationPage(w, r, store.ConversationFilter{Pollable: &t})
}

func numericID(r *http.Request, name string) (int64, error) {
	v := r.PathValue(name)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, badParam(name, v)
	}
	return n, nil
}

func (s *Server) getConversation(w http.ResponseWriter, r *http.Request) error {
	id, err := numericID(r, "id")
	if err != nil {
		return err
	}
	c, err := s.d.Store.GetConversation(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.Direction != message.Outgoing) {
		return &message.Error{Status: http.StatusNotFound, Name: message.NameConversationNotFound,
			Message: "Conversation with id=" + strconv.FormatInt(id, 10) + " not found"}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toConversation(c))
	return nil
}

func (s *Server) deleteConversation(w http.ResponseWriter, r *http.Request) error {
	id, err := numericID(r, "id")
	if err != nil {
		return err
	}
	if err := s.d.Store.DeleteConversation(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) getConversationByMessageID(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("messageId")
	c, err := s.d.Store.ConversationByMessageID(r.Context(), id, message.Outgoing)
	if errors.Is(err, store.ErrNotFound) {
		return &message.Error{Status: http.StatusNotFound, Name: message.NameMessageNotFound, Message: "Message with messageId=" + id + " not found"}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toConversation(c))
	return nil
}

func (s *Server) deleteConversationsByMessageID(w http.ResponseWriter, r *http.Request) error {
	if err := s.d.Store.DeleteConversationsByMessageID(r.Context(), r.PathValue("messageId")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

var defaultStatusSort = []store.Order{{Property: "id"}}

func (s *Server) listStatuses(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := store.StatusFilter{MessageID: q.Get("messageId"), ConversationID: q.Get("conversationId"), Status: q.Get("status")}
	if v := q.Get("id"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return badParam("id", v)
		}
		f.ID = n
	}
	from, to := q.Get("fromDateTime"), q.Get("toDateTime")
	if from != "" && to != "" {
		// An unencoded + arrives as a space.
		ft, err1 := sbd.ParseTime(strings.ReplaceAll(from, " ", "+"))
		tt, err2 := sbd.ParseTime(strings.ReplaceAll(to, " ", "+"))
		if err1 != nil {
			return badParam("fromDateTime", from)
		}
		if err2 != nil {
			return badParam("toDateTime", to)
		}
		f.From, f.To = ft, tt
	}
	return s.statusPage(w, r, f, "application/json")
}

func (s *Server) statusPage(w http.ResponseWriter, r *http.Request, f store.StatusFilter, ct string) error {
	p := pageRequest(r.URL.Query(), defaultStatusSort)
	sts, total, err := s.d.Store.ListStatuses(r.Context(), f, p)
	if err != nil {
		return err
	}
	out := make([]statusJSON, len(sts))
	for i, st := range sts {
		out[i] = toStatus(st)
	}
	w.Header().Set("Content-Type", ct)
	writePage(w, out, p, total)
	return nil
}

func (s *Server) statusesOf(w http.ResponseWriter, r *http.Request) error {
	return s.statusPage(w, r, store.StatusFilter{MessageID: r.PathValue("messageId")}, "application/json; charset=utf-8")
}

func (s *Server) peekStatus(w http.ResponseWriter, r *http.Request) error {
	st, err := s.d.Store.PeekStatusQueue(r.Context())
	if errors.Is(err, store.ErrNotFound) {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toStatus(st))
	return nil
}

func (s *Server) deleteQueuedStatus(w http.ResponseWriter, r *http.Request) error {
	id, err := numericID(r, "id")
	if err != nil {
		return err
	}
	err = s.d.Store.DeleteFromStatusQueue(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		w.WriteHeader(http.StatusNotFound) // empty body, as the reference (local-api.md §8.5)
		return nil
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

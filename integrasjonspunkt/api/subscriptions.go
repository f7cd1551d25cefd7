package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/efm-go/efm/integrasjonspunkt/message"
	"github.com/efm-go/efm/integrasjonspunkt/sbd"
	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/integrasjonspunkt/webhook"
	"github.com/efm-go/efm/internal/logattr"
)

// subscriptionJSON is local-api.md §9.1.
type subscriptionJSON struct {
	ID           int64  `json:"id"`
	Name         string `json:"name"`
	PushEndpoint string `json:"pushEndpoint"`
	Resource     string `json:"resource"`
	Event        string `json:"event"`
	Filter       string `json:"filter,omitempty"`
}

// subscriptionInput is a create or update body; pointers tell absent from
// empty for the partial update.
type subscriptionInput struct {
	ID           json.RawMessage `json:"id"`
	Name         *string         `json:"name"`
	PushEndpoint *string         `json:"pushEndpoint"`
	Resource     *string         `json:"resource"`
	Event        *string         `json:"event"`
	Filter       *string         `json:"filter"`
}

func toSubscription(s store.Subscription) subscriptionJSON {
	return subscriptionJSON{ID: s.ID, Name: s.Name, PushEndpoint: s.PushEndpoint, Resource: s.Resource, Event: s.Event, Filter: s.Filter}
}

// validate applies the constraints of §9.1; create demands the required
// fields and an absent id.
func (in *subscriptionInput) validate(create bool) sbd.Violations {
	var vs sbd.Violations
	add := func(path, code, msg string, rejected any) {
		vs = append(vs, sbd.Violation{Path: path, Code: code, Message: msg, Rejected: rejected})
	}
	if create && len(in.ID) > 0 && string(in.ID) != "null" {
		add("id", "Null", "must be null", json.RawMessage(in.ID))
	}
	req := func(name string, v *string) bool {
		if v == nil {
			if create {
				add(name, "NotNull", "must not be null", nil)
			}
			return false
		}
		return true
	}
	req("name", in.Name)
	if req("pushEndpoint", in.PushEndpoint) {
		u, err := url.Parse(*in.PushEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("pushEndpoint", "URL", "must be a valid URL", *in.PushEndpoint)
		}
	}
	if req("resource", in.Resource) && *in.Resource != "all" && *in.Resource != "messages" {
		add("resource", "OneOf", "must be one of all, messages", *in.Resource)
	}
	if req("event", in.Event) && *in.Event != "all" && *in.Event != "status" {
		add("event", "OneOf", "must be one of all, status", *in.Event)
	}
	if in.Filter != nil {
		if _, err := webhook.ParseFilter(*in.Filter); err != nil {
			add("filter", "WebhookFilter", err.Error(), *in.Filter)
		}
	}
	return vs
}

func (s *Server) readSubscription(w http.ResponseWriter, r *http.Request, create bool) (*subscriptionInput, error) {
	b, err := readJSON(w, r)
	if err != nil {
		return nil, err
	}
	var in subscriptionInput
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, notReadable(err)
	}
	if vs := in.validate(create); len(vs) > 0 {
		return nil, message.Violation(vs)
	}
	return &in, nil
}

func errSubscriptionNotFound(id int64) *message.Error {
	return &message.Error{Status: http.StatusNotFound, Name: "SubscriptionNotFoundException",
		Message: "Subscription with id=" + strconv.FormatInt(id, 10) + " not found"}
}

var errDuplicateSubscription = &message.Error{Status: http.StatusBadRequest, Name: "SubscriptionWithSameNameAndPushEndpointAlreadyExists",
	Message: "A subscription with the same name and pushEndpoint already exists"}

// ping sends the ping event; by default a failure is only logged (D7).
func (s *Server) ping(r *http.Request, endpoint string) error {
	err := s.d.Webhooks.Ping(r.Context(), endpoint)
	if err == nil {
		return nil
	}
	if s.d.StrictPing {
		return &message.Error{Status: http.StatusBadRequest, Name: "WebhookPushEndpointPingFailedException",
			Message: "The push endpoint did not answer the ping"}
	}
	s.log.WarnContext(r.Context(), "subscription ping failed", logattr.Err(err))
	return nil
}

func (s *Server) createSubscription(w http.ResponseWriter, r *http.Request) error {
	in, err := s.readSubscription(w, r, true)
	if err != nil {
		return err
	}
	sub := store.Subscription{Name: *in.Name, PushEndpoint: *in.PushEndpoint, Resource: *in.Resource, Event: *in.Event}
	if in.Filter != nil {
		sub.Filter = *in.Filter
	}
	if dup, err := s.duplicate(r, sub); err != nil || dup {
		if dup {
			return errDuplicateSubscription
		}
		return err
	}
	if err := s.ping(r, sub.PushEndpoint); err != nil {
		return err
	}
	err = s.d.Store.SaveSubscription(r.Context(), &sub)
	s.d.Webhooks.Invalidate()
	if err != nil {
		if errors.Is(err, store.ErrDuplicate) {
			return errDuplicateSubscription
		}
		return err
	}
	writeJSON(w, http.StatusOK, toSubscription(sub))
	return nil
}

// duplicate checks name and endpoint before the ping, so a refused create
// does not ping.
func (s *Server) duplicate(r *http.Request, sub store.Subscription) (bool, error) {
	all, err := s.d.Store.AllSubscriptions(r.Context())
	if err != nil {
		return false, err
	}
	for _, o := range all {
		if o.ID != sub.ID && o.Name == sub.Name && o.PushEndpoint == sub.PushEndpoint {
			return true, nil
		}
	}
	return false, nil
}

func (s *Server) updateSubscription(w http.ResponseWriter, r *http.Request) error {
	id, err := numericID(r, "id")
	if err != nil {
		return err
	}
	in, err := s.readSubscription(w, r, false)
	if err != nil {
		return err
	}
	sub, err := s.d.Store.GetSubscription(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return errSubscriptionNotFound(id)
	}
	if err != nil {
		return err
	}
	oldEndpoint := sub.PushEndpoint
	for _, f := range []struct {
		in  *string
		out *string
	}{{in.Name, &sub.Name}, {in.PushEndpoint, &sub.PushEndpoint}, {in.Resource, &sub.Resource}, {in.Event, &sub.Event}, {in.Filter, &sub.Filter}} {
		if f.in != nil {
			*f.out = *f.in
		}
	}
	if dup, err := s.duplicate(r, sub); err != nil || dup {
		if dup {
			return errDuplicateSubscription
		}
		return err
	}
	if sub.PushEndpoint != oldEndpoint {
		if err := s.ping(r, sub.PushEndpoint); err != nil {
			return err
		}
	}
	err = s.d.Store.SaveSubscription(r.Context(), &sub)
	s.d.Webhooks.Invalidate()
	switch {
	case errors.Is(err, store.ErrDuplicate):
		return errDuplicateSubscription
	case errors.Is(err, store.ErrNotFound):
		return errSubscriptionNotFound(id)
	case err != nil:
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) listSubscriptions(w http.ResponseWriter, r *http.Request) error {
	p := pageRequest(r.URL.Query(), nil)
	subs, total, err := s.d.Store.ListSubscriptions(r.Context(), p)
	if err != nil {
		return err
	}
	out := make([]subscriptionJSON, len(subs))
	for i, sub := range subs {
		out[i] = toSubscription(sub)
	}
	writePage(w, out, p, total)
	return nil
}

func (s *Server) getSubscription(w http.ResponseWriter, r *http.Request) error {
	id, err := numericID(r, "id")
	if err != nil {
		return err
	}
	sub, err := s.d.Store.GetSubscription(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return errSubscriptionNotFound(id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toSubscription(sub))
	return nil
}

func (s *Server) deleteSubscription(w http.ResponseWriter, r *http.Request) error {
	id, err := numericID(r, "id")
	if err != nil {
		return err
	}
	err = s.d.Store.DeleteSubscription(r.Context(), id)
	s.d.Webhooks.Invalidate()
	if errors.Is(err, store.ErrNotFound) {
		return errSubscriptionNotFound(id)
	} else if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) deleteAllSubscriptions(w http.ResponseWriter, r *http.Request) error {
	err := s.d.Store.DeleteAllSubscriptions(r.Context())
	s.d.Webhooks.Invalidate()
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

package dpesim

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/efm-go/efm/transport/dpe"
	"github.com/google/uuid"
)

// maxMessage is Service Bus's message size limit on the premium tier
// (100 MB in theory, 1 MB standard); DPE's own limit is 2 MB of files.
const maxMessage = 16 << 20

func (s *Sim) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /{queue}/messages", s.send)
	mux.HandleFunc("POST /{queue}/messages/head", s.peekLock)
	mux.HandleFunc("DELETE /{queue}/messages/{messageId}/{lockToken}", s.complete)
	s.controlRoutes(mux)
}

// authorised checks the shared access signature against the request URL.
func (s *Sim) authorised(w http.ResponseWriter, r *http.Request) bool {
	sas, err := dpe.ParseSAS(r.Header.Get("Authorization"))
	if err != nil {
		http.Error(w, "MalformedToken: "+err.Error(), http.StatusUnauthorized)
		return false
	}
	key, ok := s.opts.Keys[sas.KeyName]
	if !ok || !sas.Valid(key) {
		http.Error(w, "InvalidSignature: the token has an invalid signature", http.StatusUnauthorized)
		return false
	}
	if s.opts.Now().After(sas.Expiry) {
		http.Error(w, "ExpiredToken: the token is expired", http.StatusUnauthorized)
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	uri := strings.ToLower(scheme + "://" + r.Host + r.URL.EscapedPath())
	if !strings.HasPrefix(uri, strings.ToLower(strings.TrimRight(sas.Resource, "/"))) {
		http.Error(w, "InvalidAudience: the token's resource does not cover this request", http.StatusUnauthorized)
		return false
	}
	return true
}

func (s *Sim) send(w http.ResponseWriter, r *http.Request) {
	if !s.authorised(w, r) {
		return
	}
	var props dpe.BrokerProperties
	if h := r.Header.Get("BrokerProperties"); h != "" {
		if err := json.Unmarshal([]byte(h), &props); err != nil {
			http.Error(w, "BrokerProperties is not valid JSON", http.StatusBadRequest)
			return
		}
	}
	if len(props.MessageID) > 128 {
		http.Error(w, "MessageId longer than 128 characters", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxMessage+1))
	if err != nil {
		return
	}
	if len(body) > maxMessage {
		http.Error(w, "message too large", http.StatusRequestEntityTooLarge)
		return
	}
	s.mu.Lock()
	s.enqueueLocked(r.PathValue("queue"), props, body)
	s.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
}

func (s *Sim) peekLock(w http.ResponseWriter, r *http.Request) {
	if !s.authorised(w, r) {
		return
	}
	s.mu.Lock()
	now := s.opts.Now()
	var m *message
	if q := s.queues[r.PathValue("queue")]; q != nil {
		for _, c := range q.messages {
			if now.After(c.lockedUntil) {
				m = c
				break
			}
		}
	}
	if m == nil {
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	m.lockedUntil = now.Add(time.Duration(s.sched.LockDuration))
	m.props.LockToken = uuid.NewString()
	m.props.DeliveryCount++
	m.props.LockedUntilUtc = m.lockedUntil.UTC().Format(http.TimeFormat)
	props, _ := json.Marshal(m.props)
	body := m.body
	s.mu.Unlock()
	w.Header().Set("BrokerProperties", string(props))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(body)
}

func (s *Sim) complete(w http.ResponseWriter, r *http.Request) {
	if !s.authorised(w, r) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[r.PathValue("queue")]
	if q == nil {
		http.Error(w, "queue not found", http.StatusNotFound)
		return
	}
	now := s.opts.Now()
	for i, m := range q.messages {
		if m.props.MessageID != r.PathValue("messageId") {
			continue
		}
		if m.props.LockToken != r.PathValue("lockToken") || now.After(m.lockedUntil) {
			// The lock was lost: another receiver may hold the message now.
			http.Error(w, "MessageLockLost: the lock supplied is invalid", http.StatusGone)
			return
		}
		q.messages = append(q.messages[:i], q.messages[i+1:]...)
		w.WriteHeader(http.StatusOK)
		return
	}
	http.Error(w, "message not found", http.StatusNotFound)
}

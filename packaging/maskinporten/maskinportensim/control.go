package maskinportensim

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"

	"github.com/efm-go/efm/internal/simfault"
)

// Fault is one injected failure; the first matching fault with times left wins. Its path is a
// prefix of the request path.
type Fault = simfault.Fault

// AddFault injects f.
func (s *Server) AddFault(f Fault) { s.ctl.Add(f) }

// FailNext makes the next times requests to paths starting with prefix answer status.
func (s *Server) FailNext(prefix string, status, times int) { s.ctl.FailNext(prefix, status, times) }

// SetDelay adds latency to every answer.
func (s *Server) SetDelay(d time.Duration) { s.ctl.SetDelay(d) }

// Requests returns how many requests matched route ("POST /token"); "" gives the total.
func (s *Server) Requests(route string) int { return s.ctl.Requests(route) }

// Issued returns how many tokens were issued.
func (s *Server) Issued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// Reset clears faults, delay, counters and the jti replay memory; clients stay.
func (s *Server) Reset() {
	s.ctl.Reset()
	s.forget()
}

func (s *Server) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issued, s.seenJTI = 0, map[string]time.Time{}
}

func (s *Server) registerControl() {
	s.ctl = simfault.New(simfault.Options{
		StatusAnswer:  simfault.OAuthError,
		ExtraCounters: func() map[string]int { return map[string]int{"issued": s.Issued()} },
		OnReset:       s.forget,
	})
	s.ctl.Routes(s.mux)
	s.mux.HandleFunc("POST /_sim/clients", func(w http.ResponseWriter, r *http.Request) {
		var c Client
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&c); err != nil || c.ID == "" {
			http.Error(w, "client with id, orgNumber and scopes expected", http.StatusBadRequest)
			return
		}
		s.AddClient(c)
		w.WriteHeader(http.StatusNoContent)
	})
	s.handler = s.ctl.Wrap(s.mux)
}

func decodeB64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(s)
}

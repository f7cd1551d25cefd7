package maskinportensim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Fault is one injected failure; the first matching fault with times left wins.
type Fault struct {
	// Path is a prefix of the request path; empty matches every path.
	Path string `json:"path"`
	// Status, when non-zero, is answered instead of the real answer.
	Status int `json:"status,omitempty"`
	// Times is how many requests the fault affects; 0 means until reset.
	Times int `json:"times,omitempty"`
	// DelayMs delays the answer.
	DelayMs int `json:"delayMs,omitempty"`
	// Drop closes the connection without an answer.
	Drop bool `json:"drop,omitempty"`
	// Malformed answers the real status with the body cut in half.
	Malformed bool `json:"malformed,omitempty"`
}

type control struct {
	mu     sync.Mutex
	faults []*Fault
	delay  time.Duration
	total  int
	routes map[string]int
}

// AddFault injects f.
func (s *Server) AddFault(f Fault) {
	s.ctl.mu.Lock()
	defer s.ctl.mu.Unlock()
	s.ctl.faults = append(s.ctl.faults, &f)
}

// FailNext makes the next times requests to paths starting with prefix answer status.
func (s *Server) FailNext(prefix string, status, times int) {
	s.AddFault(Fault{Path: prefix, Status: status, Times: times})
}

// SetDelay adds latency to every answer.
func (s *Server) SetDelay(d time.Duration) {
	s.ctl.mu.Lock()
	defer s.ctl.mu.Unlock()
	s.ctl.delay = d
}

// Requests returns how many requests matched route ("POST /token"); "" gives the total.
func (s *Server) Requests(route string) int {
	s.ctl.mu.Lock()
	defer s.ctl.mu.Unlock()
	if route == "" {
		return s.ctl.total
	}
	return s.ctl.routes[route]
}

// Issued returns how many tokens were issued.
func (s *Server) Issued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// Reset clears faults, delay, counters and the jti replay memory; clients stay.
func (s *Server) Reset() {
	s.ctl.mu.Lock()
	s.ctl.faults, s.ctl.delay, s.ctl.total, s.ctl.routes = nil, 0, 0, map[string]int{}
	s.ctl.mu.Unlock()
	s.mu.Lock()
	s.issued, s.seenJTI = 0, map[string]time.Time{}
	s.mu.Unlock()
}

// apply counts the request and applies a fault. It reports whether the answer was given,
// and whether the real answer must be sent malformed.
func (c *control) apply(w http.ResponseWriter, r *http.Request, route string) (done, malformed bool) {
	c.mu.Lock()
	c.total++
	c.routes[route]++
	delay := c.delay
	var fault *Fault
	for i, f := range c.faults {
		if !strings.HasPrefix(r.URL.Path, f.Path) {
			continue
		}
		ff := *f
		fault = &ff
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				c.faults = append(c.faults[:i:i], c.faults[i+1:]...)
			}
		}
		break
	}
	c.mu.Unlock()
	if fault != nil {
		delay += time.Duration(fault.DelayMs) * time.Millisecond
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return true, false
		}
	}
	if fault == nil {
		return false, false
	}
	switch {
	case fault.Drop:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return true, false
			}
		}
		panic(http.ErrAbortHandler)
	case fault.Status != 0:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(fault.Status)
		w.Write([]byte(`{"error":"server_error","error_description":"injected by maskinportensim"}`))
		return true, false
	}
	return false, fault.Malformed
}

func (s *Server) registerControl() {
	s.mux.HandleFunc("POST /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&f); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.AddFault(f)
		w.WriteHeader(http.StatusNoContent)
	})
	s.mux.HandleFunc("DELETE /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		s.ctl.mu.Lock()
		s.ctl.faults = nil
		s.ctl.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	s.mux.HandleFunc("POST /_sim/delay", func(w http.ResponseWriter, r *http.Request) {
		var d struct {
			Ms int `json:"ms"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&d); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.SetDelay(time.Duration(d.Ms) * time.Millisecond)
		w.WriteHeader(http.StatusNoContent)
	})
	s.mux.HandleFunc("GET /_sim/requests", func(w http.ResponseWriter, r *http.Request) {
		s.ctl.mu.Lock()
		out := map[string]any{"total": s.ctl.total, "routes": s.ctl.routes}
		b, _ := json.Marshal(out)
		s.ctl.mu.Unlock()
		var m map[string]any
		json.Unmarshal(b, &m)
		m["issued"] = s.Issued()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(m)
	})
	s.mux.HandleFunc("POST /_sim/clients", func(w http.ResponseWriter, r *http.Request) {
		var c Client
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&c); err != nil || c.ID == "" {
			http.Error(w, "client with id, orgNumber and scopes expected", http.StatusBadRequest)
			return
		}
		s.AddClient(c)
		w.WriteHeader(http.StatusNoContent)
	})
	s.mux.HandleFunc("POST /_sim/reset", func(w http.ResponseWriter, r *http.Request) {
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
}

// serveMalformed lets the real handler answer and then sends half of its body.
func serveMalformed(w http.ResponseWriter, r *http.Request, h http.Handler) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	b := rec.Body.Bytes()
	w.Write(bytes.Clone(b[:len(b)/2]))
}

func decodeB64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(s)
}

// Package simctl is the /_sim/ control API shared by the register simulators of addressing
// (spec/channels.md §9.1): failure injection (status codes, latency, dropped connections,
// malformed bodies) and request counters per route, over HTTP for the sandbox and as Go methods
// for tests. It is not part of any real protocol.
//
// Control endpoints, all JSON:
//
//	POST   /_sim/faults    {"path": "/identifier/", "status": 503, "times": 2, "delayMs": 0,
//	                        "drop": false, "malformed": false}   add a fault; path is a prefix
//	                                                             ("" = every path), times 0 = until reset
//	DELETE /_sim/faults                                          remove all faults
//	POST   /_sim/delay     {"ms": 250}                           latency added to every answer
//	GET    /_sim/requests  → {"total": 3, "routes": {"POST /rest/v1/personer": 3}}
//	POST   /_sim/reset                                           faults, delay and counters back to zero
//
// Counters are keyed by the route pattern, never the path: paths of the SR protocol carry
// person numbers.
package simctl

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Fault is one injected failure. The first matching fault with times left wins.
type Fault struct {
	// Path is a prefix of the request path; empty matches every path.
	Path string `json:"path"`
	// Status, when non-zero, is answered instead of the real answer.
	Status int `json:"status,omitempty"`
	// Times is how many requests the fault affects; 0 means until reset.
	Times int `json:"times,omitempty"`
	// DelayMs delays the answer (the real one, or Status); a client deadline cuts it short.
	DelayMs int `json:"delayMs,omitempty"`
	// Drop closes the connection without an answer.
	Drop bool `json:"drop,omitempty"`
	// Malformed answers the real status with the body cut in half.
	Malformed bool `json:"malformed,omitempty"`
}

// Control holds the faults and counters of one simulator. Safe for concurrent use.
type Control struct {
	mu     sync.Mutex
	faults []*Fault
	delay  time.Duration
	total  int
	routes map[string]int
}

// New returns an empty Control.
func New() *Control { return &Control{routes: map[string]int{}} }

// AddFault injects f.
func (c *Control) AddFault(f Fault) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults = append(c.faults, &f)
}

// FailNext makes the next times requests whose path starts with pathPrefix answer status.
func (c *Control) FailNext(pathPrefix string, status, times int) {
	c.AddFault(Fault{Path: pathPrefix, Status: status, Times: times})
}

// SetDelay adds latency to every answer.
func (c *Control) SetDelay(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delay = d
}

// Reset clears faults, delay and counters.
func (c *Control) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults, c.delay, c.total, c.routes = nil, 0, 0, map[string]int{}
}

// Requests returns how many requests matched route (a mux pattern such as
// "POST /rest/v1/personer"); with route "" it returns the total.
func (c *Control) Requests(route string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if route == "" {
		return c.total
	}
	return c.routes[route]
}

// take records a request and returns the fault to apply, if any, and the global delay.
func (c *Control) take(path, route string) (*Fault, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total++
	c.routes[route]++
	for i, f := range c.faults {
		if !strings.HasPrefix(path, f.Path) {
			continue
		}
		ff := *f
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				c.faults = append(c.faults[:i:i], c.faults[i+1:]...)
			}
		}
		return &ff, c.delay
	}
	return nil, c.delay
}

// Register adds the /_sim/ endpoints to mux.
func (c *Control) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&f); err != nil {
			http.Error(w, "fault: "+err.Error(), http.StatusBadRequest)
			return
		}
		c.AddFault(f)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.faults = nil
		c.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /_sim/delay", func(w http.ResponseWriter, r *http.Request) {
		var d struct {
			Ms int `json:"ms"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10)).Decode(&d); err != nil || d.Ms < 0 {
			http.Error(w, `want {"ms": <non-negative integer>}`, http.StatusBadRequest)
			return
		}
		c.SetDelay(time.Duration(d.Ms) * time.Millisecond)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_sim/requests", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		out := struct {
			Total  int            `json:"total"`
			Routes map[string]int `json:"routes"`
		}{c.total, make(map[string]int, len(c.routes))}
		for k, v := range c.routes {
			out.Routes[k] = v
		}
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("POST /_sim/reset", func(w http.ResponseWriter, r *http.Request) {
		c.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
}

// Wrap returns a handler that counts and applies faults to every non-/_sim/ request before mux
// serves it.
func (c *Control) Wrap(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_sim/") {
			mux.ServeHTTP(w, r)
			return
		}
		_, route := mux.Handler(r)
		f, delay := c.take(r.URL.Path, route)
		if f != nil && f.DelayMs > 0 {
			delay += time.Duration(f.DelayMs) * time.Millisecond
		}
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		switch {
		case f == nil:
			mux.ServeHTTP(w, r)
		case f.Drop:
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler) // HTTP/2 or no hijack: abort the stream instead
		case f.Status != 0:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(f.Status)
			_, _ = w.Write([]byte(`{"error_code":"injected","error_description":"fault injected by the simulator"}`))
		case f.Malformed:
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, r)
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Del("Content-Length")
			w.WriteHeader(rec.Code)
			body := rec.Body.Bytes()
			_, _ = w.Write(bytes.Clone(body[:len(body)/2]))
		default:
			mux.ServeHTTP(w, r)
		}
	})
}

// Package simfault is the failure injection and request counting the channel
// simulators share under their /_sim/ control APIs (spec channels.md §9.1):
// answer with a status, delay, drop the connection or send a malformed body,
// a given number of times, for requests whose path matches a pattern.
//
// It is internal to transport because only the simulators beside the channel
// clients use it; it must never be imported by a client.
package simfault

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"sync"
	"time"
)

// Fault is one injected misbehaviour. Path is a path.Match pattern over the
// request path ("/broker/api/v1/filetransfer/*/upload"); Method, when set,
// must equal the request's. Times is how many matching requests it applies
// to; 0 or less means until cleared.
type Fault struct {
	Path   string   `json:"path"`
	Method string   `json:"method,omitempty"`
	Status int      `json:"status,omitempty"`
	Delay  Duration `json:"delay,omitempty"`
	Drop   bool     `json:"drop,omitempty"`  // close the connection without an answer
	Body   string   `json:"body,omitempty"`  // answer 200 with this body (malformed answers)
	After  bool     `json:"after,omitempty"` // apply Status/Drop after the real handler ran (lost answers)
	Times  int      `json:"times,omitempty"`
}

// Duration is a time.Duration that reads and writes as "250ms" in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("duration must be a string like \"250ms\": %w", err)
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Injector holds the active faults and the request counters. The zero value
// is not usable; use New.
type Injector struct {
	mu       sync.Mutex
	faults   []*Fault
	requests map[string]int
}

// New returns an Injector with no faults.
func New() *Injector { return &Injector{requests: map[string]int{}} }

// Add activates a fault.
func (in *Injector) Add(f Fault) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.faults = append(in.faults, &f)
}

// Reset clears faults and counters.
func (in *Injector) Reset() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.faults, in.requests = nil, map[string]int{}
}

// Requests returns a copy of the counters, keyed "METHOD pattern" by the
// route pattern the mux matched, so identifiers in paths never spread keys.
func (in *Injector) Requests() map[string]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make(map[string]int, len(in.requests))
	for k, v := range in.requests {
		out[k] = v
	}
	return out
}

func (in *Injector) take(r *http.Request) *Fault {
	in.mu.Lock()
	defer in.mu.Unlock()
	for i, f := range in.faults {
		if f.Method != "" && f.Method != r.Method {
			continue
		}
		if ok, _ := path.Match(f.Path, r.URL.Path); !ok {
			continue
		}
		taken := *f
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				in.faults = append(in.faults[:i:i], in.faults[i+1:]...)
			}
		}
		return &taken
	}
	return nil
}

func (in *Injector) count(key string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.requests[key]++
}

// Wrap applies faults to next's requests and counts them by route pattern.
// mux is consulted for the pattern only.
func (in *Injector) Wrap(mux *http.ServeMux, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			in.count(pattern)
		}
		f := in.take(r)
		if f == nil {
			next.ServeHTTP(w, r)
			return
		}
		if f.Delay > 0 {
			select {
			case <-time.After(time.Duration(f.Delay)):
			case <-r.Context().Done():
				return
			}
		}
		if f.After {
			// The request takes effect and its answer is lost: the case that
			// makes idempotent resends necessary.
			rec := &discard{header: http.Header{}}
			next.ServeHTTP(rec, r)
		} else if f.Status == 0 && !f.Drop && f.Body == "" {
			next.ServeHTTP(w, r)
			return
		}
		switch {
		case f.Drop:
			drop(w)
		case f.Body != "":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(f.Body))
		case f.Status != 0:
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(f.Status)
			_ = json.NewEncoder(w).Encode(map[string]any{
				"type": "about:blank", "title": http.StatusText(f.Status), "status": f.Status,
				"detail": "injected by the simulator",
			})
		default:
			drop(w)
		}
	})
}

func drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

type discard struct{ header http.Header }

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// Routes mounts the shared control endpoints on mux:
// POST /_sim/faults (a Fault), DELETE /_sim/faults, GET /_sim/requests.
func (in *Injector) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil || f.Path == "" {
			http.Error(w, "body must be a fault with a path", http.StatusBadRequest)
			return
		}
		if _, err := path.Match(f.Path, "/"); err != nil {
			http.Error(w, "bad path pattern", http.StatusBadRequest)
			return
		}
		in.Add(f)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		in.mu.Lock()
		in.faults = nil
		in.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_sim/requests", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, in.Requests())
	})
}

// WriteJSON answers with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Package simfault is the /_sim/ control API every simulator of an external service serves
// (spec/channels.md §9.1): injected failures (a status, latency, a dropped connection, a
// malformed or substituted body, an answer lost after the request took effect) and request
// counters, over HTTP for the sandbox and as Go methods for tests. It is not part of any real
// protocol, and only simulators may import it.
//
// Control endpoints, all JSON:
//
//	POST   /_sim/faults    a Fault: {"path": "/identifier/", "method": "GET", "status": 503,
//	                       "times": 2, "delay": "250ms", "delayMs": 0, "drop": false,
//	                       "malformed": false, "body": "", "after": false}
//	DELETE /_sim/faults    remove all faults
//	POST   /_sim/delay     {"ms": 250}   latency added to every answer
//	GET    /_sim/requests  {"total": 3, "routes": {"POST /token": 3}}, or with
//	                       Options.FlatRequests {"POST /token": 3}
//	POST   /_sim/reset     faults, delay and counters back to zero, then Options.OnReset
//
// Counters are keyed by the route pattern the mux matched, never by the request path: paths
// of several protocols carry national identity numbers.
package simfault

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync"
	"time"
)

// Match is how Fault.Path selects requests.
type Match int

const (
	// Prefix matches paths starting with Fault.Path; "" matches every path. The registers'
	// simulators use it.
	Prefix Match = iota
	// Pattern matches with path.Match ("/broker/api/v1/filetransfer/*/upload"); a fault must
	// have a path. The channels' simulators use it.
	Pattern
)

// Fault is one injected misbehaviour. The first matching fault with times left wins.
type Fault struct {
	// Path selects requests by their path, as Options.Match says.
	Path string `json:"path"`
	// Method, when set, must equal the request's.
	Method string `json:"method,omitempty"`
	// Status, when non-zero, is answered instead of the real answer.
	Status int `json:"status,omitempty"`
	// Times is how many requests the fault affects; 0 or less means until cleared.
	Times int `json:"times,omitempty"`
	// Delay and DelayMs (both count) hold the answer back; a client deadline cuts it short.
	Delay   Duration `json:"delay,omitempty"`
	DelayMs int      `json:"delayMs,omitempty"`
	// Drop closes the connection without an answer.
	Drop bool `json:"drop,omitempty"`
	// Malformed answers the real status with the real body cut in half.
	Malformed bool `json:"malformed,omitempty"`
	// Body answers 200 with this body instead of the real one.
	Body string `json:"body,omitempty"`
	// After lets the real handler run first and then applies Status, Drop or Body (a drop when
	// none is set): the request takes effect and its answer is lost, the case that makes
	// idempotent resends necessary.
	After bool `json:"after,omitempty"`
}

func (f *Fault) delay() time.Duration {
	return time.Duration(f.Delay) + time.Duration(f.DelayMs)*time.Millisecond
}

// Duration is a time.Duration that reads and writes as "250ms" in JSON (a bare number is
// read as nanoseconds).
type Duration time.Duration

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "250ms" or a number of nanoseconds.
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
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// StatusAnswer gives the content type and body of an injected status, in the error format of
// the simulated service.
type StatusAnswer func(status int) (contentType string, body []byte)

// ProblemJSON answers RFC 9457 problem details, as the Altinn APIs do.
func ProblemJSON(status int) (string, []byte) {
	b, _ := json.Marshal(map[string]any{
		"type": "about:blank", "title": http.StatusText(status), "status": status,
		"detail": "injected by the simulator",
	})
	return "application/problem+json", append(b, '\n')
}

// ErrorCodeJSON answers {"error_code", "error_description"}, as the Service Registry does.
func ErrorCodeJSON(int) (string, []byte) {
	return "application/json", []byte(`{"error_code":"injected","error_description":"fault injected by the simulator"}`)
}

// OAuthError answers an OAuth 2.0 error, as Maskinporten does.
func OAuthError(int) (string, []byte) {
	return "application/json", []byte(`{"error":"server_error","error_description":"injected by the simulator"}`)
}

// Options configure an Injector. The zero value suits the registers' simulators.
type Options struct {
	Match Match
	// StatusAnswer writes injected statuses; nil means ProblemJSON.
	StatusAnswer StatusAnswer
	// FlatRequests serves GET /_sim/requests as a bare {"route": n} object instead of
	// {"total": n, "routes": {...}}.
	FlatRequests bool
	// ExtraCounters adds its entries to the object of GET /_sim/requests (not with
	// FlatRequests), for counters of the simulator's own such as tokens issued.
	ExtraCounters func() map[string]int
	// OnReset runs after POST /_sim/reset cleared the injector: the simulator forgets its own
	// state there.
	OnReset func()
}

// Injector holds the active faults, the global delay and the request counters of one
// simulator. Safe for concurrent use; the zero value is not usable, use New.
type Injector struct {
	opts Options

	mu     sync.Mutex
	faults []*Fault
	delay  time.Duration
	total  int
	routes map[string]int
}

// New returns an Injector with no faults.
func New(opts Options) *Injector {
	if opts.StatusAnswer == nil {
		opts.StatusAnswer = ProblemJSON
	}
	return &Injector{opts: opts, routes: map[string]int{}}
}

// Add activates f.
func (in *Injector) Add(f Fault) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.faults = append(in.faults, &f)
}

// AddFault is Add under the name the simulators export.
func (in *Injector) AddFault(f Fault) { in.Add(f) }

// FailNext makes the next times requests whose path matches path answer status.
func (in *Injector) FailNext(path string, status, times int) {
	in.Add(Fault{Path: path, Status: status, Times: times})
}

// ClearFaults removes every fault and keeps delay and counters.
func (in *Injector) ClearFaults() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.faults = nil
}

// SetDelay adds latency to every answer.
func (in *Injector) SetDelay(d time.Duration) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.delay = d
}

// Reset clears faults, delay and counters. It does not run Options.OnReset: a simulator's
// own Reset decides what else to forget.
func (in *Injector) Reset() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.faults, in.delay, in.total, in.routes = nil, 0, 0, map[string]int{}
}

// Requests returns how many requests matched route (a mux pattern such as
// "POST /rest/v1/personer"); with route "" it returns the total, unrouted requests included.
func (in *Injector) Requests(route string) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	if route == "" {
		return in.total
	}
	return in.routes[route]
}

// Counts returns a copy of the counters by route pattern.
func (in *Injector) Counts() map[string]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return maps.Clone(in.routes)
}

func (in *Injector) matches(f *Fault, r *http.Request) bool {
	if f.Method != "" && f.Method != r.Method {
		return false
	}
	if in.opts.Match == Pattern {
		ok, _ := path.Match(f.Path, r.URL.Path)
		return ok
	}
	return strings.HasPrefix(r.URL.Path, f.Path)
}

// take counts r under route and returns the fault to apply, if any, and the global delay.
func (in *Injector) take(r *http.Request, route string) (*Fault, time.Duration) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.total++
	if route != "" {
		in.routes[route]++
	}
	for i, f := range in.faults {
		if !in.matches(f, r) {
			continue
		}
		taken := *f
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				in.faults = append(in.faults[:i:i], in.faults[i+1:]...)
			}
		}
		return &taken, in.delay
	}
	return nil, in.delay
}

// Wrap returns a handler that counts every request outside /_sim/ by the route mux matches,
// applies faults and delay to it, and otherwise lets mux serve it.
func (in *Injector) Wrap(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_sim/") {
			mux.ServeHTTP(w, r)
			return
		}
		_, route := mux.Handler(r)
		f, delay := in.take(r, route)
		if f != nil {
			delay += f.delay()
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
		case f.After:
			mux.ServeHTTP(&discard{header: http.Header{}}, r)
			if f.Status == 0 && f.Body == "" {
				drop(w)
				return
			}
			in.answer(w, f)
		case f.Drop:
			drop(w)
		case f.Status != 0 || f.Body != "":
			in.answer(w, f)
		case f.Malformed:
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, r)
			maps.Copy(w.Header(), rec.Header())
			w.Header().Del("Content-Length")
			w.WriteHeader(rec.Code)
			body := rec.Body.Bytes()
			_, _ = w.Write(bytes.Clone(body[:len(body)/2]))
		default:
			mux.ServeHTTP(w, r)
		}
	})
}

// answer writes f's Drop, Body or Status in place of the real answer.
func (in *Injector) answer(w http.ResponseWriter, f *Fault) {
	switch {
	case f.Drop:
		drop(w)
	case f.Body != "":
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(f.Body))
	default:
		ct, body := in.opts.StatusAnswer(f.Status)
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(f.Status)
		_, _ = w.Write(body)
	}
}

func drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // HTTP/2 or no hijack: abort the stream instead
}

type discard struct{ header http.Header }

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// Routes mounts the control endpoints on mux.
func (in *Injector) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&f); err != nil {
			http.Error(w, "fault: "+err.Error(), http.StatusBadRequest)
			return
		}
		if in.opts.Match == Pattern {
			if f.Path == "" {
				http.Error(w, "body must be a fault with a path", http.StatusBadRequest)
				return
			}
			if _, err := path.Match(f.Path, "/"); err != nil {
				http.Error(w, "bad path pattern", http.StatusBadRequest)
				return
			}
		}
		in.Add(f)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		in.ClearFaults()
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
		in.SetDelay(time.Duration(d.Ms) * time.Millisecond)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_sim/requests", func(w http.ResponseWriter, r *http.Request) {
		if in.opts.FlatRequests {
			WriteJSON(w, http.StatusOK, in.Counts())
			return
		}
		out := map[string]any{}
		if in.opts.ExtraCounters != nil {
			for k, v := range in.opts.ExtraCounters() {
				out[k] = v
			}
		}
		in.mu.Lock()
		out["total"], out["routes"] = in.total, maps.Clone(in.routes)
		in.mu.Unlock()
		WriteJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /_sim/reset", func(w http.ResponseWriter, r *http.Request) {
		in.Reset()
		if in.opts.OnReset != nil {
			in.opts.OnReset()
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// WriteJSON answers with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

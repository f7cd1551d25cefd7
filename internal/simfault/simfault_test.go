package simfault

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sim is a tiny simulator: its handler counts how often the real answer was computed, so
// tests can tell "answer lost after the fact" from "never reached".
type sim struct {
	in   *Injector
	srv  *httptest.Server
	real atomic.Int32
}

func newSim(t *testing.T, opts Options) *sim {
	t.Helper()
	s := &sim{in: New(opts)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /person/{pid}", func(w http.ResponseWriter, r *http.Request) {
		s.real.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"name":"Ola Nordmann","pid":"`+r.PathValue("pid")+`"}`)
	})
	mux.HandleFunc("POST /upload/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.real.Add(1)
		w.WriteHeader(http.StatusCreated)
	})
	s.in.Routes(mux)
	s.srv = httptest.NewServer(s.in.Wrap(mux))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sim) do(t *testing.T, method, path, body string) (int, string, error) {
	t.Helper()
	req, err := http.NewRequest(method, s.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func (s *sim) status(t *testing.T, method, path string) int {
	t.Helper()
	code, _, err := s.do(t, method, path, "")
	require.NoError(t, err)
	return code
}

func TestPrefixMatchAndTimes(t *testing.T) {
	s := newSim(t, Options{StatusAnswer: ErrorCodeJSON})
	s.in.FailNext("/person/", 503, 2)
	s.in.FailNext("/upload/", 500, 0) // until cleared, and never reached by /person/

	code, body, err := s.do(t, "GET", "/person/1", "")
	require.NoError(t, err)
	assert.Equal(t, 503, code)
	assert.JSONEq(t, `{"error_code":"injected","error_description":"fault injected by the simulator"}`, body)
	assert.Equal(t, 503, s.status(t, "GET", "/person/2"))
	assert.Equal(t, 200, s.status(t, "GET", "/person/3"), "times 2 is used up")
	for range 3 {
		assert.Equal(t, 500, s.status(t, "POST", "/upload/x"), "times 0 lasts")
	}
	s.in.ClearFaults()
	assert.Equal(t, 201, s.status(t, "POST", "/upload/x"))
	assert.EqualValues(t, 2, s.real.Load())

	// The empty prefix matches everything; Method narrows.
	s.in.Add(Fault{Method: "POST", Status: 418, Times: 1})
	assert.Equal(t, 200, s.status(t, "GET", "/person/4"))
	assert.Equal(t, 418, s.status(t, "POST", "/upload/y"))
}

func TestPatternMatch(t *testing.T) {
	s := newSim(t, Options{Match: Pattern})
	s.in.Add(Fault{Path: "/upload/*", Status: 429, Times: 1})
	s.in.Add(Fault{Path: "/person", Status: 500}) // a pattern, not a prefix: matches nothing here
	code, body, err := s.do(t, "POST", "/upload/abc", "")
	require.NoError(t, err)
	assert.Equal(t, 429, code)
	var p map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &p))
	assert.EqualValues(t, 429, p["status"], "problem details by default")
	assert.Equal(t, 200, s.status(t, "GET", "/person/1"))

	assert.Equal(t, http.StatusBadRequest, s.status(t, "POST", "/_sim/faults"), "no body")
	code, _, err = s.do(t, "POST", "/_sim/faults", `{"status":503}`)
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadRequest, code, "a pattern fault needs a path")
	code, _, err = s.do(t, "POST", "/_sim/faults", `{"path":"/[","status":503}`)
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadRequest, code)
	code, _, err = s.do(t, "POST", "/_sim/faults", `{"path":"/person/*","method":"GET","status":502,"times":1}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, code)
	assert.Equal(t, 502, s.status(t, "GET", "/person/1"))
	assert.Equal(t, 200, s.status(t, "GET", "/person/1"))
}

func TestDelay(t *testing.T) {
	s := newSim(t, Options{})
	s.in.Add(Fault{Path: "/person/", Delay: Duration(2 * time.Second), Times: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", s.srv.URL+"/person/1", nil)
	require.NoError(t, err)
	_, err = s.srv.Client().Do(req)
	require.ErrorIs(t, err, context.DeadlineExceeded, "the fault's delay outlasts the client's deadline")
	assert.Equal(t, 200, s.status(t, "GET", "/person/1"), "a delay-only fault then lets the real answer through")

	code, _, err := s.do(t, "POST", "/_sim/delay", `{"ms": 5000}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, code)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	req, err = http.NewRequestWithContext(ctx2, "GET", s.srv.URL+"/person/2", nil)
	require.NoError(t, err)
	_, err = s.srv.Client().Do(req)
	require.ErrorIs(t, err, context.DeadlineExceeded, "the global delay holds every answer")
	code, _, err = s.do(t, "POST", "/_sim/delay", `{"ms": -1}`)
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadRequest, code)
	s.in.SetDelay(0)
	assert.Equal(t, 200, s.status(t, "GET", "/person/3"))

	var d Duration
	require.NoError(t, json.Unmarshal([]byte(`"250ms"`), &d))
	assert.Equal(t, Duration(250*time.Millisecond), d)
	require.NoError(t, json.Unmarshal([]byte(`1000`), &d))
	assert.Equal(t, Duration(time.Microsecond), d)
	assert.Error(t, json.Unmarshal([]byte(`"soon"`), &d))
	b, err := json.Marshal(Duration(1500 * time.Millisecond))
	require.NoError(t, err)
	assert.Equal(t, `"1.5s"`, string(b))
}

func TestDropMalformedBodyAfter(t *testing.T) {
	s := newSim(t, Options{Match: Pattern})

	s.in.Add(Fault{Path: "/person/*", Drop: true, Times: 1})
	_, _, err := s.do(t, "GET", "/person/1", "")
	require.Error(t, err, "dropped connection")
	assert.Zero(t, s.real.Load(), "a plain drop never reaches the handler")

	s.in.Add(Fault{Path: "/person/*", Malformed: true, Times: 1})
	code, body, err := s.do(t, "GET", "/person/12345", "")
	require.NoError(t, err)
	assert.Equal(t, 200, code)
	assert.False(t, json.Valid([]byte(body)), "half a body: %q", body)
	assert.True(t, strings.HasPrefix(`{"name":"Ola Nordmann","pid":"12345"}`, body))

	s.in.Add(Fault{Path: "/person/*", Body: `{"name":`, Times: 1})
	code, body, err = s.do(t, "GET", "/person/1", "")
	require.NoError(t, err)
	assert.Equal(t, 200, code)
	assert.Equal(t, `{"name":`, body)

	before := s.real.Load()
	s.in.Add(Fault{Path: "/upload/*", After: true, Status: 504, Times: 1})
	assert.Equal(t, 504, s.status(t, "POST", "/upload/a"))
	assert.Equal(t, before+1, s.real.Load(), "the request took effect, its answer was lost")
	s.in.Add(Fault{Path: "/upload/*", After: true, Times: 1})
	_, _, err = s.do(t, "POST", "/upload/b", "")
	require.Error(t, err, "after with nothing else drops")
	assert.Equal(t, before+2, s.real.Load())
}

func TestCountersByRoute(t *testing.T) {
	var forgot atomic.Bool
	s := newSim(t, Options{ExtraCounters: func() map[string]int { return map[string]int{"issued": 7} },
		OnReset: func() { forgot.Store(true) }})
	s.in.FailNext("/person/", 503, 1)
	s.status(t, "GET", "/person/01017012345")
	s.status(t, "GET", "/person/02017012345")
	s.status(t, "POST", "/upload/x")
	s.status(t, "GET", "/nowhere")
	s.status(t, "GET", "/_sim/requests") // control calls are not counted

	assert.Equal(t, 2, s.in.Requests("GET /person/{pid}"), "faulted requests count too")
	assert.Equal(t, 1, s.in.Requests("POST /upload/{id}"))
	assert.Equal(t, 4, s.in.Requests(""), "total includes unrouted requests")
	assert.Equal(t, map[string]int{"GET /person/{pid}": 2, "POST /upload/{id}": 1}, s.in.Counts())

	code, body, err := s.do(t, "GET", "/_sim/requests", "")
	require.NoError(t, err)
	require.Equal(t, 200, code)
	assert.NotContains(t, body, "7012345", "paths with identity numbers never become keys")
	assert.JSONEq(t, `{"total":4,"routes":{"GET /person/{pid}":2,"POST /upload/{id}":1},"issued":7}`, body)

	require.Equal(t, http.StatusNoContent, s.status(t, "POST", "/_sim/reset"))
	assert.True(t, forgot.Load(), "OnReset ran")
	assert.Zero(t, s.in.Requests(""))
	assert.Empty(t, s.in.Counts())

	flat := newSim(t, Options{Match: Pattern, FlatRequests: true})
	flat.status(t, "GET", "/person/01017012345")
	code, body, err = flat.do(t, "GET", "/_sim/requests", "")
	require.NoError(t, err)
	require.Equal(t, 200, code)
	assert.JSONEq(t, `{"GET /person/{pid}":1}`, body)
}

func TestConcurrentTimes(t *testing.T) {
	s := newSim(t, Options{})
	s.in.FailNext("/person/", 503, 5)
	codes := make(chan int, 20)
	for range 20 {
		go func() {
			code, _, err := s.do(t, "GET", "/person/1", "")
			if err != nil {
				code = -1
			}
			codes <- code
		}()
	}
	failed := 0
	for range 20 {
		switch c := <-codes; c {
		case 503:
			failed++
		case 200:
		default:
			t.Errorf("unexpected answer %d", c)
		}
	}
	assert.Equal(t, 5, failed, "times is exact under concurrency")
	assert.Equal(t, 20, s.in.Requests("GET /person/{pid}"))
}

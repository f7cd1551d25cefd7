package api

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// maxClients bounds the client label: the User-Agent is the caller's to
// choose, and every new value would be a new series.
const maxClients = 64

// requestCounts is efm_api_requests_total{api_version,route,code,client}
// (operations.md §2.2).
type requestCounts struct {
	mu      sync.Mutex
	m       map[[4]string]uint64
	clients map[string]bool
}

func (c *requestCounts) add(major, route string, code int, client string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m, c.clients = map[[4]string]uint64{}, map[string]bool{}
	}
	if !c.clients[client] {
		if len(c.clients) >= maxClients {
			client = "other"
		} else {
			c.clients[client] = true
		}
	}
	c.m[[4]string{major, route, strconv.Itoa(code), client}]++
}

func (c *requestCounts) samples() []Sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Sample, 0, len(c.m))
	for k, n := range c.m {
		out = append(out, Sample{Name: "efm_api_requests_total", Help: "local API requests answered", Type: "counter",
			Labels: map[string]string{"api_version": k[0], "route": k[1], "code": k[2], "client": k[3]}, Value: float64(n)})
	}
	return out
}

// clientLabel is the product token of the User-Agent reduced to characters
// safe in a label; "unknown" when the caller sent none.
func clientLabel(r *http.Request) string {
	c := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return -1
	}, client(r))
	if len(c) > 32 {
		c = c[:32]
	}
	if c == "" {
		return "unknown"
	}
	return c
}

// statusRecorder keeps the status a handler wrote, for the request counter.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (read deadlines).
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countRequest serves r through next and counts it when it is an API call.
func (s *Server) countRequest(w http.ResponseWriter, r *http.Request, next func(http.ResponseWriter, *http.Request)) {
	if !strings.HasPrefix(r.URL.Path, "/api/") && r.URL.Path != "/api" {
		next(w, r)
		return
	}
	rec := &statusRecorder{ResponseWriter: w}
	next(rec, r)
	route := r.Pattern
	switch route {
	case "/":
		route = "unmatched" // unknown paths would otherwise each be a series
	case "":
		route = "refused" // answered before routing: host, cross-site, drain, disk full
	}
	major := "v1"
	code := rec.code
	if code == 0 {
		code = http.StatusOK
	}
	s.requests.add(major, route, code, clientLabel(r))
}

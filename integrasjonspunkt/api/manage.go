package api

import (
	"context"
	"net/http"
)

// Health is the answer of /manage/health: an overall status and one entry per
// component (operations.md §2.2).
type Health struct {
	Status     string               `json:"status"`
	Components map[string]Component `json:"components,omitempty"`
}

// Component is one part's health. Details are small and carry no personal data.
type Component struct {
	Status  string         `json:"status"`
	Details map[string]any `json:"details,omitempty"`
}

// Health states. DEGRADED means something outside is failing; the daemon
// still does its job as far as it can.
const (
	Up       = "UP"
	Degraded = "DEGRADED"
	Down     = "DOWN"
)

// Overall folds component states: any DOWN is DOWN, else any DEGRADED is DEGRADED.
func Overall(cs map[string]Component) string {
	st := Up
	for _, c := range cs {
		switch c.Status {
		case Down:
			return Down
		case Degraded:
			st = Degraded
		}
	}
	return st
}

func (s *Server) routes() {
	health, other := s.manageAuth(true), s.manageAuth(false)
	s.mux.Handle("GET /manage/health", health(http.HandlerFunc(s.health)))
	s.mux.Handle("GET /manage/health/liveness", health(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, Health{Status: Up})
	})))
	s.mux.Handle("GET /manage/health/readiness", health(http.HandlerFunc(s.readiness)))
	s.mux.Handle("GET /manage/info", other(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.d.Info())
	})))
	s.mux.Handle("GET /manage/sandbox", other(s.handle(s.sandbox)))
	s.mux.Handle("GET /manage/prometheus", other(http.HandlerFunc(s.prometheus)))
	s.mux.Handle("GET /manage/metrics", other(http.HandlerFunc(s.metricsJSON)))
	s.apiRoutesRegistered()
	s.uiRoutes()
	s.mux.Handle("/", s.handle(s.notFound))
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	h := s.d.Health(ctx)
	code := http.StatusOK
	if h.Status == Down {
		code = http.StatusServiceUnavailable
	}
	if r.URL.Query().Get("verbose") == "false" {
		h.Components = nil
	}
	writeJSON(w, code, h)
}

func (s *Server) readiness(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, Health{Status: Down, Components: map[string]Component{
			"shutdown": {Status: Down, Details: map[string]any{"reason": "draining"}},
		}})
		return
	}
	if err := s.d.Ready(r.Context()); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, Health{Status: Down, Components: map[string]Component{
			"readiness": {Status: Down, Details: map[string]any{"reason": err.Error()}},
		}})
		return
	}
	writeJSON(w, http.StatusOK, Health{Status: Up})
}

func (s *Server) sandbox(w http.ResponseWriter, r *http.Request) error {
	if s.d.Sandbox == nil {
		return &Error{Status: http.StatusNotFound, Message: "not running in sandbox mode"}
	}
	writeJSON(w, http.StatusOK, map[string]any{"services": s.d.Sandbox})
	return nil
}

// manageAuth is the rule of operations.md §1.7 for /manage: open on loopback,
// behind the API's basic auth otherwise, except the health probes when
// efm.manage.public-health keeps them open for a load balancer.
func (s *Server) manageAuth(health bool) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		if s.d.Loopback || (health && s.d.PublicHealth) {
			return h
		}
		return s.requireAuth(h)
	}
}

// Package api is the daemon's HTTP surface: the local API of the Java
// integration point (local-api.md) and the /manage endpoints
// (operations.md §2.2). It depends on the core's parts through the small
// interfaces in Deps, never on how they are built.
package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/message"
	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/integrasjonspunkt/webhook"
	"github.com/efm-go/efm/internal/logattr"
)

// Deps is what the server needs from the rest of the daemon.
type Deps struct {
	Logger    *slog.Logger                   // must not be nil
	Health    func(context.Context) Health   // must not be nil
	Info      func() any                     // the /manage/info body; must not be nil
	Ready     func(context.Context) error    // nil error when the API accepts messages; must not be nil
	Sandbox   []SandboxService               // nil outside sandbox mode: /manage/sandbox is then 404
	LastCheck func() *CheckReport            // the status page's last check; nil or nil result: none shown
	RunCheck  func(context.Context) error    // runs and keeps a new check (the status page's button); nil: no button
	Metrics   func(context.Context) []Sample // /manage/prometheus and /manage/metrics; nil serves none

	Loopback     bool     // bound to loopback: check the Host header against local names
	AllowedHosts []string // extra Host values accepted besides the local names
	BasicAuth    *BasicAuth
	PublicHealth bool // efm.manage.public-health

	// The local API's core; when Messages is nil only /manage is served.
	Messages *message.Service
	Store    *store.Store
	Webhooks *webhook.Notifier // must not be nil when Messages is set
	// MaxMultipartBytes caps a one-step send request (default 500 MB, 413 above).
	MaxMultipartBytes int64
	// BodyWindow and BodyMinRate free connections whose body trickles: at
	// least BodyMinRate bytes per second in every BodyWindow, else 408 and
	// the connection is closed (defaults 30 s and 8 KB/s).
	BodyWindow  time.Duration
	BodyMinRate int64
	// DiskFree tells the data dir's free bytes; below DiskMinFree
	// (efm.disk.min-free) writes to /api get 507. nil turns the check off.
	DiskFree    func() (int64, error)
	DiskMinFree int64
	// SendsStarted, when set, counts the send requests (E2-E5) served, so
	// the pipeline can leave the cores to a burst of them.
	SendsStarted *atomic.Int64
	// StrictPing makes a failed subscription ping a 400 (local-api.md §9.2).
	StrictPing bool
	// Majors describes each API major by name ("v1"): "status" (current or
	// deprecated), "sunset" (YYYY-MM-DD), "deprecated" (YYYY-MM-DD, when it
	// was deprecated) and "link" (the migration guide); operations.md §6.
	Majors map[string]map[string]string

	// Retention is the status page's retention section; nil: none shown.
	Retention func(context.Context) *RetentionReport
}

// BasicAuth is the one user of difi.security.* that /api requires when enabled.
type BasicAuth struct {
	User, Password string
}

// SandboxService is a simulated external service as /manage/sandbox lists it.
type SandboxService struct {
	Name        string            `json:"name"`
	BaseURL     string            `json:"baseUrl"`
	Description string            `json:"description,omitempty"`
	Credentials map[string]string `json:"credentials,omitempty"`
}

// Server serves the local API and /manage.
type Server struct {
	d        Deps
	log      *slog.Logger
	mux      *http.ServeMux
	draining atomic.Bool
	// csrf refuses state-changing requests a browser sends on behalf of
	// another site: the API has no session cookies, but basic auth a browser
	// remembers, and a page on any site can reach a loopback port.
	csrf *http.CrossOriginProtection
	// requests counts answered API calls for efm_api_requests_total.
	requests requestCounts
	// roomy is the last free-space reading well above the minimum (disk.go).
	roomy atomic.Pointer[diskReading]
}

// New builds the server and its routes.
func New(d Deps) *Server {
	if d.BodyWindow == 0 {
		d.BodyWindow = defaultBodyWindow
	}
	if d.BodyMinRate == 0 {
		d.BodyMinRate = defaultBodyMinRate
	}
	s := &Server{d: d, log: d.Logger.With(logattr.Component("api")), mux: http.NewServeMux(), csrf: http.NewCrossOriginProtection()}
	s.routes()
	return s
}

// Drain makes readiness DOWN and answers new POSTs with 503 and Retry-After,
// while requests already running finish (operations.md §1.8).
func (s *Server) Drain() { s.draining.Store(true) }

// ServeHTTP applies the middleware every request goes through.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.countRequest(w, r, s.serve)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	if s.d.Loopback && !s.hostAllowed(r.Host) {
		// Stops DNS rebinding: a web page in a browser on this host must not
		// reach the API under a name it controls.
		writeError(w, r, s.log, &Error{Status: http.StatusForbidden, Message: "host " + hostOnly(r.Host) + " is not allowed; add it to efm.http.allowed-hosts"})
		return
	}
	if err := s.csrf.Check(r); err != nil {
		// Client systems send neither Origin nor Sec-Fetch-Site; only a
		// browser on another site's page gets here.
		writeError(w, r, s.log, &Error{Status: http.StatusForbidden, Message: "cross-site request refused: " + r.Method + " from another origin (" + hostOnly(originHost(r)) + ")"})
		return
	}
	if s.draining.Load() && r.Method == http.MethodPost {
		h.Set("Retry-After", "30")
		writeError(w, r, s.log, &Error{Status: http.StatusServiceUnavailable, Message: "the integration point is stopping; retry shortly"})
		return
	}
	// One trailing slash is tolerated everywhere (local-api.md §2.1).
	if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") && !strings.HasSuffix(p, "//") {
		r.URL.Path = strings.TrimSuffix(p, "/")
		if r.URL.RawPath != "" {
			r.URL.RawPath = strings.TrimSuffix(r.URL.RawPath, "/")
		}
	}
	if s.refuseWhenDiskFull(w, r) {
		return
	}
	r2 := limitBodyRate(w, r, s.d.BodyWindow, s.d.BodyMinRate)
	s.mux.ServeHTTP(w, r2)
	r.Pattern = r2.Pattern // for the request counter
}

func (s *Server) hostAllowed(host string) bool {
	h := strings.ToLower(hostOnly(host))
	switch h {
	case "localhost", "127.0.0.1", "::1", "":
		return true
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return true
	}
	return slices.Contains(s.d.AllowedHosts, h)
}

// originHost names the site a refused request came from, for the answer.
func originHost(r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" {
		if u, err := url.Parse(o); err == nil && u.Host != "" {
			return u.Host
		}
	}
	return r.Header.Get("Sec-Fetch-Site")
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return strings.Trim(h, "[]")
	}
	return strings.Trim(hostport, "[]")
}

// handle adapts a handler that returns an error to the contract's error body.
func (s *Server) handle(fn func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			writeError(w, r, s.log, s.asDiskFull(err))
		}
	})
}

// requireAuth applies difi.security.* basic auth to /api, as the reference does.
func (s *Server) requireAuth(h http.Handler) http.Handler {
	if s.d.BasicAuth == nil {
		return h
	}
	want := s.d.BasicAuth
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(want.User)) != 1 ||
			subtle.ConstantTimeCompare([]byte(p), []byte(want.Password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="integrasjonspunkt"`)
			writeError(w, r, s.log, &Error{Status: http.StatusUnauthorized, Message: "full authentication is required to access this resource"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Serve serves on ln until ctx is done, then stops taking connections and
// waits up to drain for running requests before closing them.
func (s *Server) Serve(ctx context.Context, ln net.Listener, drain time.Duration, skipDrain <-chan struct{}) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.Drain()
	dctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	go func() {
		select {
		case <-skipDrain:
			cancel()
		case <-dctx.Done():
		}
	}()
	err := srv.Shutdown(dctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		s.log.Warn("drain cut short; closing running requests")
		err = srv.Close()
	}
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}

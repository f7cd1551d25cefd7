package pakkesporing

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/internal/logattr"
)

// SMTPConfig is the mail server alerts go through.
type SMTPConfig struct {
	// Addr is host:port; empty turns e-mail alerts off (they stay pending).
	Addr string
	// From is the envelope and header sender. Required with Addr.
	From string
	// Username and Password enable PLAIN auth, which net/smtp allows only over
	// TLS or to localhost.
	Username, Password string
}

// Config configures a Server.
type Config struct {
	// DBPath is the SQLite file. Required.
	DBPath string
	// Addr is where Run listens, e.g. ":8443". Required for Run only.
	Addr string
	// TLSCertificate is the server's certificate for Run. Required for Run only.
	TLSCertificate *tls.Certificate
	// ClientCAs are the roots of business certificates (SEID v1/v2; the test
	// PKI's CA in the sandbox). Ingest requires a client certificate that
	// chains to one of them. Required.
	ClientCAs *x509.CertPool
	// CRLs are the issuing CAs' revocation lists. A client certificate whose
	// issuer has a list here must not be on it, and the list must be signed
	// by that issuer. The caller refreshes them by building a new Server;
	// nil checks no revocation.
	CRLs []*x509.RevocationList
	// QueryToken authenticates central operations on the query API (Bearer)
	// and the web page (Basic, any user name, the token as password). At least
	// 16 characters. Required.
	QueryToken string
	// OnBehalfOf lists, per certificate org number, the other org numbers it may
	// send events for (på-vegne-av registrations). Nil: none.
	OnBehalfOf map[string][]string
	// Contacts maps an org number to its registered e-mail contact for alerts.
	Contacts map[string]string
	// OperationsEmail receives alerts for orgs without a contact and the
	// silent-installation alerts.
	OperationsEmail string
	// SMTP is the mail server.
	SMTP SMTPConfig
	// RetentionInterval and AlertInterval are how often Run runs the jobs;
	// zero means daily and hourly.
	RetentionInterval, AlertInterval time.Duration
	// Now is the clock; nil means time.Now. Tests pass an injected one.
	Now func() time.Time
	// Logger; nil discards.
	Logger *slog.Logger
}

// ErrConfig wraps every problem New finds in Config.
var ErrConfig = errors.New("invalid pakkesporing configuration")

func (c *Config) validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, a...)...))
	}
	if c.DBPath == "" {
		bad("database path is required")
	}
	if c.ClientCAs == nil {
		bad("client CA pool for business certificates is required")
	}
	if len(c.QueryToken) < 16 {
		bad("query token must be at least 16 characters (value masked)")
	}
	if c.SMTP.Addr != "" && c.SMTP.From == "" {
		bad("smtp from address is required when an smtp server is set")
	}
	for org, others := range c.OnBehalfOf {
		if !ident.ValidOrgNumber(org) {
			bad("on-behalf-of key %q is not an organisation number", org)
		}
		for _, o := range others {
			if !ident.ValidOrgNumber(o) {
				bad("on-behalf-of entry %q for %s is not an organisation number", o, org)
			}
		}
	}
	for org := range c.Contacts {
		if !ident.ValidOrgNumber(org) {
			bad("contact key %q is not an organisation number", org)
		}
	}
	return errors.Join(errs...)
}

// Server is one pakkesporing: ingest, store, query API, web page and jobs.
type Server struct {
	cfg Config
	log *slog.Logger
	db  *db
	mux *http.ServeMux
}

// New opens (creating when needed) the database and builds the handlers.
// Close releases the database.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RetentionInterval <= 0 {
		cfg.RetentionInterval = 24 * time.Hour
	}
	if cfg.AlertInterval <= 0 {
		cfg.AlertInterval = time.Hour
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d, err := openDB(context.Background(), cfg.DBPath)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log.With(logattr.Component("pakkesporing")), db: d, mux: http.NewServeMux()}
	s.routes()
	return s, nil
}

// Close closes the database.
func (s *Server) Close() error { return s.db.close() }

// Handler serves every route. Ingest needs the request's verified TLS client
// certificate, so the handler must sit behind a TLS listener configured by
// TLSConfig (or an equivalent one).
func (s *Server) Handler() http.Handler { return s.securityHeaders(s.mux) }

// TLSConfig is the listener configuration: the server certificate, and
// client certificates verified against ClientCAs when given. They are not
// required at the handshake, so the web page and query API (token auth) share
// the port; ingest refuses a request without one.
func (s *Server) TLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    s.cfg.ClientCAs,
		ClientAuth:   tls.VerifyClientCertIfGiven,
		MinVersion:   tls.VersionTLS12,
	}
}

// Run listens on Config.Addr with TLS and runs the retention and alert jobs
// until ctx ends, then shuts the server down.
func (s *Server) Run(ctx context.Context) error {
	if s.cfg.Addr == "" || s.cfg.TLSCertificate == nil {
		return fmt.Errorf("%w: listen address and server certificate are required to run", ErrConfig)
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, tls.NewListener(ln, s.TLSConfig(*s.cfg.TLSCertificate)))
}

// Serve serves on ln (already TLS) and runs the jobs until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving pakkesporing: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	g.Go(func() error {
		return s.every(ctx, s.cfg.RetentionInterval, "retention", func(ctx context.Context) error { _, err := s.RunRetention(ctx); return err })
	})
	g.Go(func() error {
		return s.every(ctx, s.cfg.AlertInterval, "alerts", func(ctx context.Context) error { _, err := s.RunAlerts(ctx); return err })
	})
	return g.Wait()
}

// every runs job at once and then every interval; a failing run is logged
// and retried at the next tick, never ending the service.
func (s *Server) every(ctx context.Context, interval time.Duration, name string, job func(context.Context) error) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := job(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "central job failed", slog.String("job", name), logattr.Err(err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (s *Server) securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// authorized checks the operations credential: Bearer token, or Basic with
// the token as password (what a browser can send).
func (s *Server) authorized(r *http.Request) bool {
	var got string
	if auth := r.Header.Get("Authorization"); strings.HasPrefix(auth, "Bearer ") {
		got = strings.TrimPrefix(auth, "Bearer ")
	} else if _, pw, ok := r.BasicAuth(); ok {
		got = pw
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.QueryToken)) == 1
}

// requireAuth wraps an operations route.
func (s *Server) requireAuth(browser bool, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			if browser {
				w.Header().Set("WWW-Authenticate", `Basic realm="pakkesporing", charset="UTF-8"`)
			} else {
				w.Header().Set("WWW-Authenticate", `Bearer realm="pakkesporing"`)
			}
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h(w, r)
	})
}

func (s *Server) routes() {
	s.mux.HandleFunc("POST /v1/events", s.ingest)
	s.mux.HandleFunc("GET /v1/schema", s.schema)
	s.mux.Handle("GET /v1/messages/{message_id}", s.requireAuth(false, s.getMessage))
	s.mux.Handle("GET /v1/conversations/{conversation_id}", s.requireAuth(false, s.getConversation))
	s.mux.Handle("GET /v1/events", s.requireAuth(false, s.listEvents))
	s.mux.Handle("GET /v1/stats", s.requireAuth(false, s.stats))
	s.mux.Handle("GET /v1/installations", s.requireAuth(false, s.installations))
	s.mux.Handle("GET /v1/pseudonyms/{pseudonym}/events", s.requireAuth(false, s.pseudonymEvents))
	s.mux.Handle("GET /v1/retention", s.requireAuth(false, s.retentionRuns))
	s.mux.Handle("GET /{$}", s.requireAuth(true, s.uiHome))
	s.mux.Handle("GET /ui/search", s.requireAuth(true, s.uiSearch))
	s.mux.Handle("GET /ui/messages/{message_id}", s.requireAuth(true, s.uiMessage))
	s.mux.Handle("GET /ui/orgs/{orgnr}", s.requireAuth(true, s.uiOrg))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"UP"}`))
	})
}

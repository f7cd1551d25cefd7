package integrasjonspunkt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/efm-go/efm/integrasjonspunkt/api"
	"github.com/efm-go/efm/integrasjonspunkt/config"
	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/integrasjonspunkt/message"
	"github.com/efm-go/efm/integrasjonspunkt/payload"
	"github.com/efm-go/efm/integrasjonspunkt/queue"
	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/integrasjonspunkt/webhook"
	"github.com/efm-go/efm/internal/buildinfo"
	"github.com/efm-go/efm/internal/logattr"
)

// Options are what Run needs beyond the configuration.
type Options struct {
	Config  *config.Config // validated; must not be nil
	Logger  *slog.Logger   // must not be nil
	Started time.Time      // process start, for the time-to-healthy line

	// Sandbox lists the simulated services when the daemon runs with
	// --sandbox; nil otherwise.
	Sandbox []api.SandboxService

	// SkipDrain, when closed after ctx is done, cuts the drain short: a second
	// stop signal (operations.md §1.8).
	SkipDrain <-chan struct{}

	// Listening, when set, is told the API's address once it accepts
	// connections (tests bind port 0).
	Listening func(addr net.Addr)

	// Registry answers capabilities and channel lookups for the local API
	// (an addressing resolver through message.ResolverRegistry); nil refuses
	// every lookup.
	Registry message.Registry

	// Core, when set, is given the message core once it runs: the pipeline's
	// entry points (SetStatus, Receive, ...) for tests and embedders.
	Core func(*message.Service, *queue.Queue)
}

// Run runs the daemon until ctx is done, then drains and closes everything in
// reverse order of opening.
func Run(ctx context.Context, o Options) error {
	cfg, log := o.Config, o.Logger
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("creating data dir: %w", err)
	}
	st, err := store.Open(ctx, store.Config{Path: filepath.Join(cfg.DataDir, "store.db"), Logger: log})
	if err != nil {
		return fmt.Errorf("opening store: %w", err)
	}
	defer st.Close()

	q, err := queue.Open(ctx, queue.Config{Dir: filepath.Join(cfg.DataDir, "jetstream"), Port: cfg.QueuePort, Logger: log})
	if err != nil {
		return fmt.Errorf("opening queue: %w", err)
	}
	defer q.Close()

	if err := requeue(ctx, st, q, log); err != nil {
		return err
	}

	core, hooks, err := openCore(ctx, cfg, st, q, o.Registry, log)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Server.Addr())
	if err != nil {
		return fmt.Errorf("listening on %s (server.port, server.address): %w", cfg.Server.Addr(), err)
	}
	deps := api.Deps{
		Logger:       log,
		Health:       healthOf(st, q),
		Info:         infoOf(cfg),
		Ready:        func(ctx context.Context) error { return errors.Join(st.Check(ctx), q.Check(ctx)) },
		Sandbox:      o.Sandbox,
		Loopback:     cfg.Server.Loopback(),
		AllowedHosts: cfg.Server.AllowedHosts,
		PublicHealth: cfg.PublicHealth,

		Messages:          core,
		Store:             st,
		Webhooks:          hooks,
		MaxMultipartBytes: cfg.Size("efm.http.max-multipart-size", 500<<20),
		StrictPing:        cfg.Value("efm.webhook.strict-ping") == "true",
	}
	if cfg.Server.BasicAuth {
		deps.BasicAuth = &api.BasicAuth{User: cfg.Server.User, Password: cfg.Server.Password}
	}
	srv := api.New(deps)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Serve(gctx, ln, cfg.ShutdownDrain, o.SkipDrain) })
	g.Go(func() error { return hooks.Run(gctx) })
	g.Go(func() error { return core.Run(gctx, cfg.Duration("efm.expiry.check-interval", 30*time.Second)) })
	if o.Core != nil {
		o.Core(core, q)
	}

	log.Info("integrasjonspunkt started",
		slog.String("version", buildinfo.Version),
		slog.String("orgnr", cfg.OrgNumber),
		slog.String("environment", cfg.Environment),
		slog.Any("channels", cfg.Enabled),
		slog.String("address", ln.Addr().String()),
		slog.Bool("sandbox", o.Sandbox != nil),
		logattr.Duration("startup_seconds", time.Since(o.Started)))
	if o.Listening != nil {
		o.Listening(ln.Addr())
	}
	err = g.Wait()
	log.Info("integrasjonspunkt stopped")
	return err
}

// requeue rebuilds the queue from the store: every unfinished outgoing
// message is enqueued again under its own id, so a crash between store and
// queue loses nothing, and the deduplication (and the pipeline's idempotent
// steps) send nothing twice (DESIGN.md).
func requeue(ctx context.Context, st *store.Store, q *queue.Queue, log *slog.Logger) error {
	ids, err := st.UnfinishedOutgoing(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := q.Enqueue(ctx, id); err != nil {
			return fmt.Errorf("re-enqueueing unfinished messages: %w", err)
		}
	}
	if len(ids) > 0 {
		log.Info("unfinished messages re-enqueued", slog.Int("count", len(ids)))
	}
	return nil
}

func healthOf(st *store.Store, q *queue.Queue) func(context.Context) api.Health {
	return func(ctx context.Context) api.Health {
		cs := map[string]api.Component{}
		if err := st.Check(ctx); err != nil {
			cs["store"] = api.Component{Status: api.Down, Details: map[string]any{"error": "store not writable"}}
		} else {
			c, _ := st.Unfinished(ctx)
			cs["store"] = api.Component{Status: api.Up, Details: map[string]any{"outgoing": c.Outgoing, "incoming": c.Incoming}}
		}
		if err := q.Check(ctx); err != nil {
			cs["queue"] = api.Component{Status: api.Down, Details: map[string]any{"error": "queue not running"}}
		} else {
			n, _ := q.Pending(ctx)
			cs["queue"] = api.Component{Status: api.Up, Details: map[string]any{"pending": n}}
		}
		return api.Health{Status: api.Overall(cs), Components: cs}
	}
}

// APIMajors are the local API majors this binary serves (operations.md §6).
var APIMajors = map[string]map[string]string{"v1": {"status": "current"}}

func infoOf(cfg *config.Config) func() any {
	return func() any {
		return map[string]any{
			"build": map[string]any{
				"version":  buildinfo.Version,
				"artifact": "integrasjonspunkt",
				"name":     "integrasjonspunkt",
				"group":    "no.difi.meldingsutveksling",
				"time":     buildinfo.Time,
			},
			"git":         map[string]any{"commit": buildinfo.CommitOrVCS()},
			"go":          buildinfo.GoVersion(),
			"os":          runtime.GOOS + "/" + runtime.GOARCH,
			"api":         APIMajors,
			"environment": cfg.Environment,
			"orgnr":       cfg.OrgNumber,
			"channels":    append([]string{}, cfg.Enabled...),
		}
	}
}

// openCore builds the local API's core: the central-log event builder (its
// pseudonym key in <data>/secrets), the encrypted payload store, webhooks and
// the message service.
func openCore(ctx context.Context, cfg *config.Config, st *store.Store, q *queue.Queue, reg message.Registry, log *slog.Logger) (*message.Service, *webhook.Notifier, error) {
	secrets := filepath.Join(cfg.DataDir, "secrets")
	key, err := events.LoadOrCreateKey(filepath.Join(secrets, "pseudonym.key"))
	if err != nil {
		return nil, nil, fmt.Errorf("loading pseudonym key: %w", err)
	}
	inst, err := st.InstallationID(ctx)
	if err != nil {
		return nil, nil, err
	}
	builder, err := events.NewBuilder(events.BuilderConfig{InstallationID: inst, OrgNr: cfg.OrgNumber, Version: buildinfo.Version, Key: key})
	if err != nil {
		return nil, nil, fmt.Errorf("building event builder: %w", err)
	}
	payloads, err := payload.Open(filepath.Join(cfg.DataDir, "payload"), filepath.Join(secrets, "payload.key"))
	if err != nil {
		return nil, nil, fmt.Errorf("opening payload store: %w", err)
	}
	hooks := webhook.New(webhook.Config{Store: st, Logger: log, Backoff: cfg.Duration("efm.webhook.backoff", time.Second)})
	if reg == nil {
		reg = message.NoRegistry{}
	}
	mc := message.Settings(cfg)
	mc.Store, mc.Payloads, mc.Queue, mc.Events, mc.Registry, mc.Notifier, mc.Logger = st, payloads, q, builder, reg, hooks, log
	core, err := message.New(mc)
	if err != nil {
		return nil, nil, err
	}
	return core, hooks, nil
}

package integrasjonspunkt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/efm-go/efm/integrasjonspunkt/api"
	"github.com/efm-go/efm/integrasjonspunkt/check"
	"github.com/efm-go/efm/integrasjonspunkt/config"
	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/integrasjonspunkt/failmail"
	"github.com/efm-go/efm/integrasjonspunkt/message"
	"github.com/efm-go/efm/integrasjonspunkt/payload"
	"github.com/efm-go/efm/integrasjonspunkt/pipeline"
	"github.com/efm-go/efm/integrasjonspunkt/queue"
	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/integrasjonspunkt/webhook"
	"github.com/efm-go/efm/internal/buildinfo"
	"github.com/efm-go/efm/internal/logattr"
	"github.com/efm-go/efm/packaging/keystore"
	"github.com/efm-go/efm/update"
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

	// Updater, when set, runs beside the rest: the self-update loop. Its
	// update.ErrRestart ends Run (after the drain) so main can exit with the
	// restart status.
	Updater Updater

	// UpdateEvents, when set, is handed the function that writes an update
	// event to the central-log outbox, once the store is open.
	UpdateEvents func(record func(ctx context.Context, t events.Type, from, to string, reason events.ReasonCode) error)
}

// Updater is what Run needs of the self-update (*update.Updater).
type Updater interface {
	Run(ctx context.Context) error
	HealthComponent() update.Component
}

// Run runs the daemon until ctx is done, then drains and closes everything in
// reverse order of opening.
func Run(ctx context.Context, o Options) error {
	cfg, log := o.Config, o.Logger
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("creating data dir: %w", err)
	}
	pg, err := cfg.Postgres()
	if err != nil {
		return fmt.Errorf("spring.datasource.url: %w", err)
	}
	st, err := store.Open(ctx, store.Config{Path: filepath.Join(cfg.DataDir, "store.db"), Postgres: pg, Logger: log})
	if err != nil {
		return fmt.Errorf("opening store: %w", err)
	}
	defer st.Close()

	qc, err := queueConfig(cfg, log)
	if err != nil {
		return err
	}
	// The embedded server reads its stream back while the rest starts and
	// the API answers (issue 18): a send's queue entry follows once it has.
	q, err := queue.Start(ctx, qc)
	if err != nil {
		return fmt.Errorf("opening queue: %w", err)
	}
	defer q.Close()

	// What the queue must hold again is read now (a bound, not the list),
	// and put back in the background once the API answers: start-up does
	// not grow with the store (issue 18).
	requeueUpTo, err := st.LastConversationID(ctx)
	if err != nil {
		return fmt.Errorf("reading the store: %w", err)
	}

	// A bad or expired certificate does not stop the daemon (operations.md
	// §1.6): the API answers and health says why sending cannot work.
	ks, ksErr := keystore.Load(keystore.Config{
		Path: cfg.Keystore.Path, Alias: cfg.Keystore.Alias, Password: cfg.Keystore.Password,
		KeyPassword: cfg.Keystore.KeyPassword, Type: keystore.Type(cfg.Keystore.Type),
	})
	if ksErr != nil {
		log.Error("business certificate unusable; sending is paused", logattr.Key("difi.move.org.keystore.path"), logattr.Err(ksErr))
	} else {
		for _, w := range ks.Warnings {
			log.Warn("keystore", logattr.Key("difi.move.org.keystore.path"), slog.String("warning", w))
		}
		for _, n := range ks.Notes {
			log.Debug("keystore", logattr.Key("difi.move.org.keystore.path"), slog.String("note", n))
		}
	}

	// The resolver serves the local API's lookups and the pipeline; without
	// a service registry nothing can be sent and no pipeline runs.
	reg := o.Registry
	wiring, err := pipeline.FromConfig(cfg, ks, ksErr, log)
	switch {
	case errors.Is(err, pipeline.ErrNoRegistry):
		log.Warn("no service registry configured: messages are accepted but not sent", logattr.Key("difi.move.serviceregistryEndpoint"))
	case err != nil:
		log.Error("channels cannot be set up; sending is paused", logattr.Err(err))
	case reg == nil:
		reg = message.ResolverRegistry{Resolver: wiring.Resolver}
	}

	core, hooks, builder, err := openCore(ctx, cfg, st, q, reg, wiring, certificateError(certificateHealth(cfg, ks, ksErr)), log)
	if err != nil {
		return err
	}
	if o.UpdateEvents != nil {
		o.UpdateEvents(func(ctx context.Context, t events.Type, from, to string, reason events.ReasonCode) error {
			typ, body, err := builder.Update(t, from, to, reason)
			if err != nil {
				return err
			}
			return st.Update(ctx, func(tx *store.Tx) error { return tx.InsertEvent(string(typ), body, time.Now()) })
		})
	}
	if err := recordStart(ctx, cfg, st, builder); err != nil {
		log.Warn("recording the start for the central log", logattr.Err(err))
	}
	shipper, err := newShipper(cfg, st, ks, log)
	if err != nil {
		return err
	}
	ret := newRetention(cfg, st, core, shipper != nil, log)
	grp := newGroup(ctx, cfg, q, log)
	defer grp.Wait()
	var pl *pipeline.Pipeline
	sends := &burstMeter{}
	if wiring != nil {
		pc := wiring.Config(core, q, filepath.Join(sharedDir(cfg), "pipeline"), log)
		pc.Unfinished = st.UnfinishedOutgoing
		pc.Leads, pc.Claim = grp.Leads, st.ClaimMessage
		pc.SharedDir = cfg.Value("efm.shared.dir") != ""
		if n, _ := strconv.Atoi(cfg.Value("efm.pipeline.api-burst")); n > 0 {
			sends.perSecond = int64(n)
			pc.APIBurst = sends.inBurst
			go sends.run(ctx)
		}
		if pl, err = pipeline.New(pc); err != nil {
			return fmt.Errorf("starting the pipeline: %w", err)
		}
	}

	ln, err := net.Listen("tcp", cfg.Server.Addr())
	if err != nil {
		return fmt.Errorf("listening on %s (server.port, server.address): %w", cfg.Server.Addr(), err)
	}
	if cfg.Server.TLS {
		if ln, err = tlsListener(ln, cfg.Server.TLSKeystore); err != nil {
			return err
		}
	}
	deps := api.Deps{
		Logger:       log,
		Health:       withRetention(healthOf(st, q, diskHealth(sharedDir(cfg), cfg.DiskMinFree), channelStates(pl), certificateHealth(cfg, ks, ksErr), centralLogHealth(shipper), updateHealth(o.Updater)), ret),
		Metrics:      withRetentionMetrics(withUpdateMetrics(metricsOf(o.Started, cfg.DataDir, st, q, ks, builder, shipper, resolverMetrics(wiring), core, channelStates(pl)), o.Updater), ret),
		Retention:    ret.report,
		Info:         infoOf(cfg),
		Ready:        func(ctx context.Context) error { return errors.Join(st.Check(ctx), queueReady(ctx, q)) },
		Sandbox:      o.Sandbox,
		Loopback:     cfg.Server.Loopback(),
		AllowedHosts: cfg.Server.AllowedHosts,
		PublicHealth: cfg.PublicHealth,

		Messages:          core,
		Store:             st,
		Webhooks:          hooks,
		SendsStarted:      &sends.started,
		MaxMultipartBytes: cfg.Size("efm.http.max-multipart-size", 500<<20),
		BodyWindow:        cfg.Duration("efm.http.body-window", 0),
		BodyMinRate:       cfg.Size("efm.http.body-min-rate", 0),
		DiskFree:          func() (int64, error) { return store.FreeSpace(sharedDir(cfg)) }, // where payloads go
		DiskMinFree:       cfg.DiskMinFree,
		StrictPing:        cfg.Value("efm.webhook.strict-ping") == "true",
		Majors:            APIMajors,
	}
	deps.LastCheck = func() *api.CheckReport { return lastCheck(cfg.DataDir) }
	deps.RunCheck = func(ctx context.Context) error {
		return check.Run(ctx, cfg, check.Options{DataDir: cfg.DataDir, Logger: log}).Save(cfg.DataDir)
	}
	if cfg.Server.BasicAuth {
		deps.BasicAuth = &api.BasicAuth{User: cfg.Server.User, Password: cfg.Server.Password}
	}
	srv := api.New(deps)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Serve(gctx, ln, cfg.ShutdownDrain, o.SkipDrain) })
	g.Go(func() error {
		if err := q.Wait(gctx); err != nil {
			if gctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("opening queue: %w", err)
		}
		log.Info("queue loaded", logattr.Duration("startup_seconds", time.Since(o.Started)))
		return nil
	})
	g.Go(func() error { return hooks.Run(gctx) })
	if mc, ok := failmail.FromConfig(cfg, st, log); ok {
		g.Go(func() error { return grp.whileLeading(gctx, "failmail", failmail.New(mc).Run) })
	}
	if o.Updater != nil {
		g.Go(func() error { return o.Updater.Run(gctx) })
	}
	if shipper != nil {
		g.Go(func() error { return grp.whileLeading(gctx, "central-log", shipper.Run) })
	}
	g.Go(func() error {
		return grp.whileLeading(gctx, "heartbeat", func(ctx context.Context) error {
			return heartbeat(ctx, st, builder, ks, cfg.Duration("efm.events.heartbeat-interval", 24*time.Hour), log)
		})
	})
	g.Go(func() error {
		return grp.whileLeading(gctx, "expiry-sweep", func(ctx context.Context) error {
			return core.Run(ctx, cfg.Duration("efm.expiry.check-interval", 30*time.Second))
		})
	})
	g.Go(func() error { return grp.whileLeading(gctx, "retention", ret.Run) })
	if pl != nil {
		g.Go(func() error { return pl.Run(gctx) })
	}
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
	// After the API answers: it shares the CPU with nothing else at start.
	g.Go(func() error { requeue(gctx, st, q, requeueUpTo, log); return nil })
	err = g.Wait()
	log.Info("integrasjonspunkt stopped")
	return err
}

// requeuePage is how many messages requeue puts back per round of
// asynchronous publishes.
const requeuePage = 2000

// requeue rebuilds the queue from the store: every unfinished outgoing
// message sent by its client (up to upTo, the last conversation at start;
// later ones were enqueued by the API) is enqueued again unless the queue
// still holds it, so a crash between store and queue loses nothing, and the
// queue's per-message check (and the pipeline's idempotent steps) send
// nothing twice (DESIGN.md). It runs beside the API, in pages; a page that
// fails is tried again until ctx ends.
func requeue(ctx context.Context, st *store.Store, q *queue.Queue, upTo int64, log *slog.Logger) {
	var after int64
	n := 0
	for ctx.Err() == nil {
		ids, last, err := st.QueuedOutgoing(ctx, after, upTo, requeuePage)
		if err == nil && len(ids) > 0 {
			var added int
			added, err = q.Requeue(ctx, ids)
			n += added
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("re-enqueueing unfinished messages; trying again", logattr.Err(err))
			select {
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Second):
			}
			continue
		}
		if len(ids) < requeuePage {
			break
		}
		after = last
	}
	if n > 0 {
		log.Info("unfinished messages re-enqueued", slog.Int("count", n))
	}
}

func healthOf(st *store.Store, q *queue.Queue, disk func(map[string]any) string, channels func() []pipeline.ChannelState, cert func() api.Component, central func(context.Context) api.Component, upd func() (api.Component, bool)) func(context.Context) api.Health {
	return func(ctx context.Context) api.Health {
		cs := map[string]api.Component{"certificate": cert(), "central-log": central(ctx)}
		if c, ok := upd(); ok {
			cs["update"] = c
		}
		if err := st.Check(ctx); err != nil {
			cs["store"] = api.Component{Status: api.Down, Details: map[string]any{"error": "store not writable"}}
		} else {
			c, _ := st.Unfinished(ctx)
			d := map[string]any{"outgoing": c.Outgoing, "incoming": c.Incoming}
			cs["store"] = api.Component{Status: disk(d), Details: d}
		}
		if err := q.Check(ctx); errors.Is(err, queue.ErrLoading) {
			cs["queue"] = api.Component{Status: api.Up, Details: map[string]any{"loading": true}}
		} else if err != nil {
			cs["queue"] = api.Component{Status: api.Down, Details: map[string]any{"error": "queue not running"}}
		} else {
			n, _ := q.Pending(ctx)
			c := api.Component{Status: api.Up, Details: map[string]any{"pending": n}}
			if dl, err := st.DeadLetters(ctx); err == nil && dl > 0 {
				// operations.md §2.2: someone must resend or delete them.
				c.Status, c.Details["deadLetters"] = api.Degraded, dl
			}
			cs["queue"] = c
		}
		for _, c := range channels() {
			cs["channel."+c.Service] = channelHealth(c)
		}
		return api.Health{Status: api.Overall(cs), Components: cs}
	}
}

// queueReady is the queue's part of readiness: a stream still loading does
// not hold the API back: a send is committed to the store, and its entry
// is published once the stream is there (queue.EnqueueAsync).
func queueReady(ctx context.Context, q *queue.Queue) error {
	if err := q.Check(ctx); err != nil && !errors.Is(err, queue.ErrLoading) {
		return err
	}
	return nil
}

// diskHealth rates the data dir's free space against efm.disk.min-free
// (operations.md §2.2): DOWN below it, since no message can be stored,
// DEGRADED below twice it. It writes the figures into d.
func diskHealth(dir string, minFree int64) func(d map[string]any) string {
	return func(d map[string]any) string {
		free, err := store.FreeSpace(dir)
		if err != nil {
			d["diskError"] = "free space unknown"
			return api.Up
		}
		d["diskFreeBytes"], d["diskMinFreeBytes"] = free, minFree
		switch {
		case free < minFree:
			d["reason"] = "disk full: free space below efm.disk.min-free"
			return api.Down
		case free < 2*minFree:
			d["reason"] = "disk nearly full: free space below twice efm.disk.min-free"
			return api.Degraded
		}
		return api.Up
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
func openCore(ctx context.Context, cfg *config.Config, st *store.Store, q *queue.Queue, reg message.Registry, wiring *pipeline.Wiring, certErr func() error, log *slog.Logger) (*message.Service, *webhook.Notifier, *events.Builder, error) {
	secrets := filepath.Join(sharedDir(cfg), "secrets")
	key, err := events.LoadOrCreateKey(filepath.Join(secrets, "pseudonym.key"))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("loading pseudonym key: %w", err)
	}
	inst, err := st.InstallationID(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	builder, err := events.NewBuilder(events.BuilderConfig{InstallationID: inst, OrgNr: cfg.OrgNumber, Version: buildinfo.Version, Key: key})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("building event builder: %w", err)
	}
	payloads, err := payload.Open(filepath.Join(sharedDir(cfg), "payload"), filepath.Join(secrets, "payload.key"))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("opening payload store: %w", err)
	}
	hooks := webhook.New(webhook.Config{Store: st, Logger: log, Backoff: cfg.Duration("efm.webhook.backoff", time.Second)})
	if reg == nil {
		reg = message.NoRegistry{}
	}
	mc := message.Settings(cfg)
	mc.Store, mc.Payloads, mc.Queue, mc.Events, mc.Registry, mc.Notifier, mc.Logger = st, payloads, q, builder, reg, hooks, log
	mc.Certificate = certErr
	if wiring != nil {
		// A channel that could not be set up is refused at the API, naming
		// what is missing, instead of accepting messages that would fail.
		mc.ChannelProblem = func(ch string) error { return wiring.Problems[ch] }
		if wiring.ShipmentTypes != nil {
			mc.ForsendelseTyper = wiring.ShipmentTypes.ForsendelseTyper
		}
	}
	core, err := message.New(mc)
	if err != nil {
		return nil, nil, nil, err
	}
	return core, hooks, builder, nil
}

// certificateHealth is the certificate component: DOWN when the keystore
// cannot be used or the certificate is outside its validity, DEGRADED within
// 30 days of expiry. It is checked at every health call, so expiry shows up
// without a restart.
func certificateHealth(cfg *config.Config, ks *keystore.Keystore, loadErr error) func() api.Component {
	return func() api.Component {
		if loadErr != nil {
			return api.Component{Status: api.Down, Details: map[string]any{"reason": loadErr.Error()}}
		}
		c := keystore.CheckCertificate(ks.Cert, keystore.CheckOptions{OrgNumber: cfg.OrgNumber, Intermediates: ks.Chain})
		d := map[string]any{"notAfter": c.NotAfter, "daysLeft": c.DaysLeft, "serial": c.Serial}
		if len(c.Reasons) > 0 {
			d["reasons"] = c.Reasons
		}
		return api.Component{Status: string(c.Status), Details: d}
	}
}

// certificateError turns the certificate's health into the check E2–E5 make
// before accepting a message (InvalidCertificateException, local-api.md §15.2).
func certificateError(health func() api.Component) func() error {
	return func() error {
		c := health()
		if c.Status != api.Down {
			return nil
		}
		if r, ok := c.Details["reason"].(string); ok {
			return errors.New(r)
		}
		return fmt.Errorf("certificate is not valid: %v", c.Details["reasons"])
	}
}

// updateHealth is the update component: DEGRADED when the last update failed
// or rolled back, never DOWN (the old version still works).
func updateHealth(u Updater) func() (api.Component, bool) {
	return func() (api.Component, bool) {
		if u == nil {
			return api.Component{}, false
		}
		c := u.HealthComponent()
		d := map[string]any{}
		if c.Reason != "" {
			d["reason"] = c.Reason
		}
		if c.Detail != "" {
			d["detail"] = c.Detail
		}
		return api.Component{Status: c.Status, Details: d}, true
	}
}

// lastCheck is the last `integrasjonspunkt check` for the status page.
func lastCheck(dataDir string) *api.CheckReport {
	r := check.Last(dataDir)
	if r == nil {
		return nil
	}
	out := &api.CheckReport{At: r.At}
	for _, x := range r.Results {
		res := "OK"
		switch {
		case x.Skipped:
			res = "SKIP"
		case !x.OK:
			res = "FAIL"
		}
		out.Lines = append(out.Lines, api.CheckLine{Part: x.Part, Result: res, Error: x.Error, Fix: x.Fix})
	}
	return out
}

// tlsListener serves the API over TLS with the difi.ssl.* keystore: config
// check only lets the API off loopback with TLS on, so TLS on must mean TLS
// served (operations.md §1.7).
func tlsListener(ln net.Listener, k config.Keystore) (net.Listener, error) {
	ks, err := keystore.Load(keystore.Config{Path: k.Path, Alias: k.Alias, Password: k.Password, KeyPassword: k.Password, Type: keystore.Type(k.Type)})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("difi.ssl.key-store: %w", err)
	}
	chain := [][]byte{ks.Cert.Raw}
	for _, c := range ks.Chain {
		chain = append(chain, c.Raw)
	}
	return tls.NewListener(ln, &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: chain, PrivateKey: ks.Key, Leaf: ks.Cert}},
	}), nil
}

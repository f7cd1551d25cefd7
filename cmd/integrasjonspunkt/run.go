package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"github.com/kardianos/service"

	"github.com/efm-go/efm/integrasjonspunkt"
	"github.com/efm-go/efm/integrasjonspunkt/api"
	"github.com/efm-go/efm/integrasjonspunkt/config"
	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/internal/cpuprofile"
	"github.com/efm-go/efm/internal/logattr"
	"github.com/efm-go/efm/internal/logfile"
	"github.com/efm-go/efm/internal/sandbox"
	"github.com/efm-go/efm/update"
)

func init() {
	commands = append(commands,
		command{"run", "run in the foreground (what the service manager calls); --sandbox for simulated services", runCmd},
		command{"version", "print version, commit, build time, Go version and API majors", versionCmd},
		command{"config check", "validate the configuration, print every problem and the effective settings", configCheckCmd},
	)
}

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	loc := devLocations()
	fs := newFlags("run", stderr)
	loc.flags(fs)
	withSandbox := fs.Bool("sandbox", false, "start every simulated external service on loopback and use it")
	seedFile := fs.String("sandbox-seed", "", "seed `file` for the simulated registers (default: the built-in seed)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	stopProfile, err := cpuprofile.Start("EFM_CPUPROFILE")
	if err != nil {
		return err
	}
	defer stopProfile()
	loc, err = loc.abs()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(loc.data, 0o750); err != nil {
		return fmt.Errorf("creating data dir: %w", err)
	}
	// Until the configuration is read the level is unknown; start at info.
	log := newLogger(stderr, "info")

	opts := integrasjonspunkt.Options{Logger: log, Started: processStart}
	overrides := map[string]string{}
	if *withSandbox {
		sb, err := sandbox.Start(ctx, sandbox.Options{Dir: filepath.Join(loc.data, "sandbox"), SeedFile: *seedFile, Logger: log})
		if err != nil {
			return err
		}
		defer sb.Close()
		overrides = sb.Overrides
		opts.Sandbox = []api.SandboxService{}
		for _, s := range sb.Services {
			opts.Sandbox = append(opts.Sandbox, api.SandboxService{Name: s.Name, BaseURL: s.BaseURL, Description: s.Description, Credentials: s.Credentials})
		}
	} else if *seedFile != "" {
		return &exitError{code: exitUsage, err: errors.New("--sandbox-seed needs --sandbox")}
	}
	cfg, warns, err := config.Load(config.Source{File: loc.config, Env: os.Environ(), Overrides: overrides, DataDir: loc.data})
	for _, w := range warns {
		log.Warn("configuration", slog.String("key", w.Key), slog.String("warning", w.Msg))
	}
	if err != nil {
		return fmt.Errorf("configuration has problems (run 'integrasjonspunkt config check'):\n%w", err)
	}
	opts.Config = cfg
	logOut := stderr
	if fileLog(cfg) {
		lf, err := logfile.Open(filepath.Join(loc.data, "logs", "integrasjonspunkt.log"), cfg.Size("efm.log.max-size", 10<<20), 8)
		if err != nil {
			return err
		}
		defer lf.Close()
		logOut = io.MultiWriter(stderr, lf)
	}
	opts.Logger = newLogger(logOut, cfg.LogLevel)

	// The updater boots first: a new version in a crash loop must be rolled
	// back before anything that could crash again (operations.md §4.4).
	central := &updateEvents{log: opts.Logger}
	upd, err := newUpdater(cfg, loc.config, *withSandbox, opts.Logger, daemonHealth(cfg), central.record)
	if err != nil {
		return fmt.Errorf("setting up self-update: %w", err)
	}
	if err := upd.Boot(ctx); err != nil {
		return asRestart(err)
	}
	if _, err := restoreAfterRollback(ctx, upd, cfg.DataDir, opts.Logger); err != nil {
		return err
	}
	opts.Updater, opts.UpdateEvents = upd, central.attach

	p := &program{opts: opts, restart: make(chan struct{})}
	svc, err := service.New(p, serviceConfig(loc, "", cfg.ShutdownDrain))
	if err != nil {
		return fmt.Errorf("preparing service: %w", err)
	}
	if service.Interactive() {
		return asRestart(p.runInteractive(ctx))
	}
	// The service manager waits in svc.Run for its own stop. A self-update
	// ends the daemon from inside instead: then this process exits with the
	// restart status, which systemd (Restart=always) and the Windows SCM
	// (OnFailure=restart) answer by starting the swapped binary.
	errc := make(chan error, 1)
	go func() { errc <- svc.Run() }()
	select {
	case err := <-errc:
		if err != nil {
			return err
		}
		return asRestart(p.err)
	case <-p.restart:
		return asRestart(update.ErrRestart)
	}
}

// asRestart turns the updater's restart request into the restart exit status.
func asRestart(err error) error {
	if errors.Is(err, update.ErrRestart) {
		return &exitError{code: exitRestart, err: errors.New("restarting to run the updated (or restored) binary")}
	}
	return err
}

// updateEvents carries update outcomes to the central-log outbox. The updater
// exists before the store is open, so outcomes wait here until the daemon
// attaches the outbox writer.
type updateEvents struct {
	log     *slog.Logger
	mu      sync.Mutex
	write   func(ctx context.Context, t events.Type, from, to string, reason events.ReasonCode) error
	pending []update.Event
}

func (u *updateEvents) record(e update.Event) {
	if _, _, ok := centralUpdateEvent(e); !ok {
		return
	}
	u.mu.Lock()
	w := u.write
	if w == nil {
		u.pending = append(u.pending, e)
	}
	u.mu.Unlock()
	if w != nil {
		u.send(w, e)
	}
}

func (u *updateEvents) attach(w func(ctx context.Context, t events.Type, from, to string, reason events.ReasonCode) error) {
	u.mu.Lock()
	u.write = w
	pending := u.pending
	u.pending = nil
	u.mu.Unlock()
	for _, e := range pending {
		u.send(w, e)
	}
}

func (u *updateEvents) send(w func(ctx context.Context, t events.Type, from, to string, reason events.ReasonCode) error, e update.Event) {
	t, reason, _ := centralUpdateEvent(e)
	// An update event is not worth failing the update for; say it is missing.
	if err := w(context.Background(), t, e.From, e.To, reason); err != nil {
		u.log.Warn("writing an update event to the central-log outbox", slog.String("event", string(t)), slog.Any("error", err))
	}
}

// program adapts the daemon to the service manager: Start returns at once and
// Stop waits for the drain (STYLE.md §2).
type program struct {
	opts      integrasjonspunkt.Options
	restart   chan struct{} // closed when the daemon ended for a self-update
	cancel    context.CancelFunc
	skipDrain chan struct{}
	done      chan error
	err       error
}

func (p *program) Start(service.Service) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done, p.skipDrain = cancel, make(chan error, 1), make(chan struct{})
	p.opts.SkipDrain = p.skipDrain
	go func() {
		err := integrasjonspunkt.Run(ctx, p.opts)
		p.done <- err
		if errors.Is(err, update.ErrRestart) {
			close(p.restart)
		}
	}()
	return nil
}

func (p *program) Stop(service.Service) error {
	p.cancel()
	p.err = <-p.done
	return p.err
}

// runInteractive runs in a console: the first SIGINT/SIGTERM starts the drain,
// a second skips it (operations.md §1.8).
func (p *program) runInteractive(ctx context.Context) error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := p.Start(nil); err != nil {
		return err
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
	case <-sigs:
	}
	p.cancel()
	go func() {
		<-sigs
		close(p.skipDrain)
	}()
	return <-p.done
}

// fileLog says whether to log to <data>/logs: always when efm.log.file says
// so, and by default for a Windows service, whose stderr goes nowhere.
func fileLog(cfg *config.Config) bool {
	if v := cfg.Value("efm.log.file"); v != "" {
		return v == "true"
	}
	return runtime.GOOS == "windows" && !service.Interactive()
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(strings.ToUpper(level)))
	return slog.New(logattr.OneComponent(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})))
}

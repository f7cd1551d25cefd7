package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/config"
	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/internal/buildinfo"
	"github.com/efm-go/efm/internal/sandbox"
	"github.com/efm-go/efm/update"
	"github.com/efm-go/efm/update/manifest"
)

func init() {
	commands = append(commands,
		command{"update", "self-update: check | apply [--version V] [--allow-downgrade] | rollback | status [--json]", updateCmd},
		command{"self-test", "prove this binary runs here with this configuration (the updater's preflight)", selfTestCmd},
	)
}

// newUpdater builds the self-updater from the effective configuration
// (operations.md §4.5 keys, KOSMOS aliases included). The daemon's `run` and
// the `update` subcommands share it. health may be nil outside `run`.
func newUpdater(cfg *config.Config, configFile string, withSandbox bool, log *slog.Logger,
	health func(context.Context) (bool, error), onEvent func(update.Event)) (*update.Updater, error) {
	uc := update.Config{
		DataDir:        cfg.DataDir,
		ConfigFile:     configFile,
		CurrentVersion: buildinfo.Version,
		Environment:    cfg.Environment,
		Logger:         log,
		Health:         health,
		OnEvent:        onEvent,
	}
	if withSandbox {
		uc.SelfTestArgs = []string{"--sandbox"}
	}
	uc.BeforeSwap = func(ctx context.Context, target manifest.Release) error {
		_, err := snapshotBeforeSwap(ctx, cfg.DataDir, buildinfo.Version, target)
		return err
	}
	lookup := func(k string) (string, bool) {
		v := cfg.Value(k)
		return v, v != ""
	}
	if err := update.Settings(&uc, lookup); err != nil {
		return nil, err
	}
	if uc.ManifestURL == "" {
		// No release location configured: there is nothing to poll.
		uc.Mode = update.ModeOff
	}
	return update.New(uc)
}

// daemonHealth asks this installation's own readiness, the probe the
// updater's probation uses (operations.md §4.4 step 10): store open, queue
// running, API bound. Readiness leaves out what is outside the daemon (an
// Altinn or Maskinporten outage, even the certificate), so only the new
// version's own failure rolls it back. It goes to loopback whatever the bind
// address, with the API's own TLS and basic auth when they are on.
func daemonHealth(cfg *config.Config) func(context.Context) (bool, error) {
	base, client := selfClient(cfg, 5*time.Second)
	return update.HTTPHealth(base+"/manage/health/readiness", client)
}

// selfClient reaches this installation's own API: on loopback whatever the
// bind address (an unspecified one listens there too), with the API's own
// TLS and basic auth when they are on (/manage follows the API's auth off
// loopback unless efm.manage.public-health).
func selfClient(cfg *config.Config, timeout time.Duration) (base string, c *http.Client) {
	host := cfg.Server.Address
	if host == "" || host == "0.0.0.0" || host == "::" || host == "localhost" {
		host = "127.0.0.1"
	}
	scheme := "http"
	tr := &http.Transport{Proxy: nil}
	if cfg.Server.TLS {
		scheme = "https"
		// The probe checks that this very process answers on its own port, not
		// who it is: the certificate is the agency's and names no loopback host.
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // loopback self-probe, see above
	}
	var rt http.RoundTripper = tr
	if cfg.Server.BasicAuth && !cfg.PublicHealth {
		rt = basicAuth{rt: tr, user: cfg.Server.User, password: cfg.Server.Password}
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(cfg.Server.Port)), &http.Client{Transport: rt, Timeout: timeout}
}

// centralUpdateEvent maps an update event to the central log's allow-list
// schema (operations.md §5.3) for newUpdater's onEvent: only the four central
// types go out, the reason reduced to the central list. Event.Detail is free
// text and never leaves the installation.
func centralUpdateEvent(e update.Event) (t events.Type, reason events.ReasonCode, ok bool) {
	switch e.Type {
	case update.EventApplied:
		t = events.TypeUpdateApplied
	case update.EventCommitted:
		t = events.TypeUpdateCommitted
	case update.EventRolledBack:
		t = events.TypeUpdateRolledBack
	case update.EventFailed:
		t = events.TypeUpdateFailed
	default:
		return "", "", false // staged, waiting: local notices only
	}
	switch e.Reason {
	case "":
	case update.ReasonBadSignature, update.ReasonArtifactSignature:
		reason = events.ReasonSignatureInvalid
	case update.ReasonChecksumMismatch, update.ReasonSizeMismatch:
		reason = events.ReasonChecksumMismatch
	case update.ReasonDownloadFailed, update.ReasonManifestUnavailable, update.ReasonDiskFull:
		reason = events.ReasonDownloadFailed
	case update.ReasonPreflightFailed:
		reason = events.ReasonSelfTestFailed
	case update.ReasonProbationTimeout, update.ReasonUnhealthy, update.ReasonCrashLoop:
		reason = events.ReasonHealthCheckFailed
	case update.ReasonManifestExpired:
		reason = events.ReasonManifestExpired
	case update.ReasonClockBehind:
		reason = events.ReasonClockBehind
	case update.ReasonSwapFailed, update.ReasonSwapRollbackFailed, update.ReasonInternal:
		reason = events.ReasonInternalError
	default:
		reason = events.ReasonUnknown
	}
	return t, reason, true
}

type basicAuth struct {
	rt             http.RoundTripper
	user, password string
}

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.user, b.password)
	return b.rt.RoundTrip(r)
}

func updateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return &exitError{code: exitUsage, err: errors.New("usage: integrasjonspunkt update check|apply|rollback|status [--config FILE] [--data DIR]")}
	}
	sub, rest := args[0], args[1:]
	loc := devLocations()
	fs := newFlags("update "+sub, stderr)
	loc.flags(fs)
	var (
		version   *string
		downgrade *bool
		asJSON    *bool
	)
	switch sub {
	case "apply":
		version = fs.String("version", "", "install this `version` instead of the channel's")
		downgrade = fs.Bool("allow-downgrade", false, "allow --version to be lower than the running version")
	case "status":
		asJSON = fs.Bool("json", false, "print the status as JSON")
	case "check", "rollback":
	default:
		return &exitError{code: exitUsage, err: fmt.Errorf("unknown update command %q: check, apply, rollback or status", sub)}
	}
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	loc, err := loc.abs()
	if err != nil {
		return err
	}
	log := newLogger(stderr, "warn")
	var u *update.Updater
	cfg, _, cerr := config.Load(config.Source{File: loc.config, Env: os.Environ(), DataDir: loc.data})
	switch {
	case cerr == nil:
		if u, err = newUpdater(cfg, loc.config, false, log, nil, nil); err != nil {
			return err
		}
	case sub == "status":
		// The stored state is worth showing even when the configuration is not
		// (a sandbox install has no file of its own).
		fmt.Fprintln(stderr, "warning: configuration has problems; showing the stored update state only")
		if u, err = update.New(update.Config{DataDir: loc.data, CurrentVersion: buildinfo.Version, Mode: update.ModeOff, Logger: log}); err != nil {
			return err
		}
	default:
		return fmt.Errorf("configuration has problems (run 'integrasjonspunkt config check'):\n%w", cerr)
	}

	switch sub {
	case "status":
		st, err := u.Status()
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(st)
		}
		printStatus(stdout, st)
		if st.Health.Status != "UP" {
			return &exitError{code: exitFailure}
		}
		return nil

	case "check":
		rep, err := u.Check(ctx)
		fmt.Fprintf(stdout, "running %s, offered %s: %s\n", rep.Current, orNone(rep.Offered), rep.Result)
		if rep.Target != "" {
			fmt.Fprintf(stdout, "would install %s", rep.Target)
			if rep.Urgent {
				fmt.Fprint(stdout, " (security release: applied at the next check, outside the windows)")
			}
			fmt.Fprintln(stdout)
		}
		if rep.Reason != "" {
			fmt.Fprintf(stdout, "reason: %s\n%s\n", rep.Reason, rep.Detail)
		}
		var re *update.RefusedError
		if err == nil || errors.As(err, &re) {
			return nil // the check worked; what it found is printed
		}
		return &exitError{code: exitFailure, err: err}

	case "apply":
		err := u.Apply(ctx, update.ApplyOptions{Version: *version, AllowDowngrade: *downgrade})
		if errors.Is(err, update.ErrRestart) {
			st, _ := u.Status()
			fmt.Fprintf(stdout, "installed %s (the previous executable is kept); the running service restarts into it within a minute, or run: integrasjonspunkt restart\n", st.State.To)
			return nil
		}
		if err != nil {
			fmt.Fprintf(stdout, "not applied: %s (%s)\n", err, update.ReasonOf(err))
			return &exitError{code: exitFailure, err: err}
		}
		return nil

	case "rollback":
		err := u.Rollback(ctx)
		if errors.Is(err, update.ErrRestart) {
			st, _ := u.Status()
			fmt.Fprintf(stdout, "rolled back to %s; the running service restarts into it within a minute, or run: integrasjonspunkt restart\n", st.State.From)
			return nil
		}
		return err
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

func printStatus(w io.Writer, st update.Status) {
	s := st.State
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Local().Format(time.RFC3339)
	}
	row("running", st.Current)
	row("mode", st.Mode)
	row("channel", st.Channel)
	row("pin", st.Pin)
	row("executable", st.Executable)
	row("previous kept", strconv.FormatBool(st.PreviousKept))
	row("phase", string(s.Phase))
	if s.From != "" || s.To != "" {
		row("last update", s.From+" → "+s.To)
	}
	row("rollback reason", s.Reason)
	row("last check", ts(s.LastCheck))
	row("last result", s.LastResult)
	row("reason", s.LastReason)
	row("detail", s.LastError)
	row("available", s.Available)
	row("waiting for decision", s.Waiting)
	if s.Staged != nil {
		row("staged", s.Staged.Version)
	}
	row("next window", ts(st.NextWindow))
	row("manifest expires", ts(s.ManifestExpiresAt))
	if len(s.Blocklist) > 0 {
		vs := make([]string, 0, len(s.Blocklist))
		for v, b := range s.Blocklist {
			vs = append(vs, v+" ("+b.Reason+")")
		}
		sort.Strings(vs)
		row("blocked", strings.Join(vs, ", "))
	}
	health := st.Health.Status
	if st.Health.Reason != "" {
		health += ": " + st.Health.Reason
	}
	row("health", health)
	_ = tw.Flush()
}

// selfTestCmd is the updater's preflight (operations.md §4.4 step 6), run on
// a staged binary before it replaces the running one: it must print its
// version, accept this installation's configuration and store, and exit 0.
func selfTestCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	loc := devLocations()
	fs := newFlags("self-test", stderr)
	loc.flags(fs)
	withSandbox := fs.Bool("sandbox", false, "check against the simulated services, as `run --sandbox`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	loc, err := loc.abs()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "integrasjonspunkt self-test version=%s os=%s/%s\n", buildinfo.Version, runtime.GOOS, runtime.GOARCH)
	overrides := map[string]string{}
	if *withSandbox {
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		sb, err := sandbox.Start(ctx, sandbox.Options{Dir: filepath.Join(loc.data, "sandbox"), Logger: quiet})
		if err != nil {
			return &exitError{code: exitFailure, err: fmt.Errorf("self-test: starting the sandbox: %w", err)}
		}
		defer sb.Close()
		overrides = sb.Overrides
	}
	cfg, _, err := config.Load(config.Source{File: loc.config, Env: os.Environ(), Overrides: overrides, DataDir: loc.data})
	if err != nil {
		return &exitError{code: exitFailure, err: fmt.Errorf("self-test: configuration refused: %w", err)}
	}
	if _, err := update.New(update.Config{DataDir: cfg.DataDir, CurrentVersion: buildinfo.Version, Mode: update.ModeOff}); err != nil {
		return &exitError{code: exitFailure, err: fmt.Errorf("self-test: %w", err)}
	}
	// Rule M1: a store migrated by a newer binary would be refused at start, so
	// refuse it here, before the swap, instead of in a crash loop after it.
	// Read-only: the running daemon holds the store, and nothing may migrate
	// until this binary is the one running.
	have, err := store.FileSchemaVersion(ctx, storePath(cfg.DataDir))
	if err != nil {
		return &exitError{code: exitFailure, err: fmt.Errorf("self-test: %w", err)}
	}
	if know := store.SchemaVersion(); have > know {
		return &exitError{code: exitFailure, err: fmt.Errorf("self-test: %w: store is at %d, this binary knows up to %d", store.ErrSchemaTooNew, have, know)}
	}
	fmt.Fprintf(stdout, "configuration ok: organisation %s, environment %s, store schema %d, known up to %d\n",
		cfg.OrgNumber, cfg.Environment, have, store.SchemaVersion())
	fmt.Fprintf(stdout, "self-test ok version=%s\n", buildinfo.Version)
	return nil
}

// storePath is where integrasjonspunkt.Run keeps the store.
func storePath(dataDir string) string { return filepath.Join(dataDir, "store.db") }

// snapshotBeforeSwap is operations.md §4.4 step 7: when the target migrates
// the store (its schema_version differs from the store's, or the manifest
// does not say), it copies the store to <data>/update/pre-<from>-to-<to>.db
// so a rollback across the migration can go back to the old schema (rule
// M3). Only the newest snapshot is kept: an older one predates an update
// that was since committed and would lose everything after it. It returns
// the snapshot's path, or "" when none was needed.
func snapshotBeforeSwap(ctx context.Context, dataDir, from string, target manifest.Release) (string, error) {
	src := storePath(dataDir)
	if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
		return "", nil // nothing stored yet: nothing to lose
	}
	have, err := store.FileSchemaVersion(ctx, src)
	if err != nil {
		return "", err
	}
	if target.SchemaVersion != 0 && target.SchemaVersion == have {
		return "", nil
	}
	dir := filepath.Join(dataDir, "update")
	dst := filepath.Join(dir, "pre-"+from+"-to-"+target.Version+".db")
	if err := store.Snapshot(ctx, src, dst); err != nil {
		return "", err
	}
	old, _ := filepath.Glob(filepath.Join(dir, "pre-*-to-*.db"))
	for _, o := range old {
		if o != dst {
			_ = os.Remove(o)
		}
	}
	return dst, nil
}

// restoreAfterRollback runs at start, before the store is opened. When this
// version was just rolled back to, and the version rolled back from had
// migrated the store beyond what this binary knows, the store cannot be
// opened (rule M1): it puts back the snapshot snapshotBeforeSwap took (rule
// M3), keeps the newer store as <data>/update/failed-<version>.db, and says
// how many messages only that one holds. Without it the rolled-back daemon
// would refuse its store at every start. It returns the detail it reported,
// or "" when nothing needed restoring.
func restoreAfterRollback(ctx context.Context, upd *update.Updater, dataDir string, log *slog.Logger) (string, error) {
	st, err := upd.Status()
	if err != nil {
		return "", err
	}
	s := st.State
	if s.Phase != update.PhaseRolledBack || s.From != buildinfo.Version || s.To == "" {
		return "", nil
	}
	src := storePath(dataDir)
	have, err := store.FileSchemaVersion(ctx, src)
	if err != nil || have <= store.SchemaVersion() {
		return "", err
	}
	snap := filepath.Join(dataDir, "update", "pre-"+s.From+"-to-"+s.To+".db")
	if _, err := os.Stat(snap); err != nil {
		return "", fmt.Errorf("%w: %s migrated the store to schema %d before it was rolled back, and its pre-update snapshot is missing (%w): restore the store from a backup",
			store.ErrSchemaTooNew, s.To, have, err)
	}
	if v, err := store.FileSchemaVersion(ctx, snap); err != nil || v > store.SchemaVersion() {
		return "", fmt.Errorf("pre-update snapshot %s cannot be restored (schema %d, this binary knows up to %d): %w", snap, v, store.SchemaVersion(), err)
	}
	aside := filepath.Join(dataDir, "update", "failed-"+s.To+".db")
	lost, err := store.Restore(ctx, snap, src, aside)
	if err != nil {
		return "", err
	}
	detail := fmt.Sprintf("store restored from the snapshot taken before %s: %d message(s) accepted and %d status change(s) made by %s are not in it; that store is kept as %s",
		s.To, lost.Accepted, lost.Changed, s.To, aside)
	log.ErrorContext(ctx, "store restored from the pre-update snapshot", slog.String("failed_version", s.To),
		slog.Int("messages_not_restored", lost.Accepted), slog.Int("status_changes_not_restored", lost.Changed),
		slog.String("kept_as", aside))
	return detail, upd.StoreRestored(ctx, detail)
}

package update

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"aead.dev/minisign"
	"github.com/efm-go/efm/update/manifest"
)

// ErrRestart tells the daemon to shut down (draining as for any stop) and
// exit with ExitRestart, so the service manager starts the executable now on
// disk: the new version after a swap, the old one after a rollback.
var ErrRestart = errors.New("update: restart to run the swapped executable")

// Other errors callers branch on.
var (
	ErrDisabled     = errors.New("updates are off (efm.update.mode=off)")
	ErrBusy         = errors.New("another update operation is running")
	ErrNotAvailable = errors.New("no update to apply")
	ErrNotifyMode   = errors.New("efm.update.mode=notify: the package manager owns the executable; update the package instead")
)

// Updater runs the update chain for one installation. It is safe for
// concurrent use; the daemon and an `update` subcommand in another process
// coordinate through a lock file in the state dir.
type Updater struct {
	cfg       Config
	log       *slog.Logger
	keys      []minisign.PublicKey
	exe       string
	dir       string // <data>/update
	statePath string
	windows   *Windows

	mu             sync.Mutex // serialises state changes inside this process
	probation      bool       // Boot found this start on probation
	probationStart time.Time
	mailWG         sync.WaitGroup

	checksMu sync.Mutex
	checks   map[CheckOutcome]int64
}

// CheckOutcome is one result and reason of a check, the labels of
// efm_update_checks_total.
type CheckOutcome struct{ Result, Reason string }

// Checks counts this process's checks by outcome, so a clock that is behind
// shows as a climbing clock_behind count instead of an update that silently
// never comes.
func (u *Updater) Checks() map[CheckOutcome]int64 {
	u.checksMu.Lock()
	defer u.checksMu.Unlock()
	return maps.Clone(u.checks)
}

// New checks cfg and fills its defaults. It has no side effects: the
// `update status` subcommand builds one next to a running daemon.
func New(cfg Config) (*Updater, error) {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, a...)...))
	}
	if cfg.DataDir == "" {
		bad("DataDir is required")
	}
	if cfg.CurrentVersion == "" {
		bad("CurrentVersion is required")
	}
	setDefault(&cfg.Environment, "production")
	setDefault(&cfg.Mode, ModeAuto)
	setDefault(&cfg.Channel, manifest.ChannelStable)
	setDefault(&cfg.Windows, DefaultWindows)
	setDefault(&cfg.Timezone, DefaultTimezone)
	setDefault(&cfg.GOOS, runtime.GOOS)
	setDefault(&cfg.GOARCH, runtime.GOARCH)
	setDefaultDur(&cfg.WindowLength, DefaultWindowLength)
	setDefaultDur(&cfg.CheckInterval, DefaultCheckInterval)
	setDefaultDur(&cfg.Probation, DefaultProbation)
	setDefaultDur(&cfg.ProbationStable, DefaultProbationStable)
	setDefaultDur(&cfg.PollInterval, DefaultPollInterval)
	setDefaultDur(&cfg.PreflightTimeout, DefaultPreflight)
	setDefaultDur(&cfg.Wake, time.Minute)
	if cfg.AllowUrgent == nil {
		t := true
		cfg.AllowUrgent = &t
	}
	switch cfg.Mode {
	case ModeAuto, ModeNotify, ModeOff:
	default:
		bad("mode %q is not auto, notify or off", cfg.Mode)
	}
	if cfg.Channel != manifest.ChannelStable && cfg.Channel != manifest.ChannelEarlybird {
		bad("channel %q is not stable or earlybird", cfg.Channel)
	}
	if cfg.Mode != ModeOff && cfg.ManifestURL == "" {
		bad("ManifestURL (efm.update.url) is required unless the mode is off")
	}
	if cfg.ManifestURL != "" {
		if err := CheckURL(cfg.ManifestURL); err != nil {
			bad("efm.update.url: %w", err)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment, // HTTPS_PROXY, as §4.4 step 2 asks
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
		}, CheckRedirect: checkRedirect}
	}
	keys := cfg.PublicKeys
	if len(keys) == 0 {
		keys = BuiltinKeys()
	}
	exe := cfg.ExecutablePath
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			bad("finding the executable: %v", err)
		}
	}
	if exe != "" {
		if p, err := filepath.EvalSymlinks(exe); err == nil {
			exe = p
		}
		if p, err := filepath.Abs(exe); err == nil {
			exe = p
		}
	}
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		bad("timezone %q: %v", cfg.Timezone, err)
	}
	var w *Windows
	if loc != nil {
		delay := cfg.SpreadDelay
		if delay == 0 && cfg.MaxDelay >= 0 {
			maxDelay := cfg.MaxDelay
			if maxDelay == 0 {
				maxDelay = MaxSpreadDelay
			}
			// A third of the window at most, so a short window still leaves
			// most of its length for the swap.
			delay = SpreadDelay(cfg.DataDir, min(maxDelay, cfg.WindowLength/3))
		}
		if w, err = ParseWindows(cfg.Windows, loc, cfg.WindowLength, max(delay, 0)); err != nil {
			errs = append(errs, fmt.Errorf("%w: efm.update.windows: %w", ErrConfig, err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	dir := filepath.Join(cfg.DataDir, "update")
	return &Updater{
		cfg:       cfg,
		log:       cfg.Logger.With(slog.String("component", "update")),
		keys:      keys,
		exe:       exe,
		dir:       dir,
		statePath: filepath.Join(dir, "state.json"),
		windows:   w,
	}, nil
}

// isDevBuild reports an unstamped developer build (buildinfo's default
// "0.0.0-dev"): it must never replace itself with a release.
func isDevBuild(v string) bool { return strings.HasSuffix(v, "-dev") }

func setDefault(s *string, d string) {
	if *s == "" {
		*s = d
	}
}

func setDefaultDur(v *time.Duration, d time.Duration) {
	if *v <= 0 {
		*v = d
	}
}

// Windows returns the parsed update windows.
func (u *Updater) Windows() *Windows { return u.windows }

// Boot is called first thing in `run`, before the store is opened: if this
// start is a new version on probation it counts the attempt, and after
// MaxBootAttempts starts (a crash loop) it rolls back at once and returns
// ErrRestart. It returns nil when the daemon should start normally.
func (u *Updater) Boot(ctx context.Context) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	s, err := readState(u.statePath)
	if err != nil {
		return err
	}
	if s.Phase != PhaseProbation {
		return nil
	}
	if s.To != u.cfg.CurrentVersion {
		// Someone put another binary in place (a manual restore, a package
		// upgrade): this start is not the one on probation.
		u.log.WarnContext(ctx, "update probation abandoned: a different version is running",
			slog.String("expected", s.To), slog.String("running", u.cfg.CurrentVersion))
		s.Phase, s.Reason = PhaseIdle, ReasonOperator
		return writeState(u.statePath, s)
	}
	s.Attempts++
	if err := writeState(u.statePath, s); err != nil {
		return err
	}
	if s.Attempts > MaxBootAttempts {
		u.log.ErrorContext(ctx, "new version keeps crashing at start; rolling back",
			slog.String("version", s.To), slog.Int("attempts", s.Attempts))
		if err := u.rollbackLocked(ctx, s, ReasonCrashLoop, fmt.Sprintf("%d starts without passing probation", s.Attempts-1)); errors.Is(err, ErrRestart) {
			return ErrRestart
		}
		return nil // cannot roll back: start the new version after all
	}
	u.probation, u.probationStart = true, u.cfg.Now()
	u.log.InfoContext(ctx, "new version on probation", slog.String("from", s.From), slog.String("to", s.To),
		slog.Int("attempt", s.Attempts), logDur("first_up_within", u.cfg.Probation), logDur("stable_for", u.cfg.ProbationStable))
	return nil
}

func logDur(key string, d time.Duration) slog.Attr { return slog.Float64(key+"_seconds", d.Seconds()) }

// Run is the update loop inside the daemon: probation of this start if Boot
// found one, a check (and staging) right away, then a check every
// CheckInterval and the swap in the windows. It returns nil when ctx ends,
// ErrRestart when the daemon must exit for the restart, or an error when the
// loop cannot continue.
func (u *Updater) Run(ctx context.Context) error {
	probationDone := make(chan error, 1)
	if u.probation {
		go func() { probationDone <- u.watchProbation(ctx) }()
	} else {
		probationDone <- nil
	}
	onProbation := u.probation
	if u.cfg.Mode == ModeOff || isDevBuild(u.cfg.CurrentVersion) {
		u.log.InfoContext(ctx, "automatic update is off", slog.String("mode", u.cfg.Mode), slog.String("version", u.cfg.CurrentVersion))
		select {
		case <-ctx.Done():
			return nil
		case err := <-probationDone:
			if err != nil {
				return err
			}
			<-ctx.Done()
			return nil
		}
	}
	// The check at start only stages: a swap right after a restart would make
	// a restart loop out of any window misconfiguration.
	_, _ = u.cycle(ctx, true)
	nextCheck := u.cfg.Now().Add(u.cfg.CheckInterval)
	for {
		wake := nextCheck
		if w := u.nextApplyTime(); !w.IsZero() && w.Before(wake) {
			wake = w
		}
		d := min(max(wake.Sub(u.cfg.Now()), 0), u.cfg.Wake)
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case err := <-probationDone:
			timer.Stop()
			probationDone = nil // a nil channel blocks: probation is over
			onProbation = false
			if err != nil {
				u.flushMail(10 * time.Second)
				return err
			}
			continue
		case <-timer.C:
		}
		now := u.cfg.Now()
		check := !now.Before(nextCheck)
		if check {
			nextCheck = now.Add(u.cfg.CheckInterval)
		}
		if !check && onProbation {
			continue
		}
		applied, err := u.cycleOrApply(ctx, check, onProbation)
		if applied {
			u.flushMail(10 * time.Second)
			return ErrRestart
		}
		if errors.Is(err, ErrSwapRollback) {
			// The executable may be missing: exiting now would leave nothing
			// for the service manager to start. Keep serving on the old code
			// in memory; the notice has gone out.
			u.log.ErrorContext(ctx, "executable may be missing after a failed swap; keep this process running and restore the binary by hand",
				slog.String("executable", u.exe))
		}
	}
}

// cycleOrApply runs a check when due, then applies a staged update if the
// time is right.
func (u *Updater) cycleOrApply(ctx context.Context, check, onProbation bool) (bool, error) {
	if u.swappedUnderUs(ctx) {
		return true, nil
	}
	if check {
		if _, err := u.cycle(ctx, true); err != nil {
			return false, err
		}
	}
	if onProbation || u.cfg.Mode != ModeAuto {
		return false, nil
	}
	s, err := readState(u.statePath)
	if err != nil || s.Staged == nil {
		return false, err
	}
	now := u.cfg.Now()
	open, _ := u.windows.Open(now)
	urgent := s.Staged.Urgency == manifest.UrgencySecurity && *u.cfg.AllowUrgent
	if !open && !urgent {
		return false, nil
	}
	err = u.applyStaged(ctx, s.Staged, false)
	if errors.Is(err, ErrRestart) {
		return true, nil
	}
	return false, err
}

// swappedUnderUs reports whether an `update apply` or `update rollback` in
// another process has replaced the executable while this one runs: the state
// names a version on disk other than this one. The daemon then restarts
// into it instead of checking (and perhaps swapping) on top of it.
func (u *Updater) swappedUnderUs(ctx context.Context) bool {
	s, err := readState(u.statePath)
	if err != nil {
		return false
	}
	var onDisk string
	switch s.Phase {
	case PhaseProbation:
		onDisk = s.To
	case PhaseRolledBack:
		onDisk = s.From
	default:
		return false
	}
	if onDisk == "" || onDisk == u.cfg.CurrentVersion || u.probation {
		return false
	}
	u.log.InfoContext(ctx, "the executable was replaced by an update command; restarting into it",
		slog.String("running", u.cfg.CurrentVersion), slog.String("on_disk", onDisk))
	return true
}

// nextApplyTime is when the next window opens if something is staged.
func (u *Updater) nextApplyTime() time.Time {
	if u.cfg.Mode != ModeAuto {
		return time.Time{}
	}
	s, err := readState(u.statePath)
	if err != nil || s.Staged == nil {
		return time.Time{}
	}
	return u.windows.Next(u.cfg.Now())
}

// Report is the outcome of one check.
type Report struct {
	Result  string // a Result value
	Reason  string // a Reason code, "" when something was found
	Detail  string
	Current string
	Offered string // the version the manifest names for our channel
	Target  string // the version chosen, if any
	Urgent  bool
	Staged  bool
	Serial  uint64
}

// Check fetches and verifies the manifest and says what would be installed,
// without downloading (`update check`).
func (u *Updater) Check(ctx context.Context) (Report, error) {
	return u.cycle(ctx, false)
}

// cycle is one check: fetch, verify, choose, and stage if wanted. The result
// is recorded in the state and, on a change, sent as an event.
func (u *Updater) cycle(ctx context.Context, stage bool) (Report, error) {
	if u.cfg.ManifestURL == "" {
		return Report{Current: u.cfg.CurrentVersion}, fmt.Errorf("%w: efm.update.url is not set", ErrDisabled)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	rep := Report{Current: u.cfg.CurrentVersion}
	s, err := readState(u.statePath)
	if err != nil {
		return rep, err
	}
	now := u.cfg.Now()
	s.LastCheck = now
	fail := func(err error, result string) (Report, error) {
		rep.Result, rep.Reason, rep.Detail = result, ReasonOf(err), err.Error()
		if result != ResultFailed && s.Staged != nil {
			// The manifest no longer offers what was staged.
			_ = os.RemoveAll(u.stagingDir(s.Staged.Version))
			s.Staged = nil
		}
		u.record(ctx, &s, rep)
		if werr := writeState(u.statePath, s); werr != nil {
			return rep, errors.Join(err, werr)
		}
		return rep, err
	}
	data, sig, err := u.fetchManifest(ctx)
	if err != nil {
		return fail(err, ResultFailed)
	}
	m, err := manifest.Verify(u.keys, data, sig, manifest.Freshness{Now: now, MinSerial: s.HighestSerial})
	if err != nil {
		return fail(fmt.Errorf("manifest refused: %w", err), ResultFailed)
	}
	s.HighestSerial = max(s.HighestSerial, m.Serial)
	s.ManifestExpiresAt = m.ExpiresAt
	s.Available, s.Waiting = "", "" // what this manifest offers replaces what the last one did
	rep.Serial = m.Serial
	rep.Offered = m.Environments[u.cfg.Environment].Get(u.cfg.Channel)
	s.RevokedRunning = ""
	if m.IsRevoked(u.cfg.CurrentVersion) {
		s.RevokedRunning = u.cfg.CurrentVersion
		u.log.ErrorContext(ctx, "the running version is revoked; install a newer one", slog.String("version", u.cfg.CurrentVersion))
	}
	c, err := Choose(m, u.cfg.CurrentVersion, "", u.policy(&s, false, false))
	if err != nil {
		var re *RefusedError
		switch {
		case errors.Is(err, ErrUpToDate):
			return fail(err, ResultUpToDate)
		case errors.As(err, &re) && re.Waiting:
			s.Waiting = re.Version
			return fail(err, ResultWaiting)
		default:
			return fail(err, ResultRefused)
		}
	}
	rep.Target = c.Release.Version
	rep.Urgent = c.Release.Urgency == manifest.UrgencySecurity
	s.Available = c.Release.Version
	if s.Staged != nil && s.Staged.Version != c.Release.Version {
		_ = os.RemoveAll(u.stagingDir(s.Staged.Version))
		s.Staged = nil
	}
	if !stage {
		rep.Result = ResultAvailable
		u.record(ctx, &s, rep)
		return rep, writeState(u.statePath, s)
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	st, err := u.stage(dctx, c)
	if err != nil {
		return fail(fmt.Errorf("staging %s: %w", c.Release.Version, err), ResultFailed)
	}
	s.Staged = st
	rep.Staged = true
	rep.Result = ResultStaged
	if u.cfg.Mode == ModeNotify {
		rep.Result = ResultAvailable
	}
	u.record(ctx, &s, rep)
	return rep, writeState(u.statePath, s)
}

func (u *Updater) policy(s *State, operator, downgrade bool) Policy {
	var inUse []int
	if u.cfg.APIMajorsInUse != nil {
		inUse = u.cfg.APIMajorsInUse()
	}
	return Policy{
		Environment: u.cfg.Environment, Channel: u.cfg.Channel, Pin: u.cfg.Pin, MaxMajor: u.cfg.MaxMajor,
		OS: u.cfg.GOOS, Arch: u.cfg.GOARCH, Blocked: s.blocked, APIMajorsInUse: inUse,
		Operator: operator, AllowDowngrade: downgrade,
	}
}

// record logs a check's outcome and, when it changed since the last check,
// sends the matching event, so an hourly check during an outage sends one
// notice, not one an hour.
func (u *Updater) record(ctx context.Context, s *State, rep Report) {
	changed := s.LastResult != rep.Result || s.LastReason != rep.Reason
	u.checksMu.Lock()
	if u.checks == nil {
		u.checks = map[CheckOutcome]int64{}
	}
	u.checks[CheckOutcome{rep.Result, rep.Reason}]++
	u.checksMu.Unlock()
	s.LastResult, s.LastReason, s.LastError = rep.Result, rep.Reason, rep.Detail
	attrs := []any{slog.String("result", rep.Result), slog.String("current", rep.Current)}
	if rep.Offered != "" {
		attrs = append(attrs, slog.String("offered", rep.Offered))
	}
	if rep.Reason != "" {
		attrs = append(attrs, slog.String("reason", rep.Reason), slog.String("detail", rep.Detail))
	}
	switch rep.Result {
	case ResultFailed:
		u.log.WarnContext(ctx, "update check refused the manifest or artifact", attrs...)
	case ResultRefused, ResultWaiting:
		u.log.InfoContext(ctx, "update offered but not installed", attrs...)
	default:
		u.log.InfoContext(ctx, "update check done", attrs...)
	}
	if !changed {
		return
	}
	e := Event{At: u.cfg.Now(), From: rep.Current, To: rep.Target, Reason: rep.Reason, Detail: rep.Detail}
	switch rep.Result {
	case ResultFailed:
		e.To = rep.Offered
		e.Type = EventFailed
	case ResultWaiting:
		e.To = rep.Offered
		e.Type = EventWaiting
	case ResultStaged, ResultAvailable:
		if !rep.Staged {
			return
		}
		e.Type = EventStaged
	default:
		return
	}
	u.emit(ctx, e)
}

// emit hands an event to OnEvent and mails it when mail is configured.
func (u *Updater) emit(ctx context.Context, e Event) {
	if u.cfg.OnEvent != nil {
		u.cfg.OnEvent(e)
	}
	u.mail(ctx, e)
}

// mail sends e's notice in the background when mail is configured;
// flushMail waits for it before the process exits.
func (u *Updater) mail(ctx context.Context, e Event) {
	if !u.cfg.Mail.enabled() || subject(e, "") == "" {
		return
	}
	var tail string
	if e.Type == EventRolledBack && u.cfg.LogTail != nil {
		tail = u.cfg.LogTail()
	}
	u.mailWG.Add(1)
	go func() {
		defer u.mailWG.Done()
		if err := sendMail(u.cfg.Mail, e, tail); err != nil {
			u.log.WarnContext(ctx, "update notice not mailed", slog.Any("error", err))
		}
	}()
}

// flushMail waits a little for notices in flight before the process exits.
func (u *Updater) flushMail(limit time.Duration) {
	done := make(chan struct{})
	go func() { u.mailWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
	}
}

// ApplyOptions are the operator's choices for `update apply`.
type ApplyOptions struct {
	Version        string // empty: the channel's version
	AllowDowngrade bool
}

// Apply is `update apply`: check, stage, preflight and swap now, outside the
// windows, lifting the waits that exist for an operator's decision. It
// returns ErrRestart after a swap; the caller restarts the service.
func (u *Updater) Apply(ctx context.Context, opts ApplyOptions) error {
	if u.cfg.Mode == ModeNotify {
		return ErrNotifyMode
	}
	u.mu.Lock()
	s, err := readState(u.statePath)
	if err != nil {
		u.mu.Unlock()
		return err
	}
	data, sig, err := u.fetchManifest(ctx)
	if err != nil {
		u.mu.Unlock()
		return err
	}
	m, err := manifest.Verify(u.keys, data, sig, manifest.Freshness{Now: u.cfg.Now(), MinSerial: s.HighestSerial})
	if err != nil {
		u.mu.Unlock()
		return fmt.Errorf("manifest refused: %w", err)
	}
	c, err := Choose(m, u.cfg.CurrentVersion, opts.Version, u.policy(&s, true, opts.AllowDowngrade))
	if err != nil {
		u.mu.Unlock()
		return err
	}
	st, err := u.stage(ctx, c)
	if err != nil {
		u.mu.Unlock()
		return fmt.Errorf("staging %s: %w", c.Release.Version, err)
	}
	s.HighestSerial = max(s.HighestSerial, m.Serial)
	s.Staged = st
	err = writeState(u.statePath, s)
	u.mu.Unlock()
	if err != nil {
		return err
	}
	return u.applyStaged(ctx, st, true)
}

// applyStaged is steps 5–9: re-verify, preflight, swap, probation state.
func (u *Updater) applyStaged(ctx context.Context, st *Staged, operator bool) error {
	unlock, err := u.lock()
	if err != nil {
		return err
	}
	defer unlock()
	u.mu.Lock()
	defer u.mu.Unlock()
	s, err := readState(u.statePath)
	if err != nil {
		return err
	}
	from, to := u.cfg.CurrentVersion, st.Version
	failed := func(err error) error {
		s.LastResult, s.LastReason, s.LastError = ResultFailed, ReasonOf(err), err.Error()
		if errors.Is(err, ErrChecksumMismatch) || errors.Is(err, ErrArtifactSignature) || errors.Is(err, ErrSizeMismatch) {
			_ = os.RemoveAll(filepath.Dir(st.Path)) // touched since staging: fetch again at the next check
			s.Staged = nil
		}
		if errors.Is(err, ErrPreflight) {
			s.block(to, ReasonPreflightFailed, u.cfg.Now())
			s.Staged = nil
		}
		u.log.ErrorContext(ctx, "update not applied", slog.String("to", to), slog.String("reason", ReasonOf(err)), slog.Any("error", err))
		u.emit(ctx, Event{Type: EventFailed, At: u.cfg.Now(), From: from, To: to, Reason: ReasonOf(err), Detail: err.Error()})
		return errors.Join(err, writeState(u.statePath, s))
	}
	if err := u.verifyStaged(st); err != nil {
		return failed(fmt.Errorf("re-checking the staged file: %w", err))
	}
	if err := u.preflight(ctx, st); err != nil {
		return failed(err)
	}
	if u.cfg.BeforeSwap != nil {
		rel := manifest.Release{Version: st.Version, SchemaVersion: st.SchemaVersion, Urgency: st.Urgency}
		if err := u.cfg.BeforeSwap(ctx, rel); err != nil {
			return failed(fmt.Errorf("%w: before swap: %w", ErrSwap, err))
		}
	}
	prevSHA, err := fileSHA256(u.exe)
	if err != nil {
		return failed(fmt.Errorf("%w: hashing the running executable: %w", ErrSwap, err))
	}
	// Write the probation state before the swap: if the process dies between
	// the swap and the state write, the new binary would start without
	// knowing it is on probation. Undone below if the swap fails.
	before := s
	s.Phase, s.From, s.To, s.PreviousSHA256, s.Attempts = PhaseProbation, from, to, prevSHA, 0
	s.SwappedAt, s.Reason, s.LogTail = u.cfg.Now(), "", ""
	s.LastResult, s.LastReason, s.LastError = ResultApplied, "", ""
	s.Staged, s.Available = nil, ""
	if err := writeState(u.statePath, s); err != nil {
		return err
	}
	if err := u.swapIn(st.Path, st.SigPath, st.SHA256, previousPath(u.exe)); err != nil {
		s = before
		return failed(err)
	}
	u.rotateSignatures(st.SigPath)
	_ = os.RemoveAll(filepath.Join(u.dir, "staging"))
	_ = os.Remove(failedPath(u.exe))
	u.log.InfoContext(ctx, "update applied; restarting into the new version", slog.String("from", from), slog.String("to", to), slog.Bool("operator", operator))
	u.emit(ctx, Event{Type: EventApplied, At: u.cfg.Now(), From: from, To: to})
	return ErrRestart
}

// rotateSignatures keeps the minisig of the running and the previous
// executable, so a rollback can check the old binary's signature as well as
// its checksum.
func (u *Updater) rotateSignatures(newSig string) {
	cur, prev := filepath.Join(u.dir, "current.minisig"), filepath.Join(u.dir, "previous.minisig")
	_ = os.Remove(prev)
	_ = os.Rename(cur, prev)
	if b, err := os.ReadFile(newSig); err == nil {
		_ = writeFileAtomic(cur, b, 0o600)
	}
}

// lock takes the cross-process lock for a swap. A lock older than the
// longest swap (preflight plus copy) is left over from a crash and is broken.
func (u *Updater) lock() (func(), error) {
	if err := os.MkdirAll(u.dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", u.dir, err)
	}
	name := filepath.Join(u.dir, "lock")
	for range 2 {
		f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			_, _ = f.WriteString(strconv.Itoa(os.Getpid()))
			f.Close()
			return func() { _ = os.Remove(name) }, nil
		}
		fi, serr := os.Stat(name)
		if serr != nil || time.Since(fi.ModTime()) < u.cfg.PreflightTimeout+5*time.Minute {
			return nil, ErrBusy
		}
		_ = os.Remove(name)
	}
	return nil, ErrBusy
}

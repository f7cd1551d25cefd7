package update_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"aead.dev/minisign"
	"github.com/efm-go/efm/internal/apitest"
	"github.com/efm-go/efm/update"
	"github.com/efm-go/efm/update/manifest"
	"github.com/efm-go/efm/update/updatesim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// env is one installation next to a release simulator.
type env struct {
	sim  *updatesim.Server
	srv  *httptest.Server
	exe  string
	data string
	old  []byte // the installed executable's bytes
	// now is the clock the simulator signs with; nil is the real clock.
	now func() time.Time
}

func newEnv(t *testing.T) *env { return newEnvAt(t, nil) }

// newEnvAt is an installation whose release server signs with now, the same
// clock the test gives the updater; nil is the real clock.
func newEnvAt(t *testing.T, now func() time.Time) *env {
	t.Helper()
	sim, err := updatesim.New(updatesim.Options{Now: now})
	require.NoError(t, err)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	e := &env{sim: sim, srv: srv, exe: filepath.Join(dir, "bin", "integrasjonspunkt"), data: filepath.Join(dir, "data"), now: now}
	copyFile(t, testDaemon(t, "1.0.0", "up", "ok"), e.exe)
	e.old = readFile(t, e.exe)
	require.NoError(t, os.MkdirAll(e.data, 0o700))
	return e
}

func (e *env) publish(t *testing.T, version, health, selftest string, ro updatesim.ReleaseOptions) []byte {
	t.Helper()
	b := readFile(t, testDaemon(t, version, health, selftest))
	if ro.Channels == nil {
		ro.Channels = []string{manifest.ChannelStable}
	}
	require.NoError(t, e.sim.Publish(version, map[string][]byte{platform(): b}, ro))
	return b
}

// publishFake publishes bytes that are never run, for checks that stop
// before the preflight.
func (e *env) publishFake(t *testing.T, version string) {
	t.Helper()
	require.NoError(t, e.sim.Publish(version, map[string][]byte{platform(): []byte("not run: " + version)},
		updatesim.ReleaseOptions{Channels: []string{manifest.ChannelStable}}))
}

func (e *env) config() update.Config {
	return update.Config{
		DataDir: e.data, ExecutablePath: e.exe, CurrentVersion: "1.0.0",
		ManifestURL: e.srv.URL + "/manifest.json", PublicKeys: []minisign.PublicKey{e.sim.PublicKey()},
		Windows: "* * * * * *", WindowLength: time.Hour, SpreadDelay: -1,
		CheckInterval: 100 * time.Millisecond, Wake: 50 * time.Millisecond,
		Probation: 2 * time.Second, ProbationStable: 300 * time.Millisecond, PollInterval: 50 * time.Millisecond,
		Now: e.now,
	}
}

func (e *env) updater(t *testing.T, mods ...func(*update.Config)) *update.Updater {
	t.Helper()
	cfg := e.config()
	for _, m := range mods {
		m(&cfg)
	}
	if cfg.Now != nil && e.now == nil {
		// The class of bug that turned main red: an updater on a fixed day
		// reading manifests the simulator signed at the real time.
		t.Fatal("the updater's clock is injected but the release simulator signs with the real one: build the env with newEnvAt and the same clock")
	}
	u, err := update.New(cfg)
	require.NoError(t, err)
	return u
}

func (e *env) state(t *testing.T) update.State {
	t.Helper()
	return status(t, e.data, e.exe).State
}

// runner is u.Run in the background.
type runner struct {
	done   chan struct{}
	err    error
	cancel context.CancelFunc
}

// runUpdater runs u.Run in the background until the test ends.
func runUpdater(t *testing.T, u *update.Updater) *runner {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{done: make(chan struct{}), cancel: cancel}
	go func() { r.err = u.Run(ctx); close(r.done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return r
}

// wait returns Run's result, failing the test if it takes longer than limit.
func (r *runner) wait(t *testing.T, limit time.Duration, what string) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(limit):
		t.Fatalf("Run still running: %s", what)
		return nil
	}
}

// running fails the test if Run has returned.
func (r *runner) running(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
		t.Fatalf("Run returned %v", r.err)
	default:
	}
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCheck_ManifestRefusals(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, e *env)
		wantErr error
		reason  string
	}{
		{"bad signature", func(t *testing.T, e *env) { e.sim.SetFault(updatesim.Fault{BadSignature: true}) }, manifest.ErrSignature, update.ReasonBadSignature},
		{"expired manifest", func(t *testing.T, e *env) { e.sim.SetFault(updatesim.Fault{Expired: true}) }, manifest.ErrExpired, update.ReasonManifestExpired},
		{"server down", func(t *testing.T, e *env) { e.sim.SetFault(updatesim.Fault{Status: http.StatusBadGateway}) }, update.ErrManifestUnavailable, update.ReasonManifestUnavailable},
		{"replayed serial", func(t *testing.T, e *env) {
			e.publishFake(t, "1.0.1") // serial moves past the base
			_, err := e.updater(t).Check(context.Background())
			require.NoError(t, err)
			e.sim.SetFault(updatesim.Fault{ReplaySerial: true})
		}, manifest.ErrSerialReplay, update.ReasonSerialReplay},
		{"lower version", func(t *testing.T, e *env) {
			e.publishFake(t, "0.9.0")
		}, update.ErrDowngrade, update.ReasonDowngrade},
		{"revoked", func(t *testing.T, e *env) {
			e.publishFake(t, "1.0.1")
			e.sim.Revoke("1.0.1")
		}, update.ErrRevoked, update.ReasonRevoked},
		{"new major waits", func(t *testing.T, e *env) {
			e.publishFake(t, "2.0.0")
		}, update.ErrMajor, update.ReasonMajor},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.publishFake(t, "1.0.0")
			tt.setup(t, e)
			rep, err := e.updater(t).Check(context.Background())
			require.ErrorIs(t, err, tt.wantErr)
			assert.Equal(t, tt.reason, rep.Reason)
			assert.Equal(t, tt.reason, update.ReasonOf(err))
			s := e.state(t)
			assert.Equal(t, tt.reason, s.LastReason)
			assert.NotEmpty(t, s.LastError)
			assert.Equal(t, e.old, readFile(t, e.exe), "executable untouched")
		})
	}
}

func TestCheck_HealthComponent(t *testing.T) {
	e := newEnv(t)
	e.publishFake(t, "1.0.0")
	u := e.updater(t)
	_, err := u.Check(context.Background())
	require.ErrorIs(t, err, update.ErrUpToDate)
	assert.Equal(t, "UP", u.HealthComponent().Status)

	e.sim.Revoke("1.0.0")
	_, err = u.Check(context.Background())
	require.ErrorIs(t, err, update.ErrUpToDate)
	c := u.HealthComponent()
	assert.Equal(t, "DEGRADED", c.Status, "a revoked running version is an alert")
	assert.Equal(t, update.ReasonRevoked, c.Reason)

	e.sim.SetFault(updatesim.Fault{BadSignature: true})
	_, err = u.Check(context.Background())
	require.Error(t, err)
	c = u.HealthComponent()
	assert.Equal(t, "DEGRADED", c.Status, "a refused manifest degrades, never downs, the daemon")
	assert.Equal(t, update.ReasonBadSignature, c.Reason)
}

// While the running daemon refuses an update, Run keeps going: nothing is
// swapped and no restart is asked for.
func TestRun_ArtifactRefusalsKeepRunning(t *testing.T) {
	tests := []struct {
		name   string
		fault  updatesim.Fault
		reason string
	}{
		{"wrong checksum in manifest", updatesim.Fault{WrongChecksum: true}, update.ReasonChecksumMismatch},
		{"artifact altered on the server", updatesim.Fault{TamperArtifact: true}, update.ReasonChecksumMismatch},
		{"artifact signed by an untrusted key", updatesim.Fault{BadArtifactSig: true}, update.ReasonArtifactSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.publish(t, "1.0.1", "up", "ok", updatesim.ReleaseOptions{})
			e.sim.SetFault(tt.fault)
			var evs []update.Event
			var mu sync.Mutex
			u := e.updater(t, func(c *update.Config) {
				c.OnEvent = func(ev update.Event) { mu.Lock(); evs = append(evs, ev); mu.Unlock() }
			})
			r := runUpdater(t, u)
			eventually(t, tt.reason, func() bool { return e.state(t).LastReason == tt.reason })
			time.Sleep(300 * time.Millisecond) // several more checks
			r.running(t)
			assert.Equal(t, e.old, readFile(t, e.exe))
			assert.Nil(t, e.state(t).Staged, "nothing unverified is staged")
			mu.Lock()
			got := append([]update.Event(nil), evs...)
			mu.Unlock()
			require.Len(t, got, 1, "one notice, not one per check")
			assert.Equal(t, update.EventFailed, got[0].Type)
			assert.Equal(t, tt.reason, got[0].Reason)
			assert.Equal(t, "1.0.1", got[0].To)

			// Healed server: the update goes through.
			e.sim.SetFault(updatesim.Fault{})
			require.ErrorIs(t, r.wait(t, 20*time.Second, "no update after the server healed"), update.ErrRestart)
		})
	}
}

// clock is a settable fake clock shared by the updater and the release
// simulator, so the manifest is signed at the updater's "now".
type clock struct{ p atomic.Pointer[time.Time] }

func newClock(at time.Time) *clock { c := &clock{}; c.set(at); return c }
func (c *clock) set(at time.Time)  { c.p.Store(&at) }
func (c *clock) now() time.Time    { return *c.p.Load() }

// oslo is the update windows' time zone.
func oslo(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(update.DefaultTimezone)
	require.NoError(t, err)
	return loc
}

// next is the first wd at hh:mm Oslo time strictly after from. Scenarios
// that need a weekday derive it from the clock they run with, never from a
// calendar day: a fixed day becomes "the past" and its manifest "the future".
func next(t *testing.T, from time.Time, wd time.Weekday, hh, mm int) time.Time {
	t.Helper()
	f := from.In(oslo(t))
	d := time.Date(f.Year(), f.Month(), f.Day(), hh, mm, 0, 0, f.Location())
	for !d.After(f) || d.Weekday() != wd {
		d = time.Date(d.Year(), d.Month(), d.Day()+1, hh, mm, 0, 0, f.Location())
	}
	return d
}

// atShiftedClocks runs a window scenario from today's clock, a year ahead and
// a year back. It is the guard against tests bound to calendar days: a
// scenario that puts a fixed date back fails at least one of the three.
func atShiftedClocks(t *testing.T, scenario func(t *testing.T, base time.Time)) {
	for _, c := range []struct {
		name  string
		years int
	}{{"today", 0}, {"year_ahead", 1}, {"year_back", -1}} {
		t.Run(c.name, func(t *testing.T) { scenario(t, time.Now().AddDate(c.years, 0, 0)) })
	}
}

func TestRun_AppliesOnlyInWindow(t *testing.T) { atShiftedClocks(t, appliesOnlyInWindow) }

func appliesOnlyInWindow(t *testing.T, base time.Time) {
	clk := newClock(next(t, base, time.Monday, 4, 0)) // before the 05:30 window
	e := newEnvAt(t, clk.now)
	v101 := e.publish(t, "1.0.1", "up", "ok", updatesim.ReleaseOptions{})
	u := e.updater(t, func(c *update.Config) {
		c.Windows = update.DefaultWindows
		c.WindowLength = update.DefaultWindowLength
		c.CheckInterval = time.Hour
	})
	r := runUpdater(t, u)
	eventually(t, "staged", func() bool { s := e.state(t); return s.Staged != nil })
	time.Sleep(200 * time.Millisecond)
	r.running(t)
	assert.Equal(t, e.old, readFile(t, e.exe), "not applied outside a window")

	clk.set(clk.now().Add(91 * time.Minute)) // Monday 05:31
	require.ErrorIs(t, r.wait(t, 20*time.Second, "not applied in the window"), update.ErrRestart)
	assert.Equal(t, v101, readFile(t, e.exe))
	assert.Equal(t, e.old, readFile(t, filepath.Join(filepath.Dir(e.exe), "integrasjonspunkt.previous")))
	s := e.state(t)
	assert.Equal(t, update.PhaseProbation, s.Phase)
	assert.Equal(t, "1.0.0", s.From)
	assert.Equal(t, "1.0.1", s.To)
}

func TestRun_UrgentOutsideWindow(t *testing.T) { atShiftedClocks(t, urgentOutsideWindow) }

func urgentOutsideWindow(t *testing.T, base time.Time) {
	closed := newClock(next(t, base, time.Saturday, 13, 0)) // no window on Saturdays
	e := newEnvAt(t, closed.now)
	e.publish(t, "1.0.1", "up", "ok", updatesim.ReleaseOptions{Urgency: manifest.UrgencySecurity})
	u := e.updater(t, func(c *update.Config) {
		c.Windows = update.DefaultWindows
	})
	r := runUpdater(t, u)
	require.ErrorIs(t, r.wait(t, 20*time.Second, "security release not applied outside the windows"), update.ErrRestart)

	e2 := newEnvAt(t, closed.now)
	e2.publish(t, "1.0.1", "up", "ok", updatesim.ReleaseOptions{Urgency: manifest.UrgencySecurity})
	no := false
	u2 := e2.updater(t, func(c *update.Config) {
		c.Windows = update.DefaultWindows
		c.AllowUrgent = &no
	})
	r2 := runUpdater(t, u2)
	eventually(t, "staged", func() bool { return e2.state(t).Staged != nil })
	time.Sleep(300 * time.Millisecond)
	r2.running(t)
}

// The staged file is checked again just before the swap.
func TestRun_StagedFileAlteredIsRefused(t *testing.T) { atShiftedClocks(t, stagedFileAlteredIsRefused) }

func stagedFileAlteredIsRefused(t *testing.T, base time.Time) {
	// Monday 05:00 in Oslo: less than CheckInterval before the window.
	clk := newClock(next(t, base, time.Monday, 5, 0))
	e := newEnvAt(t, clk.now)
	e.publish(t, "1.0.1", "up", "ok", updatesim.ReleaseOptions{})
	u := e.updater(t, func(c *update.Config) {
		c.Windows = update.DefaultWindows
		c.CheckInterval = time.Hour
	})
	r := runUpdater(t, u)
	eventually(t, "staged", func() bool { return e.state(t).Staged != nil })
	ready := e.state(t).Staged.Path
	f, err := os.OpenFile(ready, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write([]byte("#!/bin/sh\n"))
	require.NoError(t, err)
	require.NoError(t, f.Close())

	clk.set(clk.now().Add(45 * time.Minute)) // Monday 05:45, in the window
	eventually(t, "refusal", func() bool { return e.state(t).LastReason == update.ReasonSizeMismatch })
	r.running(t)
	assert.Equal(t, e.old, readFile(t, e.exe))
	_, err = os.Stat(ready)
	assert.ErrorIs(t, err, os.ErrNotExist, "the altered file is thrown away")
}

func TestApply_ResumesTruncatedDownload(t *testing.T) {
	e := newEnv(t)
	v101 := e.publish(t, "1.0.1", "up", "ok", updatesim.ReleaseOptions{})
	e.sim.SetFault(updatesim.Fault{TruncateAt: int64(len(v101) / 2)})
	u := e.updater(t)
	err := u.Apply(context.Background(), update.ApplyOptions{})
	require.ErrorIs(t, err, update.ErrDownload)
	assert.Equal(t, update.ReasonDownloadFailed, update.ReasonOf(err))

	e.sim.SetFault(updatesim.Fault{})
	err = u.Apply(context.Background(), update.ApplyOptions{})
	require.ErrorIs(t, err, update.ErrRestart)
	assert.Equal(t, 1, e.sim.Requests()["range"], "the second download resumed with Range")
	assert.Equal(t, v101, readFile(t, e.exe))
}

func TestApply_PreflightFailureBlocksVersion(t *testing.T) {
	e := newEnv(t)
	e.publish(t, "1.0.1", "up", "fail", updatesim.ReleaseOptions{})
	sink := apitest.NewSMTPSink(t)
	u := e.updater(t, func(c *update.Config) {
		c.Mail = update.MailConfig{Host: "127.0.0.1", Port: sink.Port, From: "ip@agency.example", To: []string{"ops@agency.example"}, SubjectSuffix: "[test]"}
	})
	err := u.Apply(context.Background(), update.ApplyOptions{})
	require.ErrorIs(t, err, update.ErrPreflight)
	assert.Contains(t, err.Error(), "configuration refused", "the self-test's own words reach the operator")
	assert.Equal(t, e.old, readFile(t, e.exe))
	s := e.state(t)
	assert.Contains(t, s.Blocklist, "1.0.1")
	assert.Equal(t, update.ReasonPreflightFailed, s.LastReason)

	msg := sink.Next(t)
	assert.Contains(t, msg, "Subject: Upgrade FAILED integrasjonspunkt 1.0.1 [test]")
	assert.Contains(t, msg, "reason: preflight_failed")
}

func TestApply_OperatorDowngradeAndRollback(t *testing.T) {
	e := newEnv(t)
	v101 := e.publish(t, "1.0.1", "up", "ok", updatesim.ReleaseOptions{})
	v099 := e.publish(t, "0.9.9", "up", "ok", updatesim.ReleaseOptions{Channels: []string{}})
	u := e.updater(t)

	err := u.Apply(context.Background(), update.ApplyOptions{Version: "0.9.9"})
	require.ErrorIs(t, err, update.ErrDowngrade)
	require.ErrorIs(t, u.Apply(context.Background(), update.ApplyOptions{}), update.ErrRestart)
	assert.Equal(t, v101, readFile(t, e.exe))

	// By hand, back to 1.0.0.
	require.ErrorIs(t, u.Rollback(context.Background()), update.ErrRestart)
	assert.Equal(t, e.old, readFile(t, e.exe))
	s := e.state(t)
	assert.Equal(t, update.PhaseRolledBack, s.Phase)
	assert.Equal(t, update.ReasonOperator, s.Reason)
	assert.NotContains(t, s.Blocklist, "1.0.1", "a rollback by hand does not block the version")
	require.ErrorIs(t, u.Rollback(context.Background()), update.ErrNoPrevious)

	// Downgrade by hand is allowed with the flag.
	require.ErrorIs(t, u.Apply(context.Background(), update.ApplyOptions{Version: "0.9.9", AllowDowngrade: true}), update.ErrRestart)
	assert.Equal(t, v099, readFile(t, e.exe))
}

func TestNotifyMode_StagesNeverSwaps(t *testing.T) {
	e := newEnv(t)
	e.publish(t, "1.0.1", "up", "ok", updatesim.ReleaseOptions{})
	u := e.updater(t, func(c *update.Config) { c.Mode = update.ModeNotify })
	r := runUpdater(t, u)
	eventually(t, "staged", func() bool { return e.state(t).Staged != nil })
	time.Sleep(300 * time.Millisecond)
	r.running(t)
	assert.Equal(t, e.old, readFile(t, e.exe))
	c := u.HealthComponent()
	assert.Equal(t, "DEGRADED", c.Status)
	assert.Equal(t, update.ReasonModeNotify, c.Reason)
	assert.Contains(t, c.Detail, "1.0.1")
	require.ErrorIs(t, u.Apply(context.Background(), update.ApplyOptions{}), update.ErrNotifyMode)
}

func TestOffMode_NoRequests(t *testing.T) {
	e := newEnv(t)
	e.publish(t, "1.0.1", "up", "ok", updatesim.ReleaseOptions{})
	u := e.updater(t, func(c *update.Config) { c.Mode = update.ModeOff })
	runUpdater(t, u)
	time.Sleep(300 * time.Millisecond)
	assert.Zero(t, e.sim.Requests()["manifest"])
}

// Probation: an outside service down (health DEGRADED, HTTP 200) does not
// roll back; DOWN (503) does.
func TestProbation_DegradedCommitsDownRollsBack(t *testing.T) {
	for _, tt := range []struct {
		name   string
		status int
		body   string
		want   update.Phase
	}{
		{"channel outage is DEGRADED", http.StatusOK, `{"status":"DEGRADED","components":{"channel.DPO":{"status":"DEGRADED"}}}`, update.PhaseCommitted},
		{"daemon DOWN", http.StatusServiceUnavailable, `{"status":"DOWN"}`, update.PhaseRolledBack},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			v101 := e.publish(t, "1.0.1", "up", "ok", updatesim.ReleaseOptions{})
			require.ErrorIs(t, e.updater(t).Apply(context.Background(), update.ApplyOptions{}), update.ErrRestart)

			health := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}))
			defer health.Close()
			var evs []string
			var mu sync.Mutex
			u := e.updater(t, func(c *update.Config) {
				c.CurrentVersion = "1.0.1"
				c.Health = update.HTTPHealth(health.URL, nil)
				c.CheckInterval = time.Hour
				c.OnEvent = func(ev update.Event) { mu.Lock(); evs = append(evs, ev.Type); mu.Unlock() }
			})
			require.NoError(t, u.Boot(context.Background()))
			assert.Equal(t, 1, e.state(t).Attempts)
			r := runUpdater(t, u)
			if tt.want == update.PhaseCommitted {
				eventually(t, "commit", func() bool { return e.state(t).Phase == update.PhaseCommitted })
				assert.Equal(t, v101, readFile(t, e.exe))
				mu.Lock()
				assert.Contains(t, evs, update.EventCommitted)
				mu.Unlock()
				return
			}
			require.ErrorIs(t, r.wait(t, 20*time.Second, "no rollback"), update.ErrRestart)
			s := e.state(t)
			assert.Equal(t, update.PhaseRolledBack, s.Phase)
			assert.Equal(t, update.ReasonProbationTimeout, s.Reason)
			assert.Equal(t, e.old, readFile(t, e.exe))
			assert.Equal(t, v101, readFile(t, filepath.Join(filepath.Dir(e.exe), "integrasjonspunkt.failed")))
		})
	}
}

func TestBoot_CrashLoopRollsBack(t *testing.T) {
	e := newEnv(t)
	e.publish(t, "1.0.1", "up", "ok", updatesim.ReleaseOptions{})
	require.ErrorIs(t, e.updater(t).Apply(context.Background(), update.ApplyOptions{}), update.ErrRestart)
	boot := func() error {
		return e.updater(t, func(c *update.Config) { c.CurrentVersion = "1.0.1" }).Boot(context.Background())
	}
	for i := 1; i <= update.MaxBootAttempts; i++ {
		require.NoError(t, boot(), "start %d", i)
	}
	require.ErrorIs(t, boot(), update.ErrRestart)
	s := e.state(t)
	assert.Equal(t, update.PhaseRolledBack, s.Phase)
	assert.Equal(t, update.ReasonCrashLoop, s.Reason)
	assert.Contains(t, s.Blocklist, "1.0.1")
	assert.Equal(t, e.old, readFile(t, e.exe))
	// The old version boots normally afterwards.
	require.NoError(t, e.updater(t).Boot(context.Background()))
}

func TestSettings(t *testing.T) {
	props := map[string]string{
		"kosmos.integrasjonspunkt.earlybird":               "true",
		"kosmos.integrasjonspunkt.supported-major-version": "2",
		"kosmos.schedulerCronExpression":                   "0 0 6 * * MON-FRI",
		"kosmos.launchTimeoutInMs":                         "150000",
		"kosmos.mail.recipient":                            "a@x.example, b@x.example",
		"kosmos.mail.append-subject":                       "[prod]",
		"spring.mail.host":                                 "smtp.x.example",
		"spring.mail.port":                                 "587",
		"efm.update.pin":                                   "~> 1.4",
		"efm.update.check-interval":                        "15m",
		"efm.update.max-delay":                             "0",
	}
	lookup := func(k string) (string, bool) { v, ok := props[k]; return v, ok }
	var cfg update.Config
	require.NoError(t, update.Settings(&cfg, lookup))
	assert.Equal(t, manifest.ChannelEarlybird, cfg.Channel)
	assert.Equal(t, 2, cfg.MaxMajor)
	assert.Equal(t, "0 0 6 * * MON-FRI", cfg.Windows)
	assert.Equal(t, 150*time.Second, cfg.Probation)
	assert.Equal(t, []string{"a@x.example", "b@x.example"}, cfg.Mail.To)
	assert.Equal(t, "[prod]", cfg.Mail.SubjectSuffix)
	assert.Equal(t, 587, cfg.Mail.Port)
	assert.Equal(t, "~> 1.4", cfg.Pin)
	assert.Equal(t, 15*time.Minute, cfg.CheckInterval)
	assert.Negative(t, cfg.MaxDelay, "max-delay 0 turns the spread off")

	props = map[string]string{"kosmos.integrasjonspunkt.autoRefresh": "false", "efm.update.channel": "stable"}
	cfg = update.Config{}
	require.NoError(t, update.Settings(&cfg, lookup))
	assert.Equal(t, update.ModeOff, cfg.Mode)
	assert.Equal(t, manifest.ChannelStable, cfg.Channel, "our key wins over the alias")

	props = map[string]string{"efm.update.mode": "sometimes", "efm.update.probation": "soon", "efm.update.trusted-keys": "nope", "spring.mail.port": "0"}
	err := update.Settings(&update.Config{}, lookup)
	require.ErrorIs(t, err, update.ErrConfig)
	for _, k := range []string{"efm.update.mode", "efm.update.probation", "efm.update.trusted-keys", "spring.mail.port"} {
		assert.Contains(t, err.Error(), k, "every problem is reported at once")
	}
	assert.NotEmpty(t, update.Keys())
}

func TestNew_ConfigErrors(t *testing.T) {
	_, err := update.New(update.Config{Mode: "sometimes", Windows: "never"})
	require.ErrorIs(t, err, update.ErrConfig)
	for _, want := range []string{"DataDir", "CurrentVersion", "mode", "windows"} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestReasonOf_EverySentinelHasACode(t *testing.T) {
	for _, err := range []error{
		update.ErrUpToDate, update.ErrDowngrade, update.ErrRevoked, update.ErrBlocked, update.ErrNoArtifact,
		update.ErrPinned, update.ErrMajor, update.ErrPrerelease, update.ErrAPIMajorInUse, update.ErrNeedsOperator,
		update.ErrNoUpgradePath, update.ErrManifestUnavailable, update.ErrDownload, update.ErrSizeMismatch,
		update.ErrChecksumMismatch, update.ErrArtifactSignature, update.ErrDiskFull, update.ErrPreflight,
		update.ErrSwap, update.ErrSwapRollback, manifest.ErrSignature, manifest.ErrExpired, manifest.ErrSerialReplay,
	} {
		assert.NotEqual(t, update.ReasonInternal, update.ReasonOf(fmt.Errorf("wrapped: %w", err)), "%v", err)
	}
	// The artifact's signature failure wraps the manifest package's sentinel but
	// must not be reported as the manifest's.
	err := fmt.Errorf("%w: %w", update.ErrArtifactSignature, manifest.ErrSignature)
	assert.Equal(t, update.ReasonArtifactSignature, update.ReasonOf(err))
	assert.Equal(t, update.ReasonInternal, update.ReasonOf(errors.New("other")))
}

// `update apply` in another process swaps the file under a running daemon:
// the daemon restarts into it instead of swapping again on top of it.
func TestRun_RestartsWhenSwappedByCommand(t *testing.T) {
	atShiftedClocks(t, restartsWhenSwappedByCommand)
}

func restartsWhenSwappedByCommand(t *testing.T, base time.Time) {
	closed := newClock(next(t, base, time.Saturday, 13, 0)) // Saturday: no window
	e := newEnvAt(t, closed.now)
	v101 := e.publish(t, "1.0.1", "up", "ok", updatesim.ReleaseOptions{})
	daemon := e.updater(t, func(c *update.Config) {
		c.Windows = update.DefaultWindows
	})
	r := runUpdater(t, daemon)
	eventually(t, "staged", func() bool { return e.state(t).Staged != nil })
	r.running(t)

	require.ErrorIs(t, e.updater(t).Apply(context.Background(), update.ApplyOptions{}), update.ErrRestart)
	require.ErrorIs(t, r.wait(t, 10*time.Second, "daemon did not notice the swap"), update.ErrRestart)
	assert.Equal(t, v101, readFile(t, e.exe))
	assert.Equal(t, e.old, readFile(t, filepath.Join(filepath.Dir(e.exe), "integrasjonspunkt.previous")),
		"the old binary is kept, not overwritten by a second swap")
}

// Without a previous executable a failed version cannot be rolled back: it
// keeps running (better than a crash loop) and health says why.
func TestBoot_CrashLoopWithoutPreviousKeepsRunning(t *testing.T) {
	e := newEnv(t)
	e.publish(t, "1.0.1", "up", "ok", updatesim.ReleaseOptions{})
	require.ErrorIs(t, e.updater(t).Apply(context.Background(), update.ApplyOptions{}), update.ErrRestart)
	require.NoError(t, os.Remove(filepath.Join(filepath.Dir(e.exe), "integrasjonspunkt.previous")))
	u := func() *update.Updater { return e.updater(t, func(c *update.Config) { c.CurrentVersion = "1.0.1" }) }
	for i := 0; i <= update.MaxBootAttempts; i++ {
		require.NoError(t, u().Boot(context.Background()), "start %d", i+1)
	}
	s := e.state(t)
	assert.Equal(t, update.PhaseRollbackFailed, s.Phase)
	assert.Equal(t, update.ReasonCrashLoop, s.Reason)
	c := u().HealthComponent()
	assert.Equal(t, "DEGRADED", c.Status)
	assert.Contains(t, c.Detail, "could not be put back")
	require.NoError(t, u().Boot(context.Background()))
	assert.Equal(t, 0, e.state(t).Attempts, "no more attempts counted")
}

// A machine whose clock is behind the release server's by more than the
// allowed skew refuses every manifest. It must say so, not stay silently on
// the old version: health, status and the check counter name the clock.
func TestCheck_ClockBehindIsNamed(t *testing.T) {
	server := newClock(time.Now())
	e := newEnvAt(t, server.now)
	e.publishFake(t, "1.0.1")
	behind := func() time.Time { return server.now().Add(-manifest.MaxSkew - time.Hour) }
	u := e.updater(t, func(c *update.Config) { c.Now = behind })
	for range 2 {
		_, err := u.Check(context.Background())
		require.ErrorIs(t, err, manifest.ErrNotYetValid)
		assert.Equal(t, update.ReasonClockBehind, update.ReasonOf(err))
	}
	s := e.state(t)
	assert.Equal(t, update.ReasonClockBehind, s.LastReason)
	assert.Contains(t, s.LastError, "manifest issued in the future: check the clock")
	h := u.HealthComponent()
	assert.Equal(t, "DEGRADED", h.Status)
	assert.Equal(t, update.ReasonClockBehind, h.Reason)
	assert.Contains(t, h.Detail, "check the clock")
	assert.Equal(t, int64(2), u.Checks()[update.CheckOutcome{Result: update.ResultFailed, Reason: update.ReasonClockBehind}])
	assert.Equal(t, e.old, readFile(t, e.exe))
}

// Package e2e holds the self-update end-to-end test against the real daemon
// (issue 8, "Must show" 1). It lives apart from package update so the
// library's own tests stay quick.
package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/efm-go/efm/update"
	"github.com/efm-go/efm/update/internal/svcmgr"
	"github.com/efm-go/efm/update/manifest"
	"github.com/efm-go/efm/update/updatesim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const daemonPkg = "./cmd/integrasjonspunkt"

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	require.NoError(t, err)
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// buildDaemon builds the real integrasjonspunkt with the given version, the
// way a release is built.
func buildDaemon(t *testing.T, dir, version string, tags ...string) string {
	t.Helper()
	out := filepath.Join(dir, "integrasjonspunkt-"+version)
	if runtime.GOOS == "windows" {
		out += ".exe"
	}
	args := []string{"build", "-o", out, "-ldflags", "-X github.com/efm-go/efm/internal/buildinfo.Version=" + version}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command("go", append(args, daemonPkg)...)
	cmd.Dir = moduleRoot(t)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build %s: %s", version, b)
	return out
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return b
}

type daemon struct {
	t    *testing.T
	base string
	exe  string
	data string
	mgr  *svcmgr.Manager
}

func (d *daemon) get(path string) (int, []byte) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(d.base + path)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// version is what the running daemon says it is, "" if it does not answer.
func (d *daemon) version() string {
	code, b := d.get("/manage/info")
	if code != http.StatusOK {
		return ""
	}
	var info struct {
		Build struct {
			Version string `json:"version"`
		} `json:"build"`
	}
	if json.Unmarshal(b, &info) != nil {
		return ""
	}
	return info.Build.Version
}

// serving checks that the local API answers, not just the health endpoint.
func (d *daemon) serving() bool {
	hc, _ := d.get("/manage/health")
	ac, _ := d.get("/api/subscriptions")
	return hc == http.StatusOK && ac == http.StatusOK
}

// healthComponent returns one component of /manage/health, if present.
func (d *daemon) healthComponent(name string) (struct{ Status string }, bool) {
	var h struct {
		Components map[string]struct{ Status string } `json:"components"`
	}
	_, b := d.get("/manage/health")
	if json.Unmarshal(b, &h) != nil {
		return struct{ Status string }{}, false
	}
	c, ok := h.Components[name]
	return c, ok
}

func (d *daemon) state() update.State {
	u, err := update.New(update.Config{DataDir: d.data, ExecutablePath: d.exe, CurrentVersion: "0.0.0", Mode: update.ModeOff})
	require.NoError(d.t, err)
	st, err := u.Status()
	require.NoError(d.t, err)
	return st.State
}

// cli runs a subcommand of the installed executable, as an operator would.
func (d *daemon) cli(args ...string) (string, error) {
	cmd := exec.Command(d.exe, args...)
	b, err := cmd.CombinedOutput()
	return string(b), err
}

func (d *daemon) waitFor(what string, limit time.Duration, ok func() bool) {
	d.t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			d.t.Fatalf("waiting for %s\nrunning: %q\nstate: %+v\n%s", what, d.version(), d.state(), d.mgr.Describe())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestE2E_SelfUpdate builds the real daemon in three versions and plays the
// service manager: 1.0.0 replaces itself with 1.1.0, which comes back
// healthy and is committed; 1.2.0 never reports healthy and is rolled back to
// 1.1.0 by itself; a bad signature, an expired manifest, a wrong checksum and
// a lower version are each refused with their reason while 1.1.0 keeps
// serving the API.
func TestE2E_SelfUpdate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the daemon three times and runs it as a child process")
	}
	build := t.TempDir()
	v100 := buildDaemon(t, build, "1.0.0")
	v110 := buildDaemon(t, build, "1.1.0")
	// 1.2.0 is a release that comes up but never passes probation.
	v120 := buildDaemon(t, build, "1.2.0", "efm_fault_unhealthy")

	sim, err := updatesim.New(updatesim.Options{})
	require.NoError(t, err)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	platform := runtime.GOOS + "/" + runtime.GOARCH
	// The daemon's environment depends on its configuration (the sandbox runs
	// as staging); offer every release in both.
	publish := func(version, bin string, channels ...string) {
		t.Helper()
		require.NoError(t, sim.Publish(version, map[string][]byte{platform: read(t, bin)}, updatesim.ReleaseOptions{}))
		for _, env := range []string{"production", "staging"} {
			for _, ch := range channels {
				require.NoError(t, sim.SetChannel(env, ch, version))
			}
		}
	}

	dir := t.TempDir()
	d := &daemon{t: t, exe: filepath.Join(dir, "bin", "integrasjonspunkt"), data: filepath.Join(dir, "data")}
	if runtime.GOOS == "windows" {
		d.exe += ".exe"
	}
	require.NoError(t, os.MkdirAll(filepath.Dir(d.exe), 0o755))
	require.NoError(t, os.MkdirAll(d.data, 0o750))
	require.NoError(t, os.WriteFile(d.exe, read(t, v100), 0o755))
	port := freePort(t)
	d.base = "http://127.0.0.1:" + strconv.Itoa(port)
	conf := filepath.Join(dir, "integrasjonspunkt-local.properties")
	require.NoError(t, os.WriteFile(conf, []byte(strings.Join([]string{
		"efm.update.url=" + srv.URL + "/manifest.json",
		"efm.update.trusted-keys=" + sim.PublicKey().String(),
		"efm.update.windows=* * * * * *", // always open: the windows have their own tests
		"efm.update.window-length=1h",
		"efm.update.max-delay=0",
		"efm.update.check-interval=1s",
		"efm.update.probation=15s",
		"efm.update.probation-stable=3s",
		"",
	}, "\n")), 0o600))

	publish("1.1.0", v110, manifest.ChannelStable)
	d.mgr = &svcmgr.Manager{
		Path: d.exe, Dir: d.data,
		Args: []string{"run", "--sandbox", "--data", d.data, "--config", conf},
		Env:  []string{"SERVER_PORT=" + strconv.Itoa(port)},
	}
	require.NoError(t, d.mgr.Start())
	defer d.mgr.Stop()

	// Fail fast and say why when the daemon was built without the updater:
	// its first check at start writes the update state.
	d.waitFor("the daemon's first update check (is update.New/Boot/Run wired into `run`? see update/doc.go)", 60*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(d.data, "update", "state.json"))
		return err == nil
	})

	// 1.0.0 replaces itself with 1.1.0, which passes probation.
	d.waitFor("1.1.0 committed", 90*time.Second, func() bool {
		s := d.state()
		return s.Phase == update.PhaseCommitted && s.To == "1.1.0" && d.version() == "1.1.0"
	})
	exits := d.mgr.Exits()
	require.NotEmpty(t, exits)
	assert.Equal(t, update.ExitRestart, exits[0].Code, "1.0.0 exits with the restart status after the swap")
	assert.Equal(t, read(t, v110), read(t, d.exe))
	assert.Equal(t, read(t, v100), read(t, filepath.Join(filepath.Dir(d.exe), filepath.Base(d.exe)+".previous")))
	assert.True(t, d.serving())
	// The manifest names no schema_version, so the daemon took the pre-update
	// store snapshot of operations.md §4.4 step 7 before swapping.
	_, err = os.Stat(filepath.Join(d.data, "update", "pre-1.0.0-to-1.1.0.db"))
	assert.NoError(t, err, "no store snapshot before the swap (BeforeSwap not wired?)")

	// 1.2.0 never reports healthy: it rolls itself back to 1.1.0.
	publish("1.2.0", v120, manifest.ChannelStable)
	d.waitFor("1.2.0 rolled back to 1.1.0", 120*time.Second, func() bool {
		s := d.state()
		return s.Phase == update.PhaseRolledBack && s.To == "1.2.0" && d.version() == "1.1.0"
	})
	s := d.state()
	assert.Contains(t, []string{update.ReasonProbationTimeout, update.ReasonUnhealthy}, s.Reason)
	assert.Contains(t, s.Blocklist, "1.2.0", "the failed version is not tried again")
	assert.Equal(t, read(t, v110), read(t, d.exe))
	d.waitFor("1.2.0 refused as blocked", 30*time.Second, func() bool { return d.state().LastReason == update.ReasonBlocked })
	assert.True(t, d.serving())

	// Each bad offer is refused with its reason while 1.1.0 keeps serving.
	restarts := len(d.mgr.Exits())
	refusals := []struct {
		name   string
		setup  func()
		reason string
	}{
		{"bad signature", func() {
			publish("1.3.0", v100, manifest.ChannelStable)
			sim.SetFault(updatesim.Fault{BadSignature: true})
		}, update.ReasonBadSignature},
		{"expired manifest", func() { sim.SetFault(updatesim.Fault{Expired: true}) }, update.ReasonManifestExpired},
		{"wrong checksum", func() { sim.SetFault(updatesim.Fault{WrongChecksum: true}) }, update.ReasonChecksumMismatch},
		{"lower version", func() {
			sim.SetFault(updatesim.Fault{})
			publish("1.0.0", v100, manifest.ChannelStable)
		}, update.ReasonDowngrade},
	}
	for _, r := range refusals {
		r.setup()
		d.waitFor(r.name+" refused", 30*time.Second, func() bool { return d.state().LastReason == r.reason })
		assert.True(t, d.serving(), "%s: the API keeps answering", r.name)
		assert.Equal(t, "1.1.0", d.version(), r.name)
		assert.NotEmpty(t, d.state().LastError, "%s: the reason is spelled out", r.name)
		out, _ := d.cli("update", "status", "--data", d.data, "--config", conf)
		assert.Contains(t, out, r.reason, "%s: `update status` names the reason:\n%s", r.name, out)
		if c, ok := d.healthComponent("update"); ok && r.reason != update.ReasonDowngrade {
			assert.Equal(t, "DEGRADED", c.Status, "%s: the update health component", r.name)
		}
	}
	assert.Len(t, d.mgr.Exits(), restarts, "no restart while refusing")
	assert.Equal(t, read(t, v110), read(t, d.exe))
	out, _ := d.cli("update", "status", "--data", d.data, "--config", conf)
	t.Logf("restarts: %d\n%s", len(d.mgr.Exits()), out)
}

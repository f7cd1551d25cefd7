package update_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/efm-go/efm/update"
	"github.com/efm-go/efm/update/internal/svcmgr"
	"github.com/efm-go/efm/update/updatesim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	buildMu  sync.Mutex
	buildDir string
	built    = map[string]string{}
)

// goBuild builds pkg once per distinct ldflags/tags and returns the binary.
func goBuild(t *testing.T, pkg, ldflags string, tags ...string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	key := pkg + "|" + ldflags + "|" + strings.Join(tags, ",")
	if p, ok := built[key]; ok {
		return p
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "update-test-bin-")
		require.NoError(t, err)
		buildDir = d
	}
	out := filepath.Join(buildDir, fmt.Sprintf("bin%d", len(built)))
	if runtime.GOOS == "windows" {
		out += ".exe"
	}
	args := []string{"build", "-o", out, "-ldflags", ldflags}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = moduleRoot(t)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build %s: %s", pkg, b)
	built[key] = out
	return out
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	require.NoError(t, err)
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// testDaemon returns a variant of the test daemon: one build, with the
// variant appended as a trailer the daemon reads from its own executable,
// so each variant has its own bytes and checksum like a real release.
func testDaemon(t *testing.T, version, health, selftest string) string {
	t.Helper()
	base := goBuild(t, "./update/internal/testdaemon", "")
	buildMu.Lock()
	defer buildMu.Unlock()
	out := filepath.Join(buildDir, "variant-"+version+"-"+health+"-"+selftest)
	if _, err := os.Stat(out); err == nil {
		return out
	}
	bin, err := os.ReadFile(base)
	require.NoError(t, err)
	j, err := json.Marshal(map[string]string{"version": version, "health": health, "selftest": selftest})
	require.NoError(t, err)
	bin = append(bin, j...)
	bin = append(bin, fmt.Sprintf("%08d", len(j))...)
	bin = append(bin, "EFMTEST!"...)
	require.NoError(t, os.WriteFile(out, bin, 0o755))
	return out
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
	require.NoError(t, os.WriteFile(dst, b, 0o755))
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return b
}

// status reads the state the way `update status` does, from another process's view.
func status(t *testing.T, data, exe string) update.Status {
	t.Helper()
	u, err := update.New(update.Config{DataDir: data, ExecutablePath: exe, CurrentVersion: "0.0.0", Mode: update.ModeOff})
	require.NoError(t, err)
	st, err := u.Status()
	require.NoError(t, err)
	return st
}

func runningVersion(port int) string {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/manage/info", port))
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var info struct {
		Build struct {
			Version string `json:"version"`
		} `json:"build"`
	}
	b, _ := io.ReadAll(resp.Body)
	if json.Unmarshal(b, &info) != nil {
		return ""
	}
	return info.Build.Version
}

func events(t *testing.T, data string) []update.Event {
	t.Helper()
	f, err := os.Open(filepath.Join(data, "events.jsonl"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []update.Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e update.Event
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e))
		out = append(out, e)
	}
	return out
}

func platform() string { return runtime.GOOS + "/" + runtime.GOARCH }

// TestProcess_SwapCommitRollbackCrashLoop runs the library inside a small
// real daemon under a restarting supervisor: 1.0.0 replaces itself with
// 1.0.1, which passes probation; 1.0.2 never becomes healthy and is rolled
// back by itself; 1.0.3 crashes at every start and is rolled back after
// MaxBootAttempts starts.
func TestProcess_SwapCommitRollbackCrashLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	v100 := testDaemon(t, "1.0.0", "up", "ok")
	v101 := testDaemon(t, "1.0.1", "up", "ok")
	v102 := testDaemon(t, "1.0.2", "down", "ok")
	v103 := testDaemon(t, "1.0.3", "crash", "ok")

	sim, err := updatesim.New(updatesim.Options{})
	require.NoError(t, err)
	srv := httptest.NewServer(sim)
	defer srv.Close()

	dir := t.TempDir()
	exe := filepath.Join(dir, "bin", "integrasjonspunkt")
	data := filepath.Join(dir, "data")
	require.NoError(t, os.MkdirAll(data, 0o700))
	copyFile(t, v100, exe)
	port := freePort(t)
	require.NoError(t, sim.Publish("1.0.1", map[string][]byte{platform(): readFile(t, v101)}, updatesim.ReleaseOptions{Channels: []string{"stable"}}))

	mgr := &svcmgr.Manager{Path: exe, Dir: data, Args: []string{"run",
		"--data", data, "--port", fmt.Sprint(port), "--manifest", srv.URL + "/manifest.json", "--key", sim.PublicKey().String(),
		"--check", "500ms", "--probation", "3s", "--stable", "1s"}}
	require.NoError(t, mgr.Start())
	defer mgr.Stop()

	waitFor := func(what string, limit time.Duration, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s\nstate: %+v\n%s", what, status(t, data, exe).State, mgr.Describe())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	waitFor("1.0.1 committed", 30*time.Second, func() bool {
		s := status(t, data, exe).State
		return s.Phase == update.PhaseCommitted && s.To == "1.0.1" && runningVersion(port) == "1.0.1"
	})
	assert.Equal(t, readFile(t, v101), readFile(t, exe), "the executable on disk is 1.0.1")
	st := status(t, data, exe)
	assert.True(t, st.PreviousKept)
	assert.Equal(t, readFile(t, v100), readFile(t, filepath.Join(dir, "bin", "integrasjonspunkt.previous")))
	require.NotEmpty(t, mgr.Exits())
	assert.Equal(t, update.ExitRestart, mgr.Exits()[0].Code, "the swap exits with the restart status")

	// 1.0.2 comes up but never answers healthy: rolled back by itself.
	require.NoError(t, sim.Publish("1.0.2", map[string][]byte{platform(): readFile(t, v102)}, updatesim.ReleaseOptions{Channels: []string{"stable"}}))
	waitFor("1.0.2 rolled back", 40*time.Second, func() bool {
		s := status(t, data, exe).State
		return s.Phase == update.PhaseRolledBack && s.To == "1.0.2" && runningVersion(port) == "1.0.1"
	})
	s := status(t, data, exe).State
	assert.Equal(t, update.ReasonProbationTimeout, s.Reason)
	assert.Contains(t, s.Blocklist, "1.0.2")
	assert.Equal(t, "testdaemon 1.0.2 log tail", s.LogTail)
	assert.Equal(t, readFile(t, v101), readFile(t, exe))
	// The blocked version is not tried again.
	waitFor("1.0.2 refused as blocked", 10*time.Second, func() bool {
		return status(t, data, exe).State.LastReason == update.ReasonBlocked
	})

	// 1.0.3 crashes at every start: rolled back after MaxBootAttempts starts.
	startsBefore := mgr.Starts()
	require.NoError(t, sim.Publish("1.0.3", map[string][]byte{platform(): readFile(t, v103)}, updatesim.ReleaseOptions{Channels: []string{"stable"}}))
	waitFor("1.0.3 rolled back after a crash loop", 40*time.Second, func() bool {
		s := status(t, data, exe).State
		return s.Phase == update.PhaseRolledBack && s.To == "1.0.3" && runningVersion(port) == "1.0.1"
	})
	s = status(t, data, exe).State
	assert.Equal(t, update.ReasonCrashLoop, s.Reason)
	assert.GreaterOrEqual(t, mgr.Starts()-startsBefore, update.MaxBootAttempts+2, "1.0.3 started MaxBootAttempts+1 times, then 1.0.1 again")
	assert.Equal(t, readFile(t, v101), readFile(t, exe))

	var types []string
	for _, e := range events(t, data) {
		if e.Type != update.EventStaged {
			types = append(types, e.Type+":"+e.To)
		}
	}
	assert.Equal(t, []string{
		"update.applied:1.0.1", "update.committed:1.0.1",
		"update.applied:1.0.2", "update.rolled_back:1.0.2",
		"update.applied:1.0.3", "update.rolled_back:1.0.3",
	}, types)
}

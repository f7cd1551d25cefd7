package wintest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/internal/apitest"
	"github.com/efm-go/efm/packaging/testpki"
	"github.com/efm-go/efm/update"
	"github.com/efm-go/efm/update/manifest"
	"github.com/efm-go/efm/update/updatesim"
)

// TestWine_SelfUpdate is the Windows half of operations.md §4.4 under Wine:
// the release manifest carries the windows/amd64 artifact, the running .exe
// under Program Files is renamed aside and replaced while it runs, exits with
// the restart status, and the test's supervisor (standing in for the SCM's
// restart on failure, which Wine cannot give: service_wine_test.go) starts the
// new version, which passes probation. Then `update rollback`, run beside
// the daemon, swaps the running new .exe back to the previous one.
func TestWine_SelfUpdate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a second Windows binary")
	}
	p := wine(t)
	// Not a prerelease: only those go to the stable channel.
	const next = "9.8.8"
	root, err := moduleRoot()
	require.NoError(t, err)
	v2 := filepath.Join(t.TempDir(), "integrasjonspunkt.exe")
	require.NoError(t, buildExe(root, v2, next))

	sim, err := updatesim.New(updatesim.Options{})
	require.NoError(t, err)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	require.NoError(t, sim.Publish(next, map[string][]byte{"windows/amd64": readFile(t, v2)}, updatesim.ReleaseOptions{}))
	for _, env := range []string{"production", "staging"} {
		require.NoError(t, sim.SetChannel(env, manifest.ChannelStable, next))
	}

	exe := `C:\Program Files\efm update\bin\integrasjonspunkt.exe`
	previous := `C:\Program Files\efm update\bin\integrasjonspunkt.previous.exe`
	data := `C:\ProgramData\efm update\data`
	cfg := `C:\ProgramData\efm update\integrasjonspunkt-local.properties`
	require.NoError(t, copyFile(p.exe, p.path(exe)))
	port := apitest.FreePort(t)
	props := []string{
		fmt.Sprintf("server.port=%d", port),
		// What `update rollback` needs to load the configuration; `run
		// --sandbox` puts the same values over it.
		"difi.move.org.number=910077473",
		`difi.move.org.keystore.path=file:C:\\ProgramData\\efm update\\data\\sandbox\\pki\\910077473.p12`,
		"difi.move.org.keystore.alias=910077473",
		"difi.move.org.keystore.password=" + testpki.KeystorePassword,
		"environment=staging",
		"efm.update.url=" + srv.URL + "/manifest.json",
		"efm.update.trusted-keys=" + sim.PublicKey().String(),
		"efm.update.windows=* * * * * *",
		"efm.update.window-length=1h",
		"efm.update.max-delay=0",
		"efm.update.check-interval=1s",
		// Wine starts the new version slowly on a busy machine.
		"efm.update.probation=90s",
		"efm.update.probation-stable=3s",
		"efm.shutdown.drain=5s",
	}
	writeFile(t, p.path(cfg), strings.Join(props, "\r\n")+"\r\n")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	sup := &supervisor{p: p, args: []string{exe, "run", "--sandbox", "--data", data, "--config", cfg}}
	sup.start(t)
	defer sup.stop(t)

	waitFor(t, sup, "committed as "+next, 4*time.Minute, func() bool {
		s := readState(t, p.path(data))
		return s.Phase == update.PhaseCommitted && s.To == next && runningVersion(base) == next
	})
	exits := sup.exits()
	require.NotEmpty(t, exits)
	assert.Equal(t, update.ExitRestart, exits[0], "the old .exe exits with the restart status after the swap")
	assert.Equal(t, readFile(t, v2), readFile(t, p.path(exe)), "the new .exe is in place")
	assert.Equal(t, readFile(t, p.exe), readFile(t, p.path(previous)), "the old .exe is kept for rollback")

	// A rollback by hand blocks nothing, so in auto mode with a window
	// every second the old version would take 9.8.8 again at its first
	// check, racing the assertions below: it only reports from here on.
	writeFile(t, p.path(cfg), strings.Join(append(props, "efm.update.mode=notify"), "\r\n")+"\r\n")
	out, code := p.run(t, nil, exe, "update", "rollback", "--data", data, "--config", cfg)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "rolled back to "+testVersion)
	waitFor(t, sup, "back on "+testVersion, 3*time.Minute, func() bool {
		return runningVersion(base) == testVersion
	})
	assert.Equal(t, readFile(t, p.exe), readFile(t, p.path(exe)), "the previous .exe is back")
	s := readState(t, p.path(data))
	assert.Equal(t, update.PhaseRolledBack, s.Phase)
	assert.Equal(t, update.ReasonOperator, s.Reason)
}

// supervisor restarts the daemon when it exits with the restart status, as
// the SCM's restart on failure does.
type supervisor struct {
	p    *prefix
	args []string

	mu      sync.Mutex
	d       *daemon
	codes   []int
	stopped bool
	done    chan struct{}
}

func (s *supervisor) start(t *testing.T) {
	s.done = make(chan struct{})
	s.d = s.p.start(t, s.args[0], s.args[1:]...)
	go func() {
		defer close(s.done)
		for {
			s.mu.Lock()
			d := s.d
			s.mu.Unlock()
			<-d.done
			s.mu.Lock()
			code := d.cmd.ProcessState.ExitCode()
			s.codes = append(s.codes, code)
			if s.stopped || code != update.ExitRestart {
				s.mu.Unlock()
				return
			}
			s.d = s.p.start(t, s.args[0], s.args[1:]...)
			s.mu.Unlock()
		}
	}()
}

func (s *supervisor) exits() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.codes...)
}

func (s *supervisor) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.d.out.String()
}

func (s *supervisor) stop(t *testing.T) {
	s.mu.Lock()
	s.stopped = true
	d := s.d
	s.mu.Unlock()
	select {
	case <-d.done:
	default:
		assert.Equal(t, 0, d.stop(t), "a clean stop:\n%s", d.out.String())
	}
	<-s.done
}

func waitFor(t *testing.T, s *supervisor, what string, limit time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s; exits %v; last output:\n%s", what, s.exits(), s.output())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func readState(t *testing.T, data string) update.State {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "update", "state.json"))
	if err != nil {
		return update.State{}
	}
	var s update.State
	require.NoError(t, json.Unmarshal(b, &s))
	return s
}

func runningVersion(base string) string {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(base + "/manage/info")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var info struct {
		Build struct{ Version string } `json:"build"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&info)
	return info.Build.Version
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return b
}

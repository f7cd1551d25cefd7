package e2e_test

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/internal/procstat"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds the daemon once per test binary, without the race
// detector: the child is the production build.
func binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "efm-e2e-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "integrasjonspunkt")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/efm-go/efm/cmd/integrasjonspunkt")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, binErr)
	return binPath
}

// child is the daemon running as a child process.
type child struct {
	*daemon
	cmd  *exec.Cmd
	conf string
	log  *os.File
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startChild writes the daemon's properties and starts it on a free port
// with its data in dir.
func startChild(t testing.TB, dir string, extra map[string]string) *child {
	t.Helper()
	return startChildAs(t, ownOrg, dir, extra)
}

// startChildAs is startChild for a daemon of another seeded organisation.
func startChildAs(t testing.TB, org, dir string, extra map[string]string) *child {
	t.Helper()
	port := freePort(t)
	ov := overrides(t, org, extra)
	ov["server.port"] = strconv.Itoa(port)
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(ov)) {
		fmt.Fprintf(&b, "%s=%s\n", k, ov[k])
	}
	conf := filepath.Join(dir, "integrasjonspunkt.properties")
	require.NoError(t, os.WriteFile(conf, []byte(b.String()), 0o600))
	return runChild(t, dir, conf, port)
}

func runChild(t testing.TB, dir, conf string, port int) *child {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(dir, "daemon.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	require.NoError(t, err)
	cmd := exec.Command(binary(t), "run", "--config", conf, "--data", filepath.Join(dir, "data"))
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	c := &child{daemon: &daemon{t: t, org: ownOrg, base: fmt.Sprintf("http://127.0.0.1:%d", port), dir: dir}, cmd: cmd, conf: conf, log: logf}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Signal(syscall.SIGTERM)
			c.cmd.Wait()
		}
		logf.Close()
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get(c.base + "/manage/health/readiness")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return c
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "daemon.log"))
	t.Fatalf("daemon did not become ready within 60 s:\n%s", b)
	return nil
}

// logOf is what the daemon logged about a message, across restarts.
func (c *child) logOf(id string) string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "daemon.log"))
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, id) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// kill ends the child with SIGKILL: no drain, no clean shutdown.
func (c *child) kill(t testing.TB) {
	t.Helper()
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
	c.cmd.Wait()
}

// restart runs the daemon again on the same data and port.
func (c *child) restart(t testing.TB) *child {
	t.Helper()
	port, err := strconv.Atoi(c.base[strings.LastIndex(c.base, ":")+1:])
	require.NoError(t, err)
	return runChild(t, c.dir, c.conf, port)
}

// rss is the child's resident memory in bytes (Linux).
func (c *child) rss(t testing.TB) int64 {
	t.Helper()
	if runtime.GOOS != "linux" {
		return 0
	}
	n, err := procstat.RSS(c.cmd.Process.Pid)
	require.NoError(t, err)
	return n
}

// TestCrash_ExactlyOnce: the daemon is killed with SIGKILL while it works
// through 1,000 messages and is started again on the same data. Every
// message the API accepted is published by the broker exactly once; a
// message whose answer was cut off by the kill may or may not have been
// accepted, but is never published twice.
func TestCrash_ExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the daemon and sends 1,000 messages")
	}
	const n = 1000
	// Receipts are not what this test is about; without them the broker
	// only carries the messages.
	brokerSchedule(t, map[string]any{"drop": []string{"MOTTATT", "LEVERT", "kvittering"}})
	c := startChild(t, t.TempDir(), map[string]string{"difi.move.queue.concurrency": "16",
		"efm.pipeline.sweep-interval": "2s", "efm.pipeline.sweep-grace": "10s"})
	before := len(brokerDeliveries(t))

	results := make(chan sendResult, n)
	var sent sync.WaitGroup
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	send := func(d *daemon, stop <-chan struct{}) {
		for range 8 {
			sent.Go(func() {
				for range next {
					select {
					case <-stop:
						return
					default:
					}
					sbd, files, id := arkivmelding(peerOrg, 0)
					code, _ := d.send(sbd, files)
					results <- sendResult{id, code == http.StatusOK}
				}
			})
		}
	}
	stop := make(chan struct{})
	send(c.daemon, stop)
	// Kill once the broker has published a good part, while the rest is
	// in every stage: being accepted, queued, packed, uploaded.
	deadline := time.Now().Add(3 * time.Minute)
	for len(brokerDeliveries(t))-before < n/3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	// Stop taking new sends first, then kill: the requests in flight are cut
	// off, but no sender keeps hammering a dead daemon for as long as the
	// scheduler lets it, which made the count of refused sends a race.
	close(stop)
	c.kill(t)
	sent.Wait()

	c = c.restart(t)
	send(c.daemon, nil)
	sent.Wait()
	close(results)

	accepted, unsure := splitResults(results)
	t.Logf("%d accepted, %d cut off by the kill", len(accepted), len(unsure))
	require.GreaterOrEqual(t, len(accepted), n-20, "most sends are answered")

	requireExactlyOnce(t, accepted, unsure, c.logOf)
	if swept := c.logOf("sent by the sweep"); swept != "" {
		t.Logf("the queue left messages alone after the restart; the sweep took them:\n%s", swept)
	}
}

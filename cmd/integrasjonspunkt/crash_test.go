package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/internal/apitest"
)

// buildDaemon builds the real binary once per test run.
func buildDaemon(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "integrasjonspunkt")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// child is the daemon as a separate process, the way a service manager runs it.
type child struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string
	log  *bytes.Buffer
}

func startChild(t *testing.T, bin, data string, port int) *child {
	t.Helper()
	c := &child{t: t, base: "http://127.0.0.1:" + strconv.Itoa(port), log: &bytes.Buffer{}}
	c.cmd = exec.Command(bin, "run", "--sandbox", "--data", data)
	c.cmd.Env = append(os.Environ(), "SERVER_PORT="+strconv.Itoa(port))
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	require.NoError(t, c.cmd.Start())
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if st, _ := c.health(); st == "UP" {
			return c
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
	t.Fatalf("daemon not healthy within 30 s; log:\n%s", c.log)
	return nil
}

func (c *child) health() (string, map[string]any) {
	resp, err := http.Get(c.base + "/manage/health")
	if err != nil {
		return "", nil
	}
	defer resp.Body.Close()
	var h struct {
		Status     string
		Components map[string]any
	}
	_ = json.NewDecoder(resp.Body).Decode(&h)
	return h.Status, h.Components
}

func (c *child) kill() {
	c.t.Helper()
	require.NoError(c.t, c.cmd.Process.Signal(syscall.SIGKILL))
	_ = c.cmd.Wait()
}

// TestDaemon_SurvivesSIGKILL writes through the API (subscriptions and messages), kills the daemon without
// any chance to clean up, and starts it again on the same data dir: it must
// come back healthy with every write in place and its queue running.
func TestDaemon_SurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon as a child process")
	}
	bin := buildDaemon(t)
	data := t.TempDir()
	port := freePort(t)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer hook.Close()

	c := startChild(t, bin, data, port)
	const n = 20
	for i := range n {
		body := fmt.Sprintf(`{"name":"sak-%d","pushEndpoint":%q,"resource":"all","event":"all"}`, i, hook.URL)
		resp, err := http.Post(c.base+"/api/subscriptions", "application/json", bytes.NewBufferString(body))
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "create subscription: %s", b)
	}
	// The broker refuses uploads, so the messages are provably unsent when
	// the daemon dies: the simulators run in its process and die with it.
	apitest.SimFault(t, c.base, "altinn-broker", `{"path":"/broker/api/v1/filetransfer","method":"POST","status":503}`)
	var ids []string
	for range 10 {
		ids = append(ids, apitest.SendReadmeMessage(t, c.base))
	}
	time.Sleep(500 * time.Millisecond) // let the pipeline try, and fail, at least once
	for _, id := range ids {
		require.False(t, apitest.HasStatus(c.base, id, "SENDT"), "message %s sent although the broker refused uploads", id)
	}
	c.kill()

	c = startChild(t, bin, data, port)
	st, comps := c.health()
	assert.Equal(t, "UP", st)
	assert.Contains(t, comps, "store")
	assert.Contains(t, comps, "queue")
	resp, err := http.Get(c.base + "/api/subscriptions?size=100")
	require.NoError(t, err)
	defer resp.Body.Close()
	var page struct {
		Content       []map[string]any `json:"content"`
		TotalElements int              `json:"totalElements"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&page))
	assert.Equal(t, n, page.TotalElements, "every acknowledged write must survive SIGKILL")
	assert.Len(t, page.Content, n)
	// Messages accepted before the kill are in the store and, through the
	// queue rebuilt at start, go on to LEVERT.
	for _, id := range ids {
		require.Eventually(t, func() bool { return apitest.HasStatus(c.base, id, "LEVERT") }, 60*time.Second, 100*time.Millisecond,
			"message %s accepted before SIGKILL never reached LEVERT; log:\n%s", id, c.log)
	}
	c.kill()
}

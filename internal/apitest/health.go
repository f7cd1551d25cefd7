package apitest

import (
	"encoding/json"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// HealthStatus is the daemon's /manage/health status ("UP", "DOWN", ...), or
// "" when nothing answers: for polling a daemon started in another process.
func HealthStatus(base string) string {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(base + "/manage/health?verbose=false")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var h struct{ Status string }
	_ = json.NewDecoder(resp.Body).Decode(&h)
	return h.Status
}

// FreePort is a loopback port free at the time of the call, for a daemon
// started in another process.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

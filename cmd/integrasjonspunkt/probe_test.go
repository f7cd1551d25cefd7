package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProbe_ExitsByTheDaemonsAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/manage/health/liveness":
			w.WriteHeader(http.StatusOK)
		case "/manage/health/readiness":
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	cfg := filepath.Join(t.TempDir(), "ip.properties")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("server.port=%d\n", port)), 0o600))

	out, code := runCLI(t, "probe", "--config", cfg)
	assert.Equal(t, exitOK, code, out)
	assert.Contains(t, out, "liveness: 200 OK")

	out, code = runCLI(t, "probe", "--config", cfg, "--probe", "readiness")
	assert.Equal(t, exitFailure, code, out)
	assert.Contains(t, out, "503")

	out, code = runCLI(t, "probe", "--config", cfg, "--probe", "health")
	assert.Equal(t, exitUsage, code, out)

	srv.Close()
	out, code = runCLI(t, "probe", "--config", cfg)
	assert.Equal(t, exitFailure, code, out)
	assert.Contains(t, out, "no answer")
}

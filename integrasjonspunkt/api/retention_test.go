package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRetention_RunsInTheDaemon: the retention job runs at start; health,
// metrics and the status page report it.
func TestRetention_RunsInTheDaemon(t *testing.T) {
	d := startDaemon(t, nil)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(string(d.get("/manage/prometheus").Body), "efm_retention_last_run_timestamp_seconds ") {
		require.True(t, time.Now().Before(deadline), "the retention job did not run at start")
		time.Sleep(100 * time.Millisecond)
	}
	assert.Contains(t, string(d.get("/manage/prometheus").Body), `efm_retention_deleted_total{kind="conversations"} 0`)
	h := d.get("/manage/health").JSON(t)
	c, ok := h["components"].(map[string]any)["retention"].(map[string]any)
	require.True(t, ok, "health has a retention component: %v", h)
	assert.Equal(t, "UP", c["status"])
	page := string(d.get("/").Body)
	assert.Contains(t, page, "efm.retention.history")
	assert.Contains(t, page, "Last run")
}

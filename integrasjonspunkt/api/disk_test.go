package api_test

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt/store"
)

// TestDiskBelowMinFree: with less free space than efm.disk.min-free (here a
// minimum no disk meets), health and its store component are DOWN with the
// figures, and writes get 507 naming the full disk instead of a generic 500
// (issue 14, point 13). Reading and deleting go on.
func TestDiskBelowMinFree(t *testing.T) {
	d := startDaemon(t, map[string]string{"efm.disk.min-free": "1000000GB"})

	h := d.get("/manage/health")
	assert.Equal(t, 503, h.Code, "body: %s", h.Body)
	m := h.JSON(t)
	assert.Equal(t, "DOWN", m["status"])
	st := m["components"].(map[string]any)["store"].(map[string]any)
	assert.Equal(t, "DOWN", st["status"])
	det := st["details"].(map[string]any)
	assert.Contains(t, det["reason"], "disk full")
	assert.Greater(t, det["diskFreeBytes"], float64(0))
	assert.EqualValues(t, int64(1000000)<<30, det["diskMinFreeBytes"])

	r := d.multipart(avtaltSBD(dpoOrg), part{"Vedlegg", "vedlegg.pdf", "application/pdf", []byte("x")})
	e := requireError(t, r, 507, "InsufficientStorageException")
	assert.Contains(t, e["message"], "disk is full")
	b, _ := jsonMarshal(avtaltSBD(dpoOrg))
	requireError(t, d.do("POST", "/api/messages/out", bytes.NewReader(b), "Content-Type", "application/json"), 507, "InsufficientStorageException")
	requireError(t, d.put("/api/messages/out/6f1a4a0e-0000-4000-8000-000000000000", []byte("x"), "Content-Disposition", cd("a", "a.pdf")), 507, "InsufficientStorageException")

	require.Equal(t, 200, d.get("/api/conversations").Code)
	assert.Contains(t, string(d.get("/manage/prometheus").Body), "efm_disk_free_bytes ")
}

// TestDiskNearlyFull: below twice the minimum the store is DEGRADED and
// messages are still taken.
func TestDiskNearlyFull(t *testing.T) {
	free := freeSpace(t)
	// Two thirds of what is free: a third of margin either way for other
	// writers on the machine.
	d := startDaemon(t, map[string]string{"efm.disk.min-free": formatSize(free * 2 / 3)})
	st := d.get("/manage/health").JSON(t)["components"].(map[string]any)["store"].(map[string]any)
	assert.Equal(t, "DEGRADED", st["status"], "%v", st)
	d.create(avtaltSBD(dpoOrg))
}

func freeSpace(t *testing.T) int64 {
	t.Helper()
	free, err := store.FreeSpace(t.TempDir())
	require.NoError(t, err)
	return free
}

func formatSize(n int64) string { return strconv.FormatInt(n>>10, 10) + "KB" }

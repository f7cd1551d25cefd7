package e2e_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// metric is the value of one series of /manage/prometheus, found by its
// name and labels as the text format writes them; -1 when absent.
func (d *daemon) metric(series string) float64 {
	d.t.Helper()
	code, body := d.do("GET", "/manage/prometheus")
	require.Equal(d.t, 200, code)
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(d.t, err)
			return f
		}
	}
	return -1
}

// channelComponent is health's channel.<service> component.
func (d *daemon) channelComponent(service string) (overall string, c map[string]any) {
	d.t.Helper()
	_, body := d.do("GET", "/manage/health")
	var h struct {
		Status     string                    `json:"status"`
		Components map[string]map[string]any `json:"components"`
	}
	require.NoError(d.t, json.Unmarshal(body, &h), "body: %s", body)
	return h.Status, h.Components["channel."+service]
}

// TestDPO_OutageShowsInHealthAndMetrics: a full broker outage makes
// channel.DPO and the daemon DEGRADED with the failures counted; after a
// restart on a healthy broker the start-up sweep sends the queued messages
// and their queue entries go with them, so efm_queue_pending falls back
// instead of waiting for a redelivery minutes away (issue 14, point 14).
func TestDPO_OutageShowsInHealthAndMetrics(t *testing.T) {
	dir := t.TempDir()
	// A long backoff: the failed entries are not redelivered during the test.
	extra := map[string]string{"efm.pipeline.backoff": "10m"}
	d := startDaemon(t, ownOrg, dir, extra)
	for _, p := range []string{"/broker/api/v1/*", "/broker/api/v1/filetransfer/*", "/broker/api/v1/filetransfer/*/*", "/broker/api/v1/filetransfer"} {
		simCall(t, "altinn-broker", "POST", "/_sim/faults", map[string]any{"path": p, "status": 503}, nil)
	}
	t.Cleanup(func() { simCall(t, "altinn-broker", "DELETE", "/_sim/faults", nil, nil) })
	var ids []string
	for range 2 {
		sbd, files, id := arkivmelding(peerOrg, 0)
		d.mustSend(sbd, files)
		ids = append(ids, id)
	}
	require.Eventually(t, func() bool {
		overall, c := d.channelComponent("DPO")
		return overall == "DEGRADED" && c["status"] == "DEGRADED"
	}, 60*time.Second, 200*time.Millisecond, "channel.DPO never went DEGRADED")
	_, c := d.channelComponent("DPO")
	det := c["details"].(map[string]any)
	assert.GreaterOrEqual(t, det["consecutiveFailures"], float64(3))
	assert.Equal(t, "server_5xx", det["lastErrorKind"])
	assert.NotEmpty(t, det["lastFailure"])
	assert.GreaterOrEqual(t, d.metric(`efm_channel_errors_total{kind="server_5xx",service="DPO"}`), float64(3))
	assert.Equal(t, float64(2), d.metric(`efm_queue_pending{stream="OUTGOING"}`))
	assert.Equal(t, float64(2), d.metric(`efm_messages_total{direction="OUTGOING",service="DPO",status="OPPRETTET"}`))
	assert.GreaterOrEqual(t, d.metric(`efm_api_requests_total{api_version="v1",client="Go-http-client",code="200",route="POST /api/messages/out/multipart"}`), float64(2))
	assert.Greater(t, d.metric("process_open_fds"), float64(0))
	assert.Greater(t, d.metric("process_resident_memory_bytes"), float64(0))
	assert.Equal(t, float64(0), d.metric("efm_queue_dead_letters"))

	d.stop()
	simCall(t, "altinn-broker", "DELETE", "/_sim/faults", nil, nil)
	d = startDaemon(t, ownOrg, dir, extra)
	for _, id := range ids {
		d.waitStatus(id, "LEVERT", 60*time.Second)
	}
	require.Eventually(t, func() bool { return d.metric(`efm_queue_pending{stream="OUTGOING"}`) == 0 },
		20*time.Second, 200*time.Millisecond, "queue entries of swept messages still pending")
	overall, c := d.channelComponent("DPO")
	assert.Equal(t, "UP", c["status"], "%v", c)
	assert.NotEmpty(t, c["details"].(map[string]any)["lastSuccess"])
	assert.Equal(t, "UP", overall)
	assert.Equal(t, float64(2), d.metric(`efm_messages_total{direction="OUTGOING",service="DPO",status="SENDT"}`))
}

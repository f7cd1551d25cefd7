package e2e_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dpvSchedule sets the correspondence simulator's timeline for one test.
func dpvSchedule(t *testing.T, sched map[string]any) {
	t.Helper()
	var old map[string]any
	simCall(t, "altinn-correspondence", "GET", "/_sim/config", nil, &old)
	if _, ok := old["neverRead"]; !ok {
		old["neverRead"] = false
	}
	simCall(t, "altinn-correspondence", "POST", "/_sim/config", sched, nil)
	t.Cleanup(func() { simCall(t, "altinn-correspondence", "POST", "/_sim/config", old, nil) })
}

// waitIncoming peeks for an incoming message of process until one comes.
func (d *daemon) waitIncoming(process string, within time.Duration) map[string]any {
	d.t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, body := d.do("GET", "/api/messages/in/peek?process="+process)
		if code == 200 {
			var m map[string]any
			require.NoError(d.t, json.Unmarshal(body, &m))
			return m
		}
		require.True(d.t, time.Now().Before(deadline), "no incoming %s within %s", process, within)
		time.Sleep(100 * time.Millisecond)
	}
}

const arkivResponse = "urn:no:difi:profile:arkivmelding:response:ver1.0"

// TestDPV_GeneratedReceipt: DPV carries no receipts, so on LEVERT the daemon
// puts an arkivmelding_kvittering OK for the message on its own incoming
// queue (local-api.md §12.2, channels.md §3.5), from the receiver, in the
// same conversation.
func TestDPV_GeneratedReceipt(t *testing.T) {
	dpvSchedule(t, map[string]any{"publish": "50ms", "read": "1h", "neverRead": true})
	d := startDaemon(t, ownOrg, t.TempDir(), nil)
	raw, files, id := arkivmelding(dpvOrg, 0)
	d.mustSend(raw, files)
	d.waitStatus(id, "LEVERT", 30*time.Second)

	m := d.waitIncoming(arkivResponse, 30*time.Second)
	k, ok := m["arkivmelding_kvittering"].(map[string]any)
	require.True(t, ok, "not a kvittering: %v", m)
	assert.Equal(t, "OK", k["receiptType"])
	assert.Equal(t, id, k["relatedToMessageId"])
	h := m["standardBusinessDocumentHeader"].(map[string]any)
	sender := h["sender"].([]any)[0].(map[string]any)["identifier"].(map[string]any)["value"]
	assert.Equal(t, "0192:"+dpvOrg, sender, "from the receiver")
	var sent map[string]any
	require.NoError(t, json.Unmarshal(raw, &sent))
	conv := sent["standardBusinessDocumentHeader"].(map[string]any)["businessScope"].(map[string]any)["scope"].([]any)[0].(map[string]any)["instanceIdentifier"]
	scope := h["businessScope"].(map[string]any)["scope"].([]any)[0].(map[string]any)
	assert.Equal(t, conv, scope["instanceIdentifier"], "same conversation")
	// As a received kvittering OK it also records LEST on the message.
	d.waitStatus(id, "LEST", 10*time.Second)
}

// TestDPV_NoGeneratedReceipt: with
// difi.move.arkivmelding.generate-arkivmelding-receipts=false nothing is put
// on the incoming queue, and LEST comes from Altinn only.
func TestDPV_NoGeneratedReceipt(t *testing.T) {
	d := startDaemon(t, ownOrg, t.TempDir(), map[string]string{"difi.move.arkivmelding.generate-arkivmelding-receipts": "false"})
	raw, files, id := arkivmelding(dpvOrg, 0)
	d.mustSend(raw, files)
	d.waitStatus(id, "LEST", 30*time.Second)
	code, body := d.do("GET", "/api/messages/in/peek?process="+arkivResponse)
	assert.NotEqual(t, 200, code, "no generated receipt: %s", body)
}

// TestDPV_ReceiptSettledAtOnce: a receipt to a DPV receiver is not carried;
// it gets SENDT, LEVERT and LEST at once (local-api.md §12.2, §14.3).
func TestDPV_ReceiptSettledAtOnce(t *testing.T) {
	d := startDaemon(t, ownOrg, t.TempDir(), nil)
	id := uuid.NewString()
	doc := map[string]any{
		"standardBusinessDocumentHeader": map[string]any{
			"headerVersion": "1.0",
			"receiver":      []any{map[string]any{"identifier": map[string]any{"authority": "iso6523-actorid-upis", "value": "0192:" + dpvOrg}}},
			"documentIdentification": map[string]any{"standard": "urn:no:difi:arkivmelding:xsd::arkivmelding_kvittering", "typeVersion": "2.0",
				"type": "arkivmelding_kvittering", "instanceIdentifier": id},
			"businessScope": map[string]any{"scope": []any{map[string]any{"type": "ConversationId", "identifier": arkivResponse,
				"instanceIdentifier": uuid.NewString()}}},
		},
		"arkivmelding_kvittering": map[string]any{"receiptType": "OK", "relatedToMessageId": uuid.NewString()},
	}
	raw, err := json.Marshal(doc)
	require.NoError(t, err)
	d.mustSend(raw, nil)
	got := d.waitStatus(id, "LEST", 10*time.Second)
	assert.Equal(t, []string{"OPPRETTET", "SENDT", "LEVERT", "LEST"}, got)
	var rep struct {
		Deliveries map[string]int `json:"deliveries"`
	}
	simCall(t, "altinn-correspondence", "GET", "/_sim/deliveries", nil, &rep)
	assert.Zero(t, rep.Deliveries[id], "no correspondence for a receipt")
}

// TestDPV_PollingBackoff: a correspondence whose status stops changing is
// polled less and less often (channels.md §1.6). Here the interval grows
// from the 100 ms base to 2 s over 1 s of no change, so in 4 s of quiet the
// daemon polls a handful of times rather than some forty.
func TestDPV_PollingBackoff(t *testing.T) {
	dpvSchedule(t, map[string]any{"publish": "50ms", "read": "1h", "neverRead": true})
	d := startDaemon(t, ownOrg, t.TempDir(), map[string]string{
		"efm.pipeline.poll-interval":                            "100ms",
		"efm.pipeline.status-backoff-threshold":                 "1s",
		"efm.pipeline.status-backoff-max":                       "2s",
		"difi.move.arkivmelding.generate-arkivmelding-receipts": "false",
	})
	raw, files, id := arkivmelding(dpvOrg, 0)
	d.mustSend(raw, files)
	d.waitStatus(id, "LEVERT", 30*time.Second)
	polled := func() int {
		var reqs map[string]int
		simCall(t, "altinn-correspondence", "GET", "/_sim/requests", nil, &reqs)
		n := 0
		for route, c := range reqs {
			if strings.HasPrefix(route, "GET ") && strings.HasSuffix(route, "/correspondence/{id}") {
				n += c
			}
		}
		return n
	}
	time.Sleep(1500 * time.Millisecond) // past the threshold: every 2 s from here
	before := polled()
	time.Sleep(4 * time.Second)
	n := polled() - before
	assert.GreaterOrEqual(t, n, 1, "still polled")
	assert.LessOrEqual(t, n, 4, "polled %d times in 4 s", n)
	assert.NotContains(t, d.statuses(id), "LEST")
}

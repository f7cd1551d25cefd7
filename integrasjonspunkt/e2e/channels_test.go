package e2e_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	dpvOrg = "910081004" // in no address register: DPV (archive processes)
	dpeOrg = "810074582" // on eInnsyn only: DPE, answered by the service bus simulator's eInnsyn peer
)

// TestDPV_PublishedAndRead: a correspondence is created (SENDT), Altinn
// publishes it (LEVERT) and the recipient reads it (LEST), found by polling.
// DPV reports no MOTTATT (local-api.md §14.3).
func TestDPV_PublishedAndRead(t *testing.T) {
	d := startDaemon(t, ownOrg, t.TempDir(), nil)
	sbd, files, id := arkivmelding(dpvOrg, 0)
	d.mustSend(sbd, files)
	got := d.waitStatus(id, "LEST", 30*time.Second)
	progress(t, got, "OPPRETTET", "SENDT", "LEVERT", "LEST")
	var rep struct {
		Deliveries map[string]int `json:"deliveries"`
	}
	simCall(t, "altinn-correspondence", "GET", "/_sim/deliveries", nil, &rep)
	assert.Equal(t, 1, rep.Deliveries[id], "one correspondence")
}

// TestDPE_Publisering: a publication goes on the receiver's Service Bus
// queue; eInnsyn answers MOTTATT and LEVERT as status messages on ours.
func TestDPE_Publisering(t *testing.T) {
	d := startDaemon(t, ownOrg, t.TempDir(), nil)
	sbd, files, id := publisering(dpeOrg)
	d.mustSend(sbd, files)
	got := d.waitStatus(id, "LEVERT", 30*time.Second)
	progress(t, got, "OPPRETTET", "SENDT", "MOTTATT", "LEVERT")
	var rep struct {
		Deliveries map[string]int `json:"deliveries"`
	}
	simCall(t, "service-bus", "GET", "/_sim/deliveries", nil, &rep)
	assert.Equal(t, 1, rep.Deliveries[id], "one message on the bus")

	// eInnsyn's answer is an incoming message for the client (§7.5).
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := d.do("GET", "/api/messages/in/peek?process=urn:no:difi:profile:einnsyn:response:ver1.0")
		if code == 200 {
			assert.Contains(t, string(body), "einnsyn_kvittering")
			break
		}
		require.True(t, time.Now().Before(deadline), "no einnsyn_kvittering arrived")
		time.Sleep(200 * time.Millisecond)
	}
}

// TestDPE_Incoming: eInnsyn sends an innsynskrav to our queue. The daemon
// fetches it, answers MOTTATT on the sender's status queue, and LEVERT once
// the client has deleted it (local-api.md §14.3).
func TestDPE_Incoming(t *testing.T) {
	d := startDaemon(t, ownOrg, t.TempDir(), nil)
	id, conv := uuid.NewString(), uuid.NewString()
	sbd := map[string]any{
		"standardBusinessDocumentHeader": map[string]any{
			"headerVersion": "1.0",
			"sender":        []any{map[string]any{"identifier": map[string]any{"authority": "iso6523-actorid-upis", "value": "0192:" + dpeOrg}}},
			"receiver":      []any{map[string]any{"identifier": map[string]any{"authority": "iso6523-actorid-upis", "value": "0192:" + ownOrg}}},
			"documentIdentification": map[string]any{"standard": "urn:no:difi:einnsyn:xsd::innsynskrav", "typeVersion": "1.0",
				"type": "innsynskrav", "instanceIdentifier": id, "creationDateAndTime": time.Now().Format(time.RFC3339)},
			"businessScope": map[string]any{"scope": []any{map[string]any{"type": "ConversationId",
				"identifier": "urn:no:difi:profile:einnsyn:innsynskrav:ver1.0", "instanceIdentifier": conv,
				"scopeInformation": []any{map[string]any{"expectedResponseDateTime": time.Now().Add(time.Hour).Format(time.RFC3339)}}}}},
		},
		"innsynskrav": map[string]any{"orgnr": ownOrg, "epost": "innsyn@example.no"},
	}
	simCall(t, "service-bus", "POST", "/_sim/send", map[string]any{"queue": "nextbestqueue" + ownOrg + "innsyn", "sbd": sbd}, nil)

	statuses := func() []string {
		var rep struct {
			Statuses map[string][]string `json:"statuses"`
		}
		simCall(t, "service-bus", "GET", "/_sim/deliveries", nil, &rep)
		return rep.Statuses[id]
	}
	deadline := time.Now().Add(30 * time.Second)
	for !slices.Contains(statuses(), "MOTTATT") {
		require.True(t, time.Now().Before(deadline), "no MOTTATT back to eInnsyn; statuses %v", statuses())
		time.Sleep(200 * time.Millisecond)
	}
	code, body := d.do("GET", "/api/messages/in/peek?messageId="+id)
	require.Equal(t, 200, code, "peek: %s", body)
	code, body = d.do("DELETE", "/api/messages/in/"+id)
	require.Equal(t, 200, code, "delete: %s", body)
	for !slices.Contains(statuses(), "LEVERT") {
		require.True(t, time.Now().Before(deadline), "no LEVERT back to eInnsyn; statuses %v", statuses())
		time.Sleep(200 * time.Millisecond)
	}
}

// TestDPV_FinalRejection: a 4xx other than 409 from Altinn is final (the
// project rule of channels.md §1.3): FEIL at once.
func TestDPV_FinalRejection(t *testing.T) {
	d := startDaemon(t, ownOrg, t.TempDir(), nil)
	simCall(t, "altinn-correspondence", "POST", "/_sim/faults", map[string]any{"path": "/correspondence/api/v1/correspondence/upload",
		"method": "POST", "status": 400, "times": 1}, nil)
	t.Cleanup(func() { simCall(t, "altinn-correspondence", "DELETE", "/_sim/faults", nil, nil) })
	sbd, files, id := arkivmelding(dpvOrg, 0)
	d.mustSend(sbd, files)
	got := d.waitStatus(id, "FEIL", 30*time.Second)
	assert.NotContains(t, got, "SENDT")
}

// TestOutage_DPVUnaffectedByDPO: with the DPO broker answering 503 to
// everything, more DPO messages than the queue has workers wait for their
// retries, and DPV messages sent after them still go out at once: one
// channel's outage does not stop another's work (issue 14, point 5).
func TestOutage_DPVUnaffectedByDPO(t *testing.T) {
	const concurrency = 4
	// The sweep would rescue a starved message after its grace; keep it out
	// of reach so that only the queue can deliver.
	d := startDaemon(t, ownOrg, t.TempDir(), map[string]string{"difi.move.queue.concurrency": "4",
		"efm.pipeline.sweep-grace": "10m"})
	brokerFault(t, map[string]any{"path": "/broker/api/v1/*", "status": 503})
	brokerFault(t, map[string]any{"path": "/broker/api/v1/filetransfer/*", "status": 503})
	brokerFault(t, map[string]any{"path": "/broker/api/v1/filetransfer/*/*", "status": 503})
	var dpo []string
	for range 3 * concurrency {
		sbd, files, id := arkivmelding(peerOrg, 0)
		d.mustSend(sbd, files)
		dpo = append(dpo, id)
	}
	time.Sleep(2 * time.Second) // every DPO message has failed once and waits 20 s
	start := time.Now()
	var slowest time.Duration
	for range 5 {
		sbd, files, id := arkivmelding(dpvOrg, 0)
		d.mustSend(sbd, files)
		d.waitStatus(id, "LEVERT", 15*time.Second)
		slowest = max(slowest, time.Since(start))
	}
	t.Logf("5 DPV messages LEVERT within %s while %d DPO messages wait for a broker answering 503", slowest.Round(time.Millisecond), len(dpo))
	for _, id := range dpo {
		assert.NotContains(t, d.statuses(id), "SENDT", "the broker is down")
	}
}

// TestOutage_DPVUnaffectedByHangingDPO: a broker that holds every answer
// for 10 s keeps DPO sends busy, but never every worker: DPV messages go
// out at once beside them.
func TestOutage_DPVUnaffectedByHangingDPO(t *testing.T) {
	d := startDaemon(t, ownOrg, t.TempDir(), map[string]string{"difi.move.queue.concurrency": "4",
		"efm.pipeline.sweep-grace": "10m"})
	brokerFault(t, map[string]any{"path": "/broker/api/v1/filetransfer", "method": "POST", "delay": "10s"})
	for range 8 {
		sbd, files, _ := arkivmelding(peerOrg, 0)
		d.mustSend(sbd, files)
	}
	time.Sleep(time.Second) // the DPO sends are out, waiting for the broker
	start := time.Now()
	sbd, files, id := arkivmelding(dpvOrg, 0)
	d.mustSend(sbd, files)
	d.waitStatus(id, "SENDT", 8*time.Second)
	t.Logf("DPV message SENT in %s while the DPO broker holds every answer for 10 s", time.Since(start).Round(time.Millisecond))
}

package e2e_test

import (
	"testing"
	"time"

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

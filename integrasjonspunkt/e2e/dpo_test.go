package e2e_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// progress checks an outgoing message's history: OPPRETTET, then SENDT
// (local-api.md §14.2), then the receipts, and every one of want. Receipts
// are not checked for order among themselves: the peers' answers travel as
// separate messages and late receipts are recorded as they come.
func progress(t *testing.T, got []string, want ...string) {
	t.Helper()
	if assert.GreaterOrEqual(t, len(got), 2, "statuses %v", got) {
		assert.Equal(t, []string{"OPPRETTET", "SENDT"}, got[:2], "statuses %v", got)
	}
	for _, w := range want {
		assert.Contains(t, got, w, "statuses %v", got)
	}
	seen := map[string]bool{}
	for _, s := range got {
		assert.False(t, seen[s], "status %s twice: %v", s, got)
		seen[s] = true
	}
}

// TestDPO_ToSimulatedPeer: the receiver's integration point is played by the
// broker simulator, which decrypts and verifies the package and answers
// MOTTATT, LEVERT and an arkivmelding_kvittering.
func TestDPO_ToSimulatedPeer(t *testing.T) {
	d := startDaemon(t, ownOrg, t.TempDir(), nil)
	sbd, files, id := arkivmelding(peerOrg, 0)
	d.mustSend(sbd, files)
	got := d.waitStatus(id, "LEST", 30*time.Second)
	progress(t, got, "OPPRETTET", "SENDT", "MOTTATT", "LEVERT", "LEST")
	assert.Equal(t, 1, brokerDeliveries(t)[id], "published once")
	var rep struct {
		PeerErrors map[string]string `json:"peerErrors"`
	}
	simCall(t, "altinn-broker", "GET", "/_sim/deliveries", nil, &rep)
	assert.Empty(t, rep.PeerErrors[id], "the peer opened the package")
}

// TestDPO_TwoDaemons: two organisations, two data dirs, one broker. The
// receiver's client peeks, pops and deletes; the sender sees LEVERT and the
// documents arrive byte for byte.
func TestDPO_TwoDaemons(t *testing.T) {
	a := startDaemon(t, ownOrg, t.TempDir(), nil)
	b := startDaemon(t, secondOrg, t.TempDir(), nil)
	sbd, files, id := arkivmelding(secondOrg, 0)
	a.mustSend(sbd, files)
	a.waitStatus(id, "MOTTATT", 30*time.Second)

	code, peeked := b.do("GET", "/api/messages/in/peek")
	require.Equal(t, http.StatusOK, code, "peek: %s", peeked)
	var head struct {
		Header struct {
			DocumentIdentification struct {
				InstanceIdentifier string `json:"instanceIdentifier"`
			} `json:"documentIdentification"`
		} `json:"standardBusinessDocumentHeader"`
	}
	require.NoError(t, json.Unmarshal(peeked, &head))
	require.Equal(t, id, head.Header.DocumentIdentification.InstanceIdentifier)

	code, pkg := b.do("GET", "/api/messages/in/pop/"+id)
	require.Equal(t, http.StatusOK, code)
	zr, err := zip.NewReader(bytes.NewReader(pkg), int64(len(pkg)))
	require.NoError(t, err)
	for name, want := range files {
		f, err := zr.Open(name)
		require.NoError(t, err, "container lacks %s", name)
		got, err := io.ReadAll(f)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(want, got), "%s differs after transport", name)
	}
	code, _ = b.do("DELETE", "/api/messages/in/"+id)
	require.Equal(t, http.StatusOK, code)

	got := a.waitStatus(id, "LEVERT", 30*time.Second)
	progress(t, got, "OPPRETTET", "SENDT", "MOTTATT", "LEVERT")
}

// TestDPO_FinalRejection: a 4xx from the broker is final: FEIL at once, no
// retries.
func TestDPO_FinalRejection(t *testing.T) {
	d := startDaemon(t, ownOrg, t.TempDir(), nil)
	brokerFault(t, map[string]any{"path": "/broker/api/v1/filetransfer", "method": "POST", "status": 400, "times": 1})
	sbd, files, id := arkivmelding(peerOrg, 0)
	d.mustSend(sbd, files)
	got := d.waitStatus(id, "FEIL", 30*time.Second)
	assert.NotContains(t, got, "SENDT")
	assert.Zero(t, brokerDeliveries(t)[id])
}

// TestDPO_LifetimeEnds: receipts never come, the lifetime ends:
// LEVETID_UTLOPT after SENDT.
func TestDPO_LifetimeEnds(t *testing.T) {
	d := startDaemon(t, ownOrg, t.TempDir(), nil)
	brokerSchedule(t, map[string]any{"drop": []string{"MOTTATT", "LEVERT", "kvittering"}})
	sbd, files, id := arkivmelding(peerOrg, 4*time.Second)
	d.mustSend(sbd, files)
	got := d.waitStatus(id, "LEVETID_UTLOPT", 30*time.Second)
	assert.Contains(t, got, "SENDT")
	assert.NotContains(t, got, "LEVERT")
}

// TestDPO_Outage: the broker answers 503 to everything for a while (a
// compressed two-minute outage: the backoff schedule is scaled down the same
// way), and some answers are lost after the broker acted on the request.
// Every message gets through once: nothing lost, nothing sent twice.
func TestDPO_Outage(t *testing.T) {
	d := startDaemon(t, ownOrg, t.TempDir(), map[string]string{"efm.pipeline.backoff": "500ms,1s,2s"})
	const n = 20
	simCall(t, "altinn-broker", "POST", "/_sim/faults", map[string]any{"path": "/broker/api/v1/*", "status": 503}, nil)
	simCall(t, "altinn-broker", "POST", "/_sim/faults", map[string]any{"path": "/broker/api/v1/filetransfer/*", "status": 503}, nil)
	simCall(t, "altinn-broker", "POST", "/_sim/faults", map[string]any{"path": "/broker/api/v1/filetransfer/*/*", "status": 503}, nil)
	t.Cleanup(func() { simCall(t, "altinn-broker", "DELETE", "/_sim/faults", nil, nil) })
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sbd, files, id := arkivmelding(peerOrg, 0)
			ids[i] = id
			d.mustSend(sbd, files)
		})
	}
	wg.Wait()
	time.Sleep(4 * time.Second) // several retries fail
	for _, id := range ids {
		assert.NotContains(t, d.statuses(id), "SENDT")
	}
	simCall(t, "altinn-broker", "DELETE", "/_sim/faults", nil, nil)
	// The broker recovers, but loses the answers to some uploads it took.
	simCall(t, "altinn-broker", "POST", "/_sim/faults", map[string]any{"path": "/broker/api/v1/filetransfer/*/upload",
		"method": "POST", "drop": true, "after": true, "times": 5}, nil)
	for _, id := range ids {
		progress(t, d.waitStatus(id, "LEVERT", 60*time.Second), "SENDT", "LEVERT")
	}
	dl := brokerDeliveries(t)
	for _, id := range ids {
		assert.Equal(t, 1, dl[id], "message %s delivered once", id)
	}
}

// TestDPO_DeadLetter: a broker that never recovers exhausts the retries
// (5 + difi.move.queue.maximum-retry-hours attempts) and the message goes
// to the dead letters as FEIL (channels.md §1.3).
func TestDPO_DeadLetter(t *testing.T) {
	d := startDaemon(t, ownOrg, t.TempDir(), map[string]string{"efm.pipeline.backoff": "100ms", "difi.move.queue.maximum-retry-hours": "1"})
	brokerFault(t, map[string]any{"path": "/broker/api/v1/filetransfer", "method": "POST", "status": 503})
	sbd, files, id := arkivmelding(peerOrg, 0)
	d.mustSend(sbd, files)
	got := d.waitStatus(id, "FEIL", 60*time.Second)
	assert.NotContains(t, got, "SENDT")
	var reqs map[string]int
	simCall(t, "altinn-broker", "GET", "/_sim/requests", nil, &reqs)
	t.Logf("broker requests: %v", reqs)
	code, body := d.do("GET", "/api/conversations/messageId/"+id)
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), "Moved to DLQ")
}

// TestREADME_Curl sends the README's example files, as the curl there does,
// and expects LEVERT within the 30 s the README promises.
func TestREADME_Curl(t *testing.T) {
	d := startDaemon(t, ownOrg, t.TempDir(), nil)
	files := map[string][]byte{}
	for _, name := range []string{"arkivmelding.xml", "vedtak.pdf"} {
		b, err := os.ReadFile(filepath.Join("testdata", "readme", name))
		require.NoError(t, err)
		files[name] = b
	}
	sbd, err := os.ReadFile(filepath.Join("testdata", "readme", "sbd.json"))
	require.NoError(t, err)
	code, body := d.send(sbd, files)
	require.Equal(t, http.StatusOK, code, "body: %s", body)
	var ans struct {
		Header struct {
			DocumentIdentification struct {
				InstanceIdentifier string `json:"instanceIdentifier"`
			} `json:"documentIdentification"`
		} `json:"standardBusinessDocumentHeader"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &ans))
	progress(t, d.waitStatus(ans.Header.DocumentIdentification.InstanceIdentifier, "LEVERT", 30*time.Second), "MOTTATT", "LEVERT")
}

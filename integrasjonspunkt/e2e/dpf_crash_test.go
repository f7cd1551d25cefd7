package e2e_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCrash_DPFSend: the daemon is killed with SIGKILL while it sends
// messages over SvarUt and is started again on the same data. Every message
// the API accepted reaches SvarUt exactly once (by external reference,
// which is the messageId); one whose answer the kill cut off at most once.
func TestCrash_DPFSend(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the daemon and sends 100 messages")
	}
	const n = 100
	c := startChild(t, t.TempDir(), map[string]string{"difi.move.queue.concurrency": "8",
		"efm.pipeline.sweep-interval": "2s", "efm.pipeline.sweep-grace": "10s"})
	ids := make(chan string, n)
	var mu sync.Mutex
	accepted := map[string]bool{}
	var sent sync.WaitGroup
	for range n {
		ids <- ""
	}
	close(ids)
	send := func(d *daemon, stop <-chan struct{}) {
		for range 6 {
			sent.Go(func() {
				for range ids {
					select {
					case <-stop:
						return
					default:
					}
					sbd, files, id := arkivmelding(municipality, 0)
					code, _ := d.send(sbd, files)
					mu.Lock()
					accepted[id] = code == http.StatusOK
					mu.Unlock()
				}
			})
		}
	}
	stop := make(chan struct{})
	send(c.daemon, stop)
	deadline := time.Now().Add(2 * time.Minute)
	for countOf(svarUtDeliveries(t), accepted, &mu) < n/3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	c.kill(t)
	sent.Wait()

	c = c.restart(t)
	send(c.daemon, nil)
	sent.Wait()

	var dl map[string]int
	deadline = time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		dl = svarUtDeliveries(t)
		missing := 0
		// A message posted just before the kill reaches SvarUt before the
		// restarted daemon has looked it up and recorded it, so wait for the
		// status too, not only for the delivery.
		for id, ok := range accepted {
			if ok && (dl[id] == 0 || !slices.Contains(c.statuses(id), "LEVERT")) {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	ok := 0
	for id, acc := range accepted {
		if acc {
			ok++
			assert.Equal(t, 1, dl[id], "accepted message %s reached svarut %d times; the daemon says:\n%s", id, dl[id], c.logOf(id))
			assert.Contains(t, c.statuses(id), "LEVERT", "accepted message %s not LEVERT", id)
		} else {
			assert.LessOrEqual(t, dl[id], 1, "message %s reached svarut more than once", id)
		}
	}
	t.Logf("%d accepted of %d", ok, len(accepted))
	require.GreaterOrEqual(t, ok, n-20, "most sends are answered")
}

func countOf(dl map[string]int, ids map[string]bool, mu *sync.Mutex) int {
	mu.Lock()
	defer mu.Unlock()
	k := 0
	for id := range ids {
		k += dl[id]
	}
	return k
}

// TestCrash_DPFReceive: the receiving daemon is killed with SIGKILL while it
// drains its SvarInn and started again on the same data. Every shipment is
// stored exactly once and acknowledged at SvarInn. Half come from a citizen
// (svarSendesTil.fnr): the number appears in no line of the debug log.
func TestCrash_DPFReceive(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the daemon")
	}
	const n = 40
	simCall(t, "ks-fiks", "DELETE", "/_sim/svarinn/"+levelThree, nil, nil)
	want := map[string]bool{}
	for i := range n {
		var r struct{ ID string }
		in := map[string]any{"tittel": fmt.Sprintf("Søknad %d", i), "svarSendesTilOrg": ownOrg,
			"files": map[string][]byte{"soknad.pdf": fmt.Appendf(nil, "%%PDF-1.4 %d", i)}}
		if i%2 == 1 {
			delete(in, "svarSendesTilOrg")
			in["svarSendesTilFnr"] = citizen
		}
		simCall(t, "ks-fiks", "POST", "/_sim/svarinn/"+levelThree, in, &r)
		want[r.ID] = true
	}
	c := startChildAs(t, levelThree, t.TempDir(), map[string]string{"efm.log.level": "debug"})
	deadline := time.Now().Add(time.Minute)
	for waiting(t, levelThree) > 2*n/3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	c.kill(t)
	left := waiting(t, levelThree)
	require.Positive(t, left, "the kill came too late to cut the receive short")
	c = c.restart(t)
	deadline = time.Now().Add(time.Minute)
	for waiting(t, levelThree) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	require.Zero(t, waiting(t, levelThree), "shipments left at svarinn")
	var failed []any
	simCall(t, "ks-fiks", "GET", "/_sim/svarinn/"+levelThree+"/failed", nil, &failed)
	assert.Empty(t, failed)

	code, body := c.do("GET", "/api/messages/in?size=1000")
	require.Equal(t, http.StatusOK, code, "%s", body)
	var page struct {
		Content []struct {
			Header struct {
				DocumentIdentification struct {
					InstanceIdentifier string `json:"instanceIdentifier"`
				} `json:"documentIdentification"`
			} `json:"standardBusinessDocumentHeader"`
		} `json:"content"`
	}
	require.NoError(t, json.Unmarshal(body, &page))
	got := map[string]int{}
	for _, m := range page.Content {
		got[m.Header.DocumentIdentification.InstanceIdentifier]++
	}
	for id := range want {
		assert.Equal(t, 1, got[id], "shipment %s stored %d times", id, got[id])
	}
	assert.Len(t, got, n, "exactly the shipments, nothing else")
	t.Logf("%d of %d were still at svarinn when the daemon was killed", left, n)
	logs, err := os.ReadFile(filepath.Join(c.dir, "daemon.log"))
	require.NoError(t, err)
	assert.Contains(t, string(logs), "svarinn shipment received", "the scan needs the debug lines")
	assert.NotContains(t, string(logs), citizen, "a person number in the daemon's log")
}

// citizen is a synthetic national identity number (valid check digits).
const citizen = "05050910077"

func waiting(t testing.TB, org string) int {
	var w struct {
		Waiting int `json:"waiting"`
	}
	simCall(t, "ks-fiks", "GET", "/_sim/svarinn/"+org, nil, &w)
	return w.Waiting
}

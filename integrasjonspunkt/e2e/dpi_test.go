package e2e_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

const dpiCitizen = "06068700602" // Digipost mailbox (addressing.md §10)

// digitalLetter is a DPI letter to the citizen that asks for an opening
// receipt: its SBD, files and messageId.
func digitalLetter() (sbd []byte, files map[string][]byte, id string) {
	id = uuid.NewString()
	sbd, _ = json.Marshal(map[string]any{
		"standardBusinessDocumentHeader": map[string]any{
			"headerVersion": "1.0",
			"receiver":      []any{map[string]any{"identifier": map[string]any{"authority": "iso6523-actorid-upis", "value": dpiCitizen}}},
			"documentIdentification": map[string]any{"standard": "urn:no:difi:digitalpost:xsd:digital::digital", "typeVersion": "1.0",
				"type": "digital", "instanceIdentifier": id},
			"businessScope": map[string]any{"scope": []any{map[string]any{"type": "ConversationId",
				"identifier": "urn:no:difi:profile:digitalpost:vedtak:ver1.0", "instanceIdentifier": uuid.NewString()}}},
		},
		"digital": map[string]any{"sikkerhetsnivaa": 4, "hoveddokument": "vedtak.pdf", "tittel": "Vedtak", "spraak": "NO",
			"digitalPostInfo": map[string]any{"virkningsdato": "2024-11-06", "aapningskvittering": true}},
	})
	return sbd, map[string][]byte{"vedtak.pdf": fmt.Appendf(nil, "%%PDF-1.4\n%% vedtak %s\n", id)}, id
}

// dpiReceived is what the DPI simulator's corner 4 got, by messageId, with
// how often a send of it was refused as a duplicate.
func dpiReceived(t testing.TB) (got map[string]bool, duplicates map[string]int) {
	var rep struct {
		Messages []struct {
			MessageID  string `json:"messageId"`
			Problem    string `json:"problem"`
			Duplicates int    `json:"duplicates"`
		} `json:"messages"`
	}
	simCall(t, "dpi", "GET", "/_sim/messages", nil, &rep)
	got, duplicates = map[string]bool{}, map[string]int{}
	for _, m := range rep.Messages {
		got[m.MessageID] = m.Problem == ""
		duplicates[m.MessageID] = m.Duplicates
	}
	return got, duplicates
}

// TestCrash_DPI: the daemon is killed with SIGKILL while it sends DPI
// letters, and again while their receipts come in. Every letter the API
// accepted reaches the mailbox exactly once (no retry ever re-sends what
// the access point already has) and ends LEST: no receipt is lost.
func TestCrash_DPI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the daemon and sends 120 letters")
	}
	const n = 120
	simCall(t, "dpi", "POST", "/_sim/config", map[string]any{"sent": "50ms", "deliver": "500ms", "open": "1500ms"}, nil)
	t.Cleanup(func() {
		simCall(t, "dpi", "POST", "/_sim/config", map[string]any{"sent": "50ms", "deliver": "100ms", "open": "200ms"}, nil)
	})
	c := startChild(t, t.TempDir(), map[string]string{"difi.move.queue.concurrency": "8",
		"efm.pipeline.sweep-interval": "2s", "efm.pipeline.sweep-grace": "5s"})

	var mu sync.Mutex
	var accepted, unsure []string
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var sent sync.WaitGroup
	send := func(d *daemon, stop <-chan struct{}) {
		for range 4 {
			sent.Go(func() {
				for range next {
					select {
					case <-stop:
						return
					default:
					}
					sbd, files, id := digitalLetter()
					code, _ := d.send(sbd, files)
					mu.Lock()
					if code == http.StatusOK {
						accepted = append(accepted, id)
					} else {
						unsure = append(unsure, id)
					}
					mu.Unlock()
				}
			})
		}
	}
	stop := make(chan struct{})
	send(c.daemon, stop)
	mine := func() int {
		got, _ := dpiReceived(t)
		mu.Lock()
		defer mu.Unlock()
		k := 0
		for _, id := range accepted {
			if got[id] {
				k++
			}
		}
		return k
	}
	deadline := time.Now().Add(2 * time.Minute)
	for mine() < n/3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	c.kill(t) // during sending
	sent.Wait()

	c = c.restart(t)
	send(c.daemon, nil)
	sent.Wait()
	t.Logf("%d accepted, %d cut off by the kill", len(accepted), len(unsure))
	require.GreaterOrEqual(t, len(accepted), n-10, "most sends are answered")

	// Kill again once some letters are opened and others still wait for
	// their receipts.
	deadline = time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		lest := 0
		for _, id := range accepted[:20] {
			if slices.Contains(c.statuses(id), "LEST") {
				lest++
			}
		}
		if lest > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.kill(t) // during receipt handling
	c = c.restart(t)

	for _, id := range accepted {
		got := c.waitStatus(id, "LEST", 2*time.Minute)
		require.Contains(t, got, "LEVERT", "message %s: %v\n%s", id, got, c.logOf(id))
		require.NotContains(t, got, "FEIL", "message %s: %v\n%s", id, got, c.logOf(id))
	}
	got, dups := dpiReceived(t)
	for _, id := range accepted {
		require.True(t, got[id], "accepted letter %s never reached the mailbox", id)
		require.Zero(t, dups[id], "letter %s was sent again after the access point had it", id)
	}
	for _, id := range unsure {
		require.Zero(t, dups[id], "letter %s was sent again after the access point had it", id)
	}
}

// BenchmarkDPI_DigitalToSENDT is DPI digital accept → SENDT through the
// sandbox: each iteration sends 60 letters from 8 clients and waits until
// the daemon reports SENDT for all (the webhook). It reports letters per
// second and the daemon's CPU milliseconds per letter (package, CMS, two
// signatures, the registry lookup and the upload included).
func BenchmarkDPI_DigitalToSENDT(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads /proc")
	}
	const batch, clients = 60, 8
	c := startChild(b, b.TempDir(), map[string]string{"difi.move.queue.concurrency": "16", "efm.log.level": "error"})
	e := newEvents()
	subscribe(b, c.daemon, e)
	var total int
	var busy, cpu time.Duration
	for b.Loop() {
		cpu0, start := c.cpu(b), time.Now()
		ids := sendEach(b, c.daemon, batch, clients, digitalLetter)
		if missing := e.wait(ids, "SENDT", 5*time.Minute); missing > 0 {
			b.Fatalf("%d of %d letters did not reach SENDT", missing, batch)
		}
		busy += time.Since(start)
		cpu += c.cpu(b) - cpu0
		total += batch
	}
	b.ReportMetric(float64(total)/busy.Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(total), "cpu-ms/msg")
}

// TestREADME_DPICurl sends the README's DPI letters, digital and print, as
// its curl commands do, and follows them to the statuses the README shows.
func TestREADME_DPICurl(t *testing.T) {
	d := startDaemon(t, ownOrg, t.TempDir(), nil)
	pdf, err := os.ReadFile(filepath.Join("testdata", "readme", "vedtak.pdf"))
	require.NoError(t, err)
	for file, want := range map[string][]string{
		"dpi-digital.json": {"OPPRETTET", "SENDT", "MOTTATT", "LEVERT", "LEST"},
		"dpi-print.json":   {"OPPRETTET", "SENDT", "MOTTATT", "LEVERT"},
	} {
		sbd, err := os.ReadFile(filepath.Join("testdata", "readme", file))
		require.NoError(t, err)
		code, body := d.send(sbd, map[string][]byte{"vedtak.pdf": pdf})
		require.Equal(t, http.StatusOK, code, "%s: %s", file, body)
		var ans struct {
			Header struct {
				DocumentIdentification struct {
					InstanceIdentifier string `json:"instanceIdentifier"`
				} `json:"documentIdentification"`
			} `json:"standardBusinessDocumentHeader"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &ans))
		got := d.waitStatus(ans.Header.DocumentIdentification.InstanceIdentifier, want[len(want)-1], 30*time.Second)
		require.Equal(t, want, got, file)
	}
}

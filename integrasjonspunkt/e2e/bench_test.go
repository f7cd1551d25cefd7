package e2e_test

import (
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/internal/procstat"
)

// events counts the status webhooks a daemon pushes: when each message got
// each status, as a client system would learn it.
type events struct {
	mu   sync.Mutex
	at   map[string]map[string]time.Time // messageId → status → arrival
	cond *sync.Cond
}

func newEvents() *events {
	e := &events{at: map[string]map[string]time.Time{}}
	e.cond = sync.NewCond(&e.mu)
	return e
}

func (e *events) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev struct {
		MessageID string `json:"messageId"`
		Status    string `json:"status"`
	}
	if json.NewDecoder(r.Body).Decode(&ev) == nil && ev.MessageID != "" {
		now := time.Now()
		e.mu.Lock()
		if e.at[ev.MessageID] == nil {
			e.at[ev.MessageID] = map[string]time.Time{}
		}
		e.at[ev.MessageID][ev.Status] = now
		e.cond.Broadcast()
		e.mu.Unlock()
	}
	w.WriteHeader(http.StatusOK)
}

// wait blocks until every id has status, or the deadline passes; it returns
// how many did not make it.
func (e *events) wait(ids []string, status string, within time.Duration) int {
	deadline := time.Now().Add(within)
	timer := time.AfterFunc(within, func() { e.mu.Lock(); e.cond.Broadcast(); e.mu.Unlock() })
	defer timer.Stop()
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		missing := 0
		for _, id := range ids {
			if _, ok := e.at[id][status]; !ok {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			return missing
		}
		e.cond.Wait()
	}
}

func (e *events) time(id, status string) (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.at[id][status]
	return t, ok
}

// subscribe registers a webhook for every outgoing status.
func subscribe(t testing.TB, d *daemon, e *events) {
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	body := `{"name": "bench", "pushEndpoint": "` + srv.URL + `", "resource": "messages", "event": "status", "filter": "direction=OUTGOING"}`
	res, err := http.Post(d.base+"/api/subscriptions", "application/json", stringsReader(body))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
}

// daemonProfile names a file for a CPU profile of the daemon under a
// benchmark (the child's own, not the test binary's, which runs the
// simulators): go test -bench DPO -args -daemon.cpuprofile=/tmp/d.prof.
var daemonProfile = flag.String("daemon.cpuprofile", "", "write the benchmarked daemon's CPU profile to `file`")

// benchDaemon is the production build as a child process, against the
// sandbox's broker with peers that answer MOTTATT and LEVERT only.
func benchDaemon(b *testing.B) (*child, *events) {
	brokerSchedule(b, map[string]any{"kvitteringType": "none", "drop": []string{}})
	if *daemonProfile != "" {
		b.Setenv("EFM_CPUPROFILE", *daemonProfile)
	}
	c := startChild(b, b.TempDir(), map[string]string{"difi.move.queue.concurrency": "32", "efm.log.level": "error"})
	e := newEvents()
	subscribe(b, c.daemon, e)
	return c, e
}

// BenchmarkDPO_Throughput is sustained accept-to-LEVERT through the DPO
// simulator: each iteration sends a batch of 200 messages from 16 clients
// and waits until the daemon reports LEVERT for all of them.
func BenchmarkDPO_Throughput(b *testing.B) {
	const batch, clients = 200, 16
	c, e := benchDaemon(b)
	var peak int64
	var total int
	var busy, cpu time.Duration
	b.ReportAllocs()
	for b.Loop() {
		start, cpu0 := time.Now(), c.cpu(b)
		ids := sendMany(b, c.daemon, batch, clients, 0)
		if missing := e.wait(ids, "LEVERT", 5*time.Minute); missing > 0 {
			b.Fatalf("%d of %d messages did not reach LEVERT", missing, batch)
		}
		busy += time.Since(start)
		cpu += c.cpu(b) - cpu0
		total += batch
		peak = max(peak, c.rss(b))
	}
	b.ReportMetric(float64(total)/busy.Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(total), "daemon-cpu-ms/msg")
	b.ReportMetric(float64(peak)/(1<<20), "rss-MB")
}

// BenchmarkDPO_Latency100 sends at a steady 100 messages/s for 5 s per
// iteration and reports the accept-to-SENDT latency a client sees (the
// 200 of the send to the SENDT webhook).
func BenchmarkDPO_Latency100(b *testing.B) {
	const rate, seconds = 100, 5
	c, e := benchDaemon(b)
	var lat []time.Duration
	var peak int64
	for b.Loop() {
		accepted := map[string]time.Time{}
		var mu sync.Mutex
		tick := time.NewTicker(time.Second / rate)
		var wg sync.WaitGroup
		for range rate * seconds {
			<-tick.C
			wg.Go(func() {
				sbd, files, id := arkivmelding(peerOrg, 0)
				code, body := c.send(sbd, files)
				if code != http.StatusOK {
					b.Errorf("send: %d %s", code, body)
					return
				}
				mu.Lock()
				accepted[id] = time.Now()
				mu.Unlock()
			})
		}
		tick.Stop()
		wg.Wait()
		peak = max(peak, c.rss(b))
		ids := make([]string, 0, len(accepted))
		for id := range accepted {
			ids = append(ids, id)
		}
		if missing := e.wait(ids, "SENDT", time.Minute); missing > 0 {
			b.Fatalf("%d messages not SENDT", missing)
		}
		for id, at := range accepted {
			s, _ := e.time(id, "SENDT")
			lat = append(lat, s.Sub(at))
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(peak)/(1<<20), "rss-MB")
}

// sendMany sends n archive messages from clients goroutines and returns
// their ids.
func sendMany(t testing.TB, d *daemon, n, clients int, _ time.Duration) []string {
	return sendEach(t, d, n, clients, func() ([]byte, map[string][]byte, string) { return arkivmelding(peerOrg, 0) })
}

// sendEach sends n messages that build makes from clients goroutines and
// returns their ids.
func sendEach(t testing.TB, d *daemon, n, clients int, build func() ([]byte, map[string][]byte, string)) []string {
	ids := make([]string, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for i := range next {
				sbd, files, id := build()
				if code, body := d.send(sbd, files); code != http.StatusOK {
					t.Errorf("send: %d %s", code, body)
				}
				ids[i] = id
			}
		})
	}
	wg.Wait()
	return ids
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

// cpu is the CPU time (user and system) the daemon's process has used so
// far: the child's alone, so the simulators, which run in the test binary,
// are not counted. Its resolution is the clock tick (10 ms); a benchmark
// iteration uses seconds.
func (c *child) cpu(t testing.TB) time.Duration {
	t.Helper()
	if runtime.GOOS != "linux" {
		return 0
	}
	d, err := procstat.CPU(c.cmd.Process.Pid)
	require.NoError(t, err)
	return d
}

// BenchmarkDPO_Drain measures the pipeline alone, without the local API's
// accept path: 1,000 messages are accepted while the broker refuses
// everything, then the broker comes back and the benchmark times the
// backlog from the first retry to LEVERT for all.
func BenchmarkDPO_Drain(b *testing.B) {
	const n = 1000
	brokerSchedule(b, map[string]any{"kvitteringType": "none", "drop": []string{}})
	c := startChild(b, b.TempDir(), map[string]string{"difi.move.queue.concurrency": "32", "efm.log.level": "error",
		"efm.pipeline.backoff": "1s"})
	e := newEvents()
	subscribe(b, c.daemon, e)
	var rate float64
	var cpu time.Duration
	for b.Loop() {
		simCall(b, "altinn-broker", "POST", "/_sim/faults", map[string]any{"path": "/broker/api/v1/filetransfer", "method": "POST", "status": 503}, nil)
		ids := sendMany(b, c.daemon, n, 16, 0)
		simCall(b, "altinn-broker", "DELETE", "/_sim/faults", nil, nil)
		start, cpu0 := time.Now(), c.cpu(b)
		if missing := e.wait(ids, "LEVERT", 5*time.Minute); missing > 0 {
			b.Fatalf("%d of %d messages did not reach LEVERT", missing, n)
		}
		rate = float64(n) / time.Since(start).Seconds()
		cpu = c.cpu(b) - cpu0
	}
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(float64(cpu.Microseconds())/1000/n, "daemon-cpu-ms/msg")
	b.ReportMetric(float64(c.rss(b))/(1<<20), "rss-MB")
}

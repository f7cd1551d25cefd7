package pakkesporing_test

import (
	"bytes"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/pakkesporing"
	"github.com/efm-go/efm/pakkesporing/pakkesporingtest"
)

// benchBatches builds gzip NDJSON batches of 500 events the shipper's way:
// 100 messages with 5 statuses each, so the projection is exercised too.
func benchBatches(b *testing.B, n int) [][]byte {
	sb := newBuilder(b, senderOrg, testNow)
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	out := make([][]byte, 0, n)
	for range n {
		var lines [][]byte
		for range 100 {
			m := newMessage()
			for j, st := range []events.Status{events.Opprettet, events.Sendt, events.Mottatt, events.Levert, events.Lest} {
				lines = append(lines, m.sent(b, sb, st, at.Add(time.Duration(j)*time.Second)))
			}
			at = at.Add(time.Second)
		}
		out = append(out, gz(b, lines...))
	}
	return out
}

// cpuTime is the process's user+system CPU time so far. Wall-clock events/s
// swing with whatever else runs on a shared machine; CPU per event does not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func postRaw(b *testing.B, c *http.Client, url string, body []byte) {
	req, err := http.NewRequest(http.MethodPost, url+"/v1/events", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Encoding", "gzip")
	res, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b.Fatalf("status %d", res.StatusCode)
	}
}

// BenchmarkIngest is must-show 6: events/s into pakkesporing over mutual
// TLS, 500-event gzip batches from one installation at a time.
func BenchmarkIngest(b *testing.B) {
	ps := pakkesporingtest.New(b, pakkesporingtest.Options{Config: pakkesporing.Config{Now: testNow}})
	c := ps.Client(b, senderOrg)
	batches := benchBatches(b, 40)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	var cpu time.Duration
	for b.Loop() {
		c0 := cpuTime()
		if i == len(batches) {
			b.StopTimer()
			batches = append(batches, benchBatches(b, 20)...)
			b.StartTimer()
		}
		postRaw(b, c, ps.URL, batches[i])
		i++
		cpu += cpuTime() - c0
	}
	b.ReportMetric(float64(i*500)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(i*500), "cpu-µs/event")
}

// BenchmarkIngestParallel has four installations ship at once: the single
// writer serialises the inserts while TLS, gunzip, decoding and validation
// overlap.
func BenchmarkIngestParallel(b *testing.B) {
	ps := pakkesporingtest.New(b, pakkesporingtest.Options{Config: pakkesporing.Config{Now: testNow}})
	clients := make([]*http.Client, 4)
	for i := range clients {
		clients[i] = ps.Client(b, senderOrg)
	}
	batches := benchBatches(b, 40)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	var cpu time.Duration
	for b.Loop() {
		c0 := cpuTime()
		if i+len(clients) > len(batches) {
			b.StopTimer()
			batches = append(batches, benchBatches(b, 20)...)
			b.StartTimer()
		}
		var wg sync.WaitGroup
		for k, c := range clients {
			body := batches[i+k]
			wg.Go(func() { postRaw(b, c, ps.URL, body) })
		}
		wg.Wait()
		i += len(clients)
		cpu += cpuTime() - c0
	}
	b.ReportMetric(float64(i*500)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(i*500), "cpu-µs/event")
}

package e2e_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkGroup_Throughput sends batches of 150 messages from 12 clients
// spread over 1, 2 and 3 daemons sharing one PostgreSQL database and a
// 3-node JetStream cluster (replicas 3), and reports the accepted messages
// per second (the API's 200s), the accept-to-LEVERT rate and its median
// latency. All of it runs on the one test machine: more daemons add no
// cores, so this measures what the group costs, not how it scales.
func BenchmarkGroup_Throughput(b *testing.B) {
	for _, daemons := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("daemons=%d", daemons), func(b *testing.B) {
			const batch, clients = 150, 12
			brokerSchedule(b, map[string]any{"kvitteringType": "none", "drop": []string{}})
			g := startGroup(b, daemons, map[string]string{"difi.move.queue.concurrency": "16", "efm.log.level": "error"})
			e := newEvents()
			subscribe(b, g.daemons[0].daemon, e)
			var accepted, delivered time.Duration
			var lat []time.Duration
			total := 0
			for b.Loop() {
				start := time.Now()
				at := map[string]time.Time{}
				var mu sync.Mutex
				next := make(chan int, batch)
				for i := range batch {
					next <- i
				}
				close(next)
				var wg sync.WaitGroup
				for c := range clients {
					d := g.daemons[c%daemons]
					wg.Go(func() {
						for range next {
							sbd, files, id := arkivmelding(peerOrg, 0)
							if code, body := d.send(sbd, files); code != http.StatusOK {
								b.Errorf("send: %d %s", code, body)
								continue
							}
							mu.Lock()
							at[id] = time.Now()
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				accepted += time.Since(start)
				ids := make([]string, 0, len(at))
				for id := range at {
					ids = append(ids, id)
				}
				if missing := e.wait(ids, "LEVERT", 5*time.Minute); missing > 0 {
					b.Fatalf("%d of %d messages did not reach LEVERT", missing, batch)
				}
				delivered += time.Since(start)
				for id, a := range at {
					l, _ := e.time(id, "LEVERT")
					lat = append(lat, l.Sub(a))
				}
				total += batch
			}
			slices.Sort(lat)
			b.ReportMetric(float64(total)/accepted.Seconds(), "accepted-msgs/s")
			b.ReportMetric(float64(total)/delivered.Seconds(), "levert-msgs/s")
			b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-accept-to-LEVERT-ms")
		})
	}
}

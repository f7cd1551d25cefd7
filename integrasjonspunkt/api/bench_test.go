package api_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// benchClients is the number of concurrent clients of the accept benchmark
// (issue #3: 16 clients, a 10 KB message).
const benchClients = 16

var benchResults sync.Map // sub-benchmark name → messages per second

// BenchmarkMultipartAccept measures the one-step send (E5) of a 10 KB
// message with 16 concurrent clients against the daemon, and the same body
// against a bare net/http handler that only reads it, in the same run. The
// ratio is printed after both ran.
func BenchmarkMultipartAccept(b *testing.B) {
	d := startDaemon(b, nil)
	body, ct := multipartBody(b, avtaltSBD(dpoOrg), part{"Vedlegg", "vedlegg.pdf", "application/pdf", bytes.Repeat([]byte("x"), 10<<10)})
	payload := body.Bytes()
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	}))
	defer bare.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: benchClients * 2}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	run := func(name, url string) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism((benchClients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			var failed atomic.Int64
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := client.Post(url, ct, bytes.NewReader(payload))
					if err != nil {
						failed.Add(1)
						continue
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						failed.Add(1)
					}
				}
			})
			el := time.Since(start)
			if failed.Load() > 0 {
				b.Fatalf("%d requests failed", failed.Load())
			}
			rate := float64(b.N) / el.Seconds()
			b.ReportMetric(rate, "msgs/s")
			benchResults.Store(name, rate)
		})
	}
	run("daemon", d.base+"/api/messages/out/multipart")
	run("bare", bare.URL)
	dr, ok1 := benchResults.Load("daemon")
	br, ok2 := benchResults.Load("bare")
	if ok1 && ok2 {
		fmt.Printf("multipart accept, %d clients, 10 KB: daemon %.0f msgs/s, bare net/http %.0f msgs/s, ratio %.1f %%\n",
			benchClients, dr.(float64), br.(float64), 100*dr.(float64)/br.(float64))
	}
}

// rss reads the resident set size of this process (Linux).
func rss(tb testing.TB) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Skip("resident memory is read from /proc: Linux only")
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(tb, err)
			return kb << 10
		}
	}
	tb.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// zeros is an endless reader that costs no memory.
type zeros struct{ n, size int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n >= z.size {
		return 0, io.EOF
	}
	n := int64(len(p))
	if rem := z.size - z.n; rem < n {
		n = rem
	}
	clear(p[:n])
	z.n += n
	return int(n), nil
}

// uploadRSSGrowth streams size bytes through E3 into a DPO message of a
// daemon in this process and returns the peak growth of resident memory.
func uploadRSSGrowth(tb testing.TB, d *daemon, size int64) int64 {
	_, id := d.create(avtaltSBD(dpoOrg))
	runtime.GC()
	base := rss(tb)
	var peak atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if r := rss(tb); r > peak.Load() {
				peak.Store(r)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	req, err := http.NewRequest("PUT", d.base+"/api/messages/out/"+id, &zeros{size: size})
	require.NoError(tb, err)
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Disposition", "attachment; name=Stor; filename=stor.bin")
	res, err := http.DefaultClient.Do(req)
	require.NoError(tb, err)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	close(stop)
	<-done
	require.Equal(tb, 200, res.StatusCode, "body: %s", b)
	m, err := d.core.Outgoing(tb.Context(), id)
	require.NoError(tb, err)
	require.Len(tb, m.Attachments, 1)
	require.Equal(tb, size, m.Attachments[0].Size)
	return peak.Load() - base
}

// TestUpload1GB_MemoryBounded streams 1 GiB (the DPO limit) through E3 over
// loopback into the daemon in this process and requires resident memory to
// grow by less than 64 MB (issue #3). It takes a few seconds and writes 1 GiB
// to the temporary directory, so -short skips it.
func TestUpload1GB_MemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 1 GiB to disk")
	}
	d := startDaemon(t, nil)
	growth := uploadRSSGrowth(t, d, 1<<30)
	t.Logf("resident memory growth during a 1 GiB upload: %.1f MB", float64(growth)/(1<<20))
	require.Less(t, growth, int64(64<<20))
}

// BenchmarkUpload1GB reports the resident memory growth and throughput of a
// 1 GiB upload.
func BenchmarkUpload1GB(b *testing.B) {
	d := startDaemon(b, nil)
	for b.Loop() {
		start := time.Now()
		growth := uploadRSSGrowth(b, d, 1<<30)
		b.ReportMetric(float64(growth)/(1<<20), "rss-growth-MB")
		b.ReportMetric(float64(1<<30)/(1<<20)/time.Since(start).Seconds(), "MB/s")
	}
}

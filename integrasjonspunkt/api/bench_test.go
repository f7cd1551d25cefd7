package api_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/efm-go/efm/internal/apitest"
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

// uploadRSSGrowth streams size incompressible bytes (zeros would let any
// compression on the way hide the cost) through E3 into a DPO message of a
// daemon in this process and returns the peak growth of resident memory.
func uploadRSSGrowth(tb testing.TB, d *daemon, size int64) int64 {
	_, id := d.create(avtaltSBD(dpoOrg))
	runtime.GC()
	base := apitest.Resident(tb)
	var peak atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if r := apitest.Resident(tb); r > peak.Load() {
				peak.Store(r)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	req, err := http.NewRequest("PUT", d.base+"/api/messages/out/"+id, newMeteredBody(size))
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
	atts, err := d.core.OutgoingAttachments(tb.Context(), id)
	require.NoError(tb, err)
	require.Len(tb, atts, 1)
	require.Equal(tb, size, atts[0].Size)
	return peak.Load() - base
}

// TestUpload1GB_MemoryBounded streams 1 GiB (the DPO limit) through E3 over
// loopback into the daemon in this process and requires resident memory to
// grow by less than 64 MB (issue #3). It takes a few seconds and writes 1 GiB
// to the temporary directory, so -short skips it.
func TestUpload1GB_MemoryBounded(t *testing.T) {
	if testing.Short() || apitest.Race {
		t.Skip("streams 1 GiB to disk: not with -short, and without the race detector (make test runs it so)")
	}
	d := startDaemon(t, nil)
	growth := uploadRSSGrowth(t, d, 1<<30)
	t.Logf("resident memory growth during a 1 GiB upload: %.1f MB", float64(growth)/(1<<20))
	require.Less(t, growth, int64(64<<20))
}

// BenchmarkUpload1GB reports the resident memory growth and throughput of a
// 1 GiB upload, and beside it, alternating in the same run, the disk's own
// speed for the same bytes: dd writing them with conv=fsync into the same
// file system. Both get incompressible bytes: storage that skips zero
// blocks makes zeros look several times faster than a real file. The
// medians and their ratio are printed at the end.
func BenchmarkUpload1GB(b *testing.B) {
	const size = 1 << 30
	dd, err := exec.LookPath("dd")
	if err != nil {
		b.Skip("no dd")
	}
	d := startDaemon(b, nil)
	out := filepath.Join(b.TempDir(), "dd.bin")
	var put, disk []float64
	for b.Loop() {
		start := time.Now()
		growth := uploadRSSGrowth(b, d, size)
		put = append(put, time.Since(start).Seconds())
		b.ReportMetric(float64(growth)/(1<<20), "rss-growth-MB")

		start = time.Now()
		cmd := exec.Command(dd, "of="+out, "bs=1M", "count=1024", "iflag=fullblock", "conv=fsync")
		cmd.Stdin = apitest.Incompressible(size, 2)
		o, err := cmd.CombinedOutput()
		require.NoError(b, err, "%s", o)
		disk = append(disk, time.Since(start).Seconds())
		require.NoError(b, os.Remove(out))
	}
	// Each PUT is compared with the dd right after it: on a shared disk the
	// pair sees the same load, where whole series drift apart.
	ratios := make([]float64, len(put))
	for i := range put {
		ratios[i] = put[i] / disk[i]
	}
	mp, md := median(put), median(disk)
	b.ReportMetric(size/(1<<20)/mp, "MB/s")
	b.ReportMetric(size/(1<<20)/md, "dd-MB/s")
	b.ReportMetric(median(ratios), "put/dd")
	fmt.Printf("1 GiB PUT, medians of %d: daemon %.2f s (%.0f MB/s), dd conv=fsync %.2f s (%.0f MB/s); PUT/dd time %.2f (%.2f–%.2f)\n",
		len(put), mp, size/(1<<20)/mp, md, size/(1<<20)/md, median(ratios), slices.Min(ratios), slices.Max(ratios))
}

func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}

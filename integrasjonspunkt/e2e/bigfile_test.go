package e2e_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/efm-go/efm/internal/apitest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// diskBytes is what the daemon (dir) and the simulators' spool files in
// the temporary directory take on disk.
func diskBytes(dir string) int64 {
	var n int64
	add := func(path string, d fs.DirEntry) {
		if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			add(path, d)
		}
		return nil
	})
	entries, _ := os.ReadDir(os.TempDir())
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "dposim-") || strings.HasPrefix(e.Name(), "dpfsim-") || strings.HasPrefix(e.Name(), "efm-sandbox-peer-") {
			add(e.Name(), e)
		}
	}
	return n
}

// peaks samples resident memory and disk use until stop is called.
type peaks struct {
	rss, disk atomic.Int64
	stop      func()
}

func watch(t testing.TB, dir string) *peaks {
	p := &peaks{}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if r := apitest.Resident(t); r > p.rss.Load() {
				p.rss.Store(r)
			}
			if d := diskBytes(dir); d > p.disk.Load() {
				p.disk.Store(d)
			}
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	p.stop = func() { once.Do(func() { close(quit); <-done }) }
	return p
}

// TestDPO_1GiBAttachment delivers a 1 GiB incompressible attachment over
// DPO end to end (issue 18): uploaded through E3, packed (ASiC-E, CAdES),
// CMS-encrypted, uploaded to the broker simulator over HTTP, decrypted and
// verified by the simulated peer, whose receipts bring it to LEVERT. The
// process's resident memory (daemon and simulators) must grow by less than
// 64 MB. It writes several GiB to the temporary directory; -short skips it.
func TestDPO_1GiBAttachment(t *testing.T) {
	if testing.Short() || apitest.Race {
		t.Skip("sends 1 GiB: not with -short, and without the race detector (make test runs it so)")
	}
	dir := t.TempDir()
	d := startDaemon(t, ownOrg, dir, nil)
	sbd, files, id := arkivmelding(peerOrg, 0)
	// The channel's limit, 1 GiB, is the sum of the attachments.
	size := int64(1<<30 - len(files["arkivmelding.xml"]))

	start := time.Now()
	runtime.GC()
	base := apitest.Resident(t)
	p := watch(t, dir)
	defer p.stop()

	d.sendBig(sbd, id, files["arkivmelding.xml"], "vedtak.pdf", apitest.Incompressible(size, 1), size)
	uploaded := time.Since(start)

	var rep struct {
		PeerErrors map[string]string `json:"peerErrors"`
	}
	deadline := time.Now().Add(3 * time.Minute)
	for !slices.Contains(d.statuses(id), "LEVERT") {
		simCall(t, "altinn-broker", "GET", "/_sim/deliveries", nil, &rep)
		require.Empty(t, rep.PeerErrors[id], "the peer decrypted and verified the package")
		require.True(t, time.Now().Before(deadline), "no LEVERT within 3 minutes: %v", d.statuses(id))
		time.Sleep(200 * time.Millisecond)
	}
	got := d.statuses(id)
	elapsed := time.Since(start)
	p.stop()
	progress(t, got, "MOTTATT", "LEVERT")
	assert.Equal(t, 1, brokerDeliveries(t)[id], "published once")

	growth := p.rss.Load() - base
	t.Logf("1 GiB over DPO: upload %.1f s, upload to LEVERT %.1f s, total %.1f s; resident memory %.1f MB before, peak growth %.1f MB; peak disk %.2f GiB",
		uploaded.Seconds(), (elapsed - uploaded).Seconds(), elapsed.Seconds(), float64(base)/(1<<20), float64(growth)/(1<<20),
		float64(p.disk.Load())/(1<<30))
	assert.Less(t, growth, int64(64<<20), "resident memory growth")
}

package e2e_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/internal/apitest"
)

// TestDPF_100MiBOverREST delivers a 100 MiB incompressible document over
// DPF REST end to end (issue 18): uploaded through E3, CMS-encrypted by the
// daemon, streamed to the KS simulator, which spools it to disk and
// decrypts it from there. It is more than the 64 MiB the simulator once
// held in memory and cut at, so SvarUt must record the document whole
// (size and SHA-256), and the process's resident memory (daemon and
// simulators) must not grow by the document's size. Without the race
// detector (make test runs it so).
func TestDPF_100MiBOverREST(t *testing.T) {
	if testing.Short() || apitest.Race {
		t.Skip("sends 100 MiB: not with -short, and without the race detector (make test runs it so)")
	}
	const size = 100 << 20
	t.Cleanup(func() { simCall(t, "ks-fiks", "POST", "/_sim/reset", nil, nil) }) // frees the spooled document
	dir := t.TempDir()
	d := startDaemon(t, ownOrg, dir, nil)
	sbd, files, id := arkivmelding(municipality, 0)

	runtime.GC()
	base := apitest.Resident(t)
	p := watch(t, dir)
	defer p.stop()
	d.sendBig(sbd, id, files["arkivmelding.xml"], "vedtak.pdf", apitest.Incompressible(size, 5), size)
	got := d.waitStatus(id, "LEVERT", 2*time.Minute)
	p.stop()
	progress(t, got, "OPPRETTET", "SENDT", "LEVERT")

	type shipment struct {
		EksternRef string `json:"eksternRef"`
		Documents  []struct {
			Filnavn string `json:"filnavn"`
			Size    int64  `json:"size"`
			SHA256  string `json:"sha256"`
		} `json:"documents"`
	}
	var shipments []shipment
	simCall(t, "ks-fiks", "GET", "/_sim/shipments", nil, &shipments)
	i := slices.IndexFunc(shipments, func(s shipment) bool { return s.EksternRef == id })
	require.GreaterOrEqual(t, i, 0, "SvarUt has no shipment %s", id)
	h := sha256.New()
	_, _ = io.Copy(h, apitest.Incompressible(size, 5))
	var found bool
	for _, doc := range shipments[i].Documents {
		if doc.Filnavn == "vedtak.pdf" {
			found = true
			assert.EqualValues(t, size, doc.Size)
			assert.Equal(t, hex.EncodeToString(h.Sum(nil)), doc.SHA256, "SvarUt decrypted the document whole")
		}
	}
	assert.True(t, found, "vedtak.pdf is among the documents")
	growth := p.rss.Load() - base
	t.Logf("100 MiB over DPF REST: resident memory %.1f MB before, peak growth %.1f MB; peak disk %.0f MB",
		float64(base)/(1<<20), float64(growth)/(1<<20), float64(p.disk.Load())/(1<<20))
	assert.Less(t, growth, int64(48<<20), "resident memory growth")
}

// sendBig creates a message, uploads its arkivmelding and one big
// document through E3, streamed with its length, and sends it.
func (d *daemon) sendBig(sbd []byte, id string, arkivmelding []byte, name string, body io.Reader, n int64) {
	d.t.Helper()
	res, err := http.Post(d.base+"/api/messages/out", "application/json", bytes.NewReader(sbd))
	require.NoError(d.t, err)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(d.t, http.StatusOK, res.StatusCode, "create: %s", b)
	d.put(id, "arkivmelding.xml", bytes.NewReader(arkivmelding), int64(len(arkivmelding)))
	d.put(id, name, body, n)
	res, err = http.Post(d.base+"/api/messages/out/"+id, "application/json", nil)
	require.NoError(d.t, err)
	res.Body.Close()
	require.Equal(d.t, http.StatusOK, res.StatusCode)
}

// put uploads one attachment through E3, streamed with its length.
func (d *daemon) put(id, name string, body io.Reader, n int64) {
	d.t.Helper()
	req, err := http.NewRequest("PUT", d.base+"/api/messages/out/"+id, body)
	require.NoError(d.t, err)
	req.ContentLength = n
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Disposition", "attachment; name="+name+"; filename="+name)
	res, err := http.DefaultClient.Do(req)
	require.NoError(d.t, err)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(d.t, http.StatusOK, res.StatusCode, "upload %s: %s", name, b)
}

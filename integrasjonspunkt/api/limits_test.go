package api_test

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"maps"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/efm-go/efm/internal/apitest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// meteredBody is an incompressible body of size bytes that counts what was
// taken from it; it hides its length, so the client sends it chunked unless
// told the length.
type meteredBody struct {
	src  io.Reader
	read atomic.Int64
}

func newMeteredBody(size int64) *meteredBody {
	return &meteredBody{src: apitest.Incompressible(size, 7)}
}

func (m *meteredBody) Read(p []byte) (int, error) {
	n, err := m.src.Read(p)
	m.read.Add(int64(n))
	return n, err
}

// send does one request with body; length -1 sends it chunked, expect adds
// Expect: 100-continue (the client then waits for the server's go-ahead).
func (d *daemon) send(method, path string, body io.Reader, length int64, expect bool, hdr ...string) resp {
	d.t.Helper()
	req, err := http.NewRequest(method, d.base+path, body)
	require.NoError(d.t, err)
	req.ContentLength = length
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	if expect {
		req.Header.Set("Expect", "100-continue")
		tr.ExpectContinueTimeout = time.Minute
	}
	res, err := (&http.Client{Transport: tr}).Do(req)
	require.NoError(d.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(d.t, err)
	return resp{Code: res.StatusCode, Header: res.Header, Body: b}
}

// storedPayloads counts the files in the daemon's payload store.
func storedPayloads(t *testing.T, d *daemon) int {
	n := 0
	err := filepath.WalkDir(filepath.Join(d.dir, "payload"), func(_ string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			n++
		}
		return err
	})
	require.NoError(t, err)
	return n
}

func (d *daemon) attachments(t *testing.T, id string) int {
	atts, err := d.core.OutgoingAttachments(context.Background(), id)
	require.NoError(t, err)
	return len(atts)
}

// TestUpload_DeclaredOverLimit: an E3 body whose Content-Length already
// exceeds what the channel has left is refused with 400
// MaxFileSizeExceededException before any of it is read or stored; a
// client that waits for 100 Continue never sends it.
func TestUpload_DeclaredOverLimit(t *testing.T) {
	d := startDaemon(t, nil)
	_, id := d.create(avtaltSBD(dpoOrg))
	files := storedPayloads(t, d)
	const size = 1<<30 + 1 // DPO's limit is 1 GiB
	for _, expect := range []bool{true, false} {
		body := newMeteredBody(size)
		r := d.send("PUT", "/api/messages/out/"+id, body, size, expect,
			"Content-Type", "application/octet-stream", "Content-Disposition", "attachment; name=Stor; filename=stor.bin")
		m := requireError(t, r, 400, "MaxFileSizeExceededException")
		assert.Contains(t, m["message"], "1024 MB for DPO")
		if expect {
			assert.Zero(t, body.read.Load(), "the body was never sent")
		} else {
			// What the client had written into the sockets before the answer.
			assert.Less(t, body.read.Load(), int64(64<<20), "the daemon answered without taking the body")
		}
		assert.Equal(t, files, storedPayloads(t, d), "nothing stored")
		assert.Zero(t, d.attachments(t, id), "no attachment row")
	}

	// The limit is the message's total: what is attached counts.
	s := newSBD("publisering", "urn:no:difi:einnsyn:xsd::publisering", einnsynProc, "0192:"+dpeOrg, map[string]any{"orgnr": ownOrg})
	_, eid := d.create(s)
	r := d.put("/api/messages/out/"+eid, bytes.Repeat([]byte("a"), 1<<20), "Content-Type", "application/json", "Content-Disposition", cd("a", "a.json"))
	require.Equal(t, 200, r.Code, "body: %s", r.Body)
	body := newMeteredBody(1<<20 + 1)
	r = d.send("PUT", "/api/messages/out/"+eid, body, 1<<20+1, true,
		"Content-Type", "application/json", "Content-Disposition", cd("b", "b.json"))
	requireError(t, r, 400, "MaxFileSizeExceededException")
	assert.Zero(t, body.read.Load())
	assert.Equal(t, 1, d.attachments(t, eid))
	body = newMeteredBody(1 << 20)
	r = d.send("PUT", "/api/messages/out/"+eid, body, 1<<20, true,
		"Content-Type", "application/json", "Content-Disposition", cd("b", "b.json"))
	require.Equal(t, 200, r.Code, "exactly at the limit is allowed: %s", r.Body)
}

// TestUpload_ChunkedOverLimit: an E3 body without a Content-Length is read
// up to the channel's limit and no further: past it the answer is the
// same 400, and neither the partial file nor a row remains.
func TestUpload_ChunkedOverLimit(t *testing.T) {
	d := startDaemon(t, nil)
	s := newSBD("publisering", "urn:no:difi:einnsyn:xsd::publisering", einnsynProc, "0192:"+dpeOrg, map[string]any{"orgnr": ownOrg})
	_, id := d.create(s)
	files := storedPayloads(t, d)
	body := newMeteredBody(1 << 30)
	r := d.send("PUT", "/api/messages/out/"+id, body, -1, false,
		"Content-Type", "application/json", "Content-Disposition", cd("a", "a.json"))
	requireError(t, r, 400, "MaxFileSizeExceededException")
	assert.Less(t, body.read.Load(), int64(64<<20), "cut off near the 2 MB limit, not read to its end")
	assert.Equal(t, files, storedPayloads(t, d), "the partial file is removed")
	assert.Zero(t, d.attachments(t, id))

	// Under the limit, chunked works as before.
	r = d.send("PUT", "/api/messages/out/"+id, newMeteredBody(1<<20), -1, false,
		"Content-Type", "application/json", "Content-Disposition", cd("a", "a.json"))
	require.Equal(t, 200, r.Code, "body: %s", r.Body)
	assert.Equal(t, 1, d.attachments(t, id))
}

// TestMultipart_DeclaredOverCap: an E5 request declared larger than the
// multipart cap is answered 413 at once and stages nothing; a chunked one
// is cut off at the cap with the same answer.
func TestMultipart_DeclaredOverCap(t *testing.T) {
	d := startDaemon(t, map[string]string{"efm.http.max-multipart-size": "1MB"})
	files := storedPayloads(t, d)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="sbd"`)
	h.Set("Content-Type", "application/json")
	w, _ := mw.CreatePart(h)
	w.Write(mustJSON(t, avtaltSBD(dpoOrg)))
	for _, name := range []string{"a.pdf", "b.pdf", "c.pdf"} {
		w, _ := mw.CreateFormFile(name, name)
		io.Copy(w, apitest.Incompressible(512<<10, 1))
	}
	require.NoError(t, mw.Close())
	ct := mw.FormDataContentType()

	m := &meteredBody{src: bytes.NewReader(buf.Bytes())}
	r := d.send("POST", "/api/messages/out/multipart", m, int64(buf.Len()), true, "Content-Type", ct)
	requireError(t, r, 413, "org.springframework.web.multipart.MaxUploadSizeExceededException")
	assert.Zero(t, m.read.Load(), "the body was never sent")

	m = &meteredBody{src: bytes.NewReader(buf.Bytes())}
	r = d.send("POST", "/api/messages/out/multipart", m, -1, false, "Content-Type", ct)
	requireError(t, r, 413, "org.springframework.web.multipart.MaxUploadSizeExceededException")
	assert.Equal(t, files, storedPayloads(t, d), "nothing staged remains")
	assert.Zero(t, total(t, d, "/api/messages/out"), "no message row")
}

// TestUpload_DPFPrintLimit: SvarUt takes at most 350 MB in a shipment that
// may go to print, so unless kun-digital-levering is set a DPF message over
// that is refused at upload with 400 MaxFileSizeExceededException naming
// the limit, before any of it is read; digital-only keeps the channel's
// configured limit (1 GB).
func TestUpload_DPFPrintLimit(t *testing.T) {
	dpf := map[string]string{"difi.move.feature.enableDPF": "true",
		"difi.move.fiks.inn.username": "inn", "difi.move.fiks.inn.password": "x",
		"difi.move.fiks.ut.username": "ut", "difi.move.fiks.ut.password": "x"}
	for _, digital := range []bool{false, true} {
		extra := maps.Clone(dpf)
		size, limit := int64(350<<20+1), "350 MB for DPF"
		if digital {
			extra["difi.move.fiks.ut.kun-digital-levering"] = "true"
			size, limit = 1<<30+1, "1024 MB for DPF"
		}
		d := startDaemon(t, extra)
		_, id := d.create(arkivSBD(dpfOrg))
		body := newMeteredBody(size)
		r := d.send("PUT", "/api/messages/out/"+id, body, size, true,
			"Content-Type", "application/pdf", "Content-Disposition", "attachment; name=Stor; filename=stor.pdf")
		m := requireError(t, r, 400, "MaxFileSizeExceededException")
		assert.Contains(t, m["message"], limit)
		assert.Zero(t, body.read.Load(), "the body was never sent")
		assert.Zero(t, d.attachments(t, id), "no attachment row")
	}
	// Exactly at the print limit is allowed.
	d := startDaemon(t, dpf)
	_, id := d.create(arkivSBD(dpfOrg))
	r := d.send("PUT", "/api/messages/out/"+id, newMeteredBody(350<<20), 350<<20, true,
		"Content-Type", "application/pdf", "Content-Disposition", "attachment; name=Stor; filename=stor.pdf")
	require.Equal(t, 200, r.Code, "body: %s", r.Body)
}

package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/api"
)

var fuzzSBD, _ = json.Marshal(avtaltSBD(dpoOrg))

func total(t *testing.T, d *daemon, path string) float64 {
	res, err := (&http.Client{Timeout: 10 * time.Second}).Get(d.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m["totalElements"].(float64)
}

func payloadFiles(t *testing.T, d *daemon) int {
	es, err := os.ReadDir(filepath.Join(d.dir, "payload"))
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// FuzzMultipart drives the one-step send (E5) with arbitrary parts and raw
// bodies against a real daemon. Invariants: never a 5xx; a refusal leaves no
// file, message or conversation behind (all or nothing, D6); an acceptance
// stores the message with exactly the distinct file parts sent.
func FuzzMultipart(f *testing.F) {
	f.Add(fuzzSBD, "Vedlegg", "vedlegg.pdf", []byte("%PDF-1.4"), "bilag.pdf", []byte(nil))
	f.Add(fuzzSBD, "A", "same.pdf", []byte("a"), "same.pdf", []byte(nil))
	f.Add([]byte(`{"standardBusinessDocumentHeader":{}}`), "x", "x.pdf", []byte("x"), "", []byte(nil))
	f.Add([]byte(`{`), "", "", []byte(nil), "", []byte(nil))
	f.Add([]byte(nil), "", "", []byte(nil), "", []byte("--XyZ\r\nContent-Disposition: form-data; name=sbd\r\n\r\n{}\r\n--XyZ--\r\n"))
	f.Add([]byte(nil), "", "", []byte(nil), "", []byte("--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.pdf\"\r\n\r\nabc\r\n--XyZ"))
	d := startDaemon(f, nil)
	f.Fuzz(func(t *testing.T, sbdJSON []byte, name, filename string, content []byte, filename2 string, raw []byte) {
		body, ct := &bytes.Buffer{}, "multipart/form-data; boundary=XyZ"
		distinct := map[string]bool{}
		if len(raw) > 0 {
			body.Write(raw)
		} else {
			mw := multipart.NewWriter(body)
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", `form-data; name="sbd"`)
			h.Set("Content-Type", "application/json")
			w, _ := mw.CreatePart(h)
			w.Write(sbdJSON)
			for _, fn := range []string{filename, filename2} {
				h := textproto.MIMEHeader{}
				h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, name, fn))
				w, _ := mw.CreatePart(h)
				w.Write(content)
			}
			mw.Close()
			ct = mw.FormDataContentType()
		}
		beforeFiles, beforeOut, beforeConv := payloadFiles(t, d), total(t, d, "/api/messages/out"), total(t, d, "/api/conversations")
		res, err := (&http.Client{Timeout: 10 * time.Second}).Post(d.base+"/api/messages/out/multipart", ct, body)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode >= 500 {
			t.Fatalf("5xx: %d %s", res.StatusCode, b)
		}
		if res.StatusCode != 200 {
			if got := payloadFiles(t, d); got != beforeFiles {
				t.Fatalf("refused (%d %s) but payload files went from %d to %d", res.StatusCode, b, beforeFiles, got)
			}
			if total(t, d, "/api/messages/out") != beforeOut || total(t, d, "/api/conversations") != beforeConv {
				t.Fatalf("refused (%d %s) but a message or conversation was stored", res.StatusCode, b)
			}
			return
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("200 without an SBD: %s", b)
		}
		id := doc(m).docID()["instanceIdentifier"].(string)
		msg, err := d.core.Outgoing(t.Context(), id)
		if err != nil {
			t.Fatalf("accepted message %s not stored: %v", id, err)
		}
		if len(raw) == 0 {
			for _, fn := range []string{filename, filename2} {
				if p := parseName(fn); p != "" {
					distinct[p] = true
				}
			}
			if len(msg.Attachments) != len(distinct) {
				t.Fatalf("stored %d attachments, sent %d distinct files", len(msg.Attachments), len(distinct))
			}
		}
		onDisk := 0
		for _, a := range msg.Attachments {
			if a.File != "" {
				onDisk++
			}
		}
		if got := payloadFiles(t, d); got != beforeFiles+onDisk {
			t.Fatalf("payload files %d, want %d", got, beforeFiles+onDisk)
		}
	})
}

// parseName is the file name the daemon reads back from the part header the
// fuzz target wrote.
func parseName(fn string) string {
	h := fmt.Sprintf(`form-data; name="x"; filename=%q`, fn)
	return api.ParseDisposition(h).Filename
}

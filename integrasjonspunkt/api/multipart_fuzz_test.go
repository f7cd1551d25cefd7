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
	"strings"
	"testing"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/api"
	"github.com/efm-go/efm/internal/fuzzedit"
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

// fuzzBases are the valid SBDs and raw bodies FuzzMultipart edits: the
// generated SBD first, then testdata/fuzzbase/FuzzMultipart (sbd-*, raw-*)
// in name order, so corpus entries keep pointing at the same base.
func fuzzBases(f *testing.F) (sbds, raws [][]byte) {
	sbds = [][]byte{fuzzSBD}
	dir := filepath.Join("testdata", "fuzzbase", "FuzzMultipart")
	es, err := os.ReadDir(dir)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range es {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		switch {
		case strings.HasPrefix(e.Name(), "sbd-"):
			sbds = append(sbds, b)
		case strings.HasPrefix(e.Name(), "raw-"):
			raws = append(raws, b)
		}
	}
	return sbds, raws
}

// FuzzMultipart drives the one-step send (E5) against a real daemon with
// edited inputs (fuzzedit): an odd mode sends an edited raw body, an even one
// a multipart body of an edited SBD and up to two file parts. Invariants:
// never a 5xx; a refusal leaves no file, message or conversation behind (all
// or nothing, D6); an acceptance stores the message with exactly the
// distinct file parts sent.
func FuzzMultipart(f *testing.F) {
	sbds, raws := fuzzBases(f)
	f.Add(uint8(0), uint8(1), uint32(0), uint16(0), []byte(nil), "Vedlegg", "vedlegg.pdf", []byte("%PDF-1.4"), "bilag.pdf")
	f.Add(uint8(0), uint8(1), uint32(0), uint16(0), []byte(nil), "A", "same.pdf", []byte("a"), "same.pdf")
	f.Add(uint8(0), uint8(0), uint32(0), uint16(0), []byte(`{`), "", "", []byte(nil), "")
	f.Add(uint8(1), uint8(0), uint32(0), uint16(0), []byte("--XyZ\r\nContent-Disposition: form-data; name=sbd\r\n\r\n{}\r\n--XyZ--\r\n"), "", "", []byte(nil), "")
	d := startDaemon(f, nil)
	// The counts after the last input: the daemon is this worker's alone, so
	// only the input under test changes them.
	var files int
	var out, conv float64
	counted := false
	f.Fuzz(func(t *testing.T, mode, which uint8, at uint32, cut uint16, insert []byte, name, filename string, content []byte, filename2 string) {
		body, ct := &bytes.Buffer{}, "multipart/form-data; boundary=XyZ"
		distinct := map[string]bool{}
		raw := mode%2 == 1
		if raw {
			body.Write(fuzzedit.Apply(raws, which, at, cut, insert))
		} else {
			mw := multipart.NewWriter(body)
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", `form-data; name="sbd"`)
			h.Set("Content-Type", "application/json")
			w, _ := mw.CreatePart(h)
			w.Write(fuzzedit.Apply(sbds, which, at, cut, insert))
			for _, fn := range []string{filename, filename2} {
				h := textproto.MIMEHeader{}
				h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, name, fn))
				w, _ := mw.CreatePart(h)
				w.Write(content)
			}
			mw.Close()
			ct = mw.FormDataContentType()
		}
		if !counted {
			files, out, conv, counted = payloadFiles(t, d), total(t, d, "/api/messages/out"), total(t, d, "/api/conversations"), true
		}
		beforeFiles, beforeOut, beforeConv := files, out, conv
		res, err := (&http.Client{Timeout: 10 * time.Second}).Post(d.base+"/api/messages/out/multipart", ct, body)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode >= 500 {
			t.Fatalf("5xx: %d %s", res.StatusCode, b)
		}
		files = payloadFiles(t, d)
		if res.StatusCode != 200 {
			if files != beforeFiles {
				t.Fatalf("refused (%d %s) but payload files went from %d to %d", res.StatusCode, b, beforeFiles, files)
			}
			// A refusal that stored nothing on disk is checked against the
			// store only when it got past the multipart reading (a JSON or
			// validation refusal): a malformed body never reaches it.
			if bytes.Contains(b, []byte("MultipartException")) {
				return
			}
			out, conv = total(t, d, "/api/messages/out"), total(t, d, "/api/conversations")
			if out != beforeOut || conv != beforeConv {
				t.Fatalf("refused (%d %s) but a message or conversation was stored", res.StatusCode, b)
			}
			return
		}
		out, conv = total(t, d, "/api/messages/out"), total(t, d, "/api/conversations")
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("200 without an SBD: %s", b)
		}
		id := doc(m).docID()["instanceIdentifier"].(string)
		if _, err := d.core.Outgoing(t.Context(), id); err != nil {
			t.Fatalf("accepted message %s not stored: %v", id, err)
		}
		atts, err := d.core.OutgoingAttachments(t.Context(), id)
		if err != nil {
			t.Fatalf("attachments of %s: %v", id, err)
		}
		if !raw {
			for _, fn := range []string{filename, filename2} {
				if p := parseName(fn); p != "" {
					distinct[p] = true
				}
			}
			if len(atts) != len(distinct) {
				t.Fatalf("stored %d attachments, sent %d distinct files", len(atts), len(distinct))
			}
		}
		onDisk := 0
		for _, a := range atts {
			if a.File != "" {
				onDisk++
			}
		}
		if files != beforeFiles+onDisk {
			t.Fatalf("payload files %d, want %d", files, beforeFiles+onDisk)
		}
	})
}

// parseName is the file name the daemon reads back from the part header the
// fuzz target wrote.
func parseName(fn string) string {
	h := fmt.Sprintf(`form-data; name="x"; filename=%q`, fn)
	return api.ParseDisposition(h).Filename
}

package dpfsim

import (
	"bytes"
	"net/http"
	"os"
	"testing"
)

// fuzzSim is a simulator with a small cap, enough for the readers.
func fuzzSim(t *testing.T) *Sim {
	return &Sim{opts: Options{Dir: t.TempDir(), MaxShipment: 64 << 10}}
}

func leftover(t *testing.T, dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 0 {
		t.Fatalf("%d spooled files left behind (%v)", len(entries), err)
	}
}

// FuzzReadSend: whatever the REST multipart body, readSend either refuses
// it leaving nothing behind, or returns documents within the rule that
// applies (the cap plus what encryption may add to each).
func FuzzReadSend(f *testing.F) {
	part := func(name, file, body string) string {
		cd := `form-data; name="` + name + `"`
		if file != "" {
			cd += `; filename="` + file + `"`
		}
		return "--b\r\nContent-Disposition: " + cd + "\r\n\r\n" + body + "\r\n"
	}
	f.Add([]byte(part("forsendelse", "", `{"tittel":"t","kunDigitalLevering":true,"dokumenter":[{}]}`)+part("dokumenter", "a.pdf", "%PDF")+"--b--\r\n"), int64(-1))
	f.Add([]byte(part("forsendelse", "", `{"kunDigitalLevering":false}`)+part("dokumenter", "a.pdf", string(make([]byte, 70<<10)))+"--b--\r\n"), int64(-1))
	f.Add([]byte(part("dokumenter", "a.pdf", "x")+part("forsendelse", "", `{}`)+"--b--\r\n"), int64(400<<20))
	f.Add([]byte("--b\r\n\r\n--b--"), int64(0))
	f.Fuzz(func(t *testing.T, body []byte, length int64) {
		s := fuzzSim(t)
		r, _ := http.NewRequest("POST", "/", bytes.NewReader(body))
		r.Header.Set("Content-Type", "multipart/form-data; boundary=b")
		r.ContentLength = length
		meta, files, err := s.readSend(r)
		if err != nil {
			if files != nil || meta != nil {
				t.Fatal("a refusal returned content")
			}
			leftover(t, s.opts.Dir)
			return
		}
		var total int64
		for _, d := range files {
			total += d.body.size
		}
		if max := s.opts.MaxShipment + int64(len(files))*cmsOverhead; total > max {
			t.Fatalf("documents of %d bytes taken over %d", total, max)
		}
		if len(meta) > maxMeta {
			t.Fatal("forsendelse over its cap")
		}
		removeAll(files)
		leftover(t, s.opts.Dir)
	})
}

// FuzzReadMTOM: whatever the SOAP request, readMTOM either refuses it
// leaving nothing behind, or returns a root and parts within the caps;
// nothing is ever cut to fit.
func FuzzReadMTOM(f *testing.F) {
	f.Add([]byte("--b\r\nContent-ID: <root>\r\n\r\n<Envelope/>\r\n--b\r\nContent-ID: <d1>\r\n\r\nabc\r\n--b--\r\n"), "multipart/related; boundary=b; start=\"<root>\"")
	f.Add([]byte("--b\r\n\r\n<r/>\r\n--b\r\nContent-ID: <d1>\r\n\r\n"+string(make([]byte, 70<<10))+"\r\n--b--\r\n"), "multipart/related; boundary=b")
	f.Add([]byte("<Envelope/>"), "application/soap+xml")
	f.Add([]byte("--b--"), "multipart/related; boundary=b")
	f.Fuzz(func(t *testing.T, body []byte, ctype string) {
		s := fuzzSim(t)
		r, _ := http.NewRequest("POST", "/", bytes.NewReader(body))
		r.Header.Set("Content-Type", ctype)
		root, parts, err := s.readMTOM(r)
		if err != nil {
			if parts != nil {
				t.Fatal("a refusal returned parts")
			}
			leftover(t, s.opts.Dir)
			return
		}
		if len(root) > maxMeta {
			t.Fatal("root over its cap")
		}
		var total int64
		for _, p := range parts {
			total += p.size
		}
		if max := s.opts.MaxShipment + int64(len(parts))*cmsOverhead; total > max {
			t.Fatalf("parts of %d bytes taken over %d", total, max)
		}
		// What is taken is what was sent: a part is never cut.
		if parts != nil && total > int64(len(body)) {
			t.Fatal("more taken than sent")
		}
		for _, p := range parts {
			p.remove()
		}
		leftover(t, s.opts.Dir)
	})
}

package dpfsim

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/efm-go/efm/packaging/cms"
)

// InnBase is where SvarInn is mounted.
const InnBase = "/tjenester/svarinn"

func (s *Sim) innRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+InnBase+"/mottaker/hentNyeForsendelser", s.innList)
	mux.HandleFunc("GET "+InnBase+"/forsendelse/{id}", s.innDownload)
	mux.HandleFunc("POST "+InnBase+"/kvitterMottak/forsendelse/{id}", s.innAck)
	mux.HandleFunc("POST "+InnBase+"/mottakFeilet/forsendelse/{id}", s.innFailed)
}

// basic checks a SvarInn account's Basic credentials.
func (s *Sim) basic(w http.ResponseWriter, r *http.Request) *InnAccount {
	u, p, ok := r.BasicAuth()
	for i := range s.opts.SvarInn {
		a := &s.opts.SvarInn[i]
		if ok && a.Username == u && a.Password == p {
			return a
		}
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="SvarInn"`)
	http.Error(w, "Unauthorized", http.StatusUnauthorized)
	return nil
}

func (s *Sim) innList(w http.ResponseWriter, r *http.Request) {
	a := s.basic(w, r)
	if a == nil {
		return
	}
	base := "http://" + r.Host + InnBase + "/forsendelse/"
	out := []map[string]any{}
	s.mu.Lock()
	for _, in := range s.inboxes[a.Org] {
		if len(out) == 200 {
			break
		}
		e := make(map[string]any, len(in.shipment)+1)
		for k, v := range in.shipment {
			e[k] = v
		}
		e["downloadUrl"] = base + in.id
		out = append(out, e)
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(out)
}

// find returns an account's waiting shipment.
func (s *Sim) findLocked(org, id string) (int, *incoming) {
	for i, in := range s.inboxes[org] {
		if in.id == id {
			return i, in
		}
	}
	return -1, nil
}

func (s *Sim) innDownload(w http.ResponseWriter, r *http.Request) {
	a := s.basic(w, r)
	if a == nil {
		return
	}
	s.mu.Lock()
	_, in := s.findLocked(a.Org, r.PathValue("id"))
	s.mu.Unlock()
	if in == nil {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+in.id+`.zip"`)
	if in.corrupt {
		io.WriteString(w, "this is not a CMS")
		return
	}
	// Streamed: a big shipment is zipped and encrypted from disk as it goes
	// out; a failure half-way cuts the download, which the receiver's CMS
	// reader refuses.
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeZip(pw, in.files)) }()
	_, err := cms.Encrypt(w, pr, a.Cert, cms.EncryptOptions{KeyTransport: cms.RSAESOAEP, Cipher: cms.AES256CBC})
	pr.CloseWithError(err)
}

func (s *Sim) innAck(w http.ResponseWriter, r *http.Request) {
	a := s.basic(w, r)
	if a == nil {
		return
	}
	s.mu.Lock()
	i, in := s.findLocked(a.Org, r.PathValue("id"))
	if in != nil {
		s.inboxes[a.Org] = slices.Delete(s.inboxes[a.Org], i, i+1)
		if in.from != nil {
			in.from.Status, in.from.Changed = "LEST", s.opts.Now()
		}
	}
	s.mu.Unlock()
	if in == nil {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Sim) innFailed(w http.ResponseWriter, r *http.Request) {
	a := s.basic(w, r)
	if a == nil {
		return
	}
	var f Failure
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&f); err != nil || f.Feilmelding == "" {
		http.Error(w, "feilmelding og permanent mangler", http.StatusBadRequest)
		return
	}
	f.ID = r.PathValue("id")
	s.mu.Lock()
	i, in := s.findLocked(a.Org, f.ID)
	if in != nil {
		s.failures[a.Org] = append(s.failures[a.Org], f)
		if f.Permanent {
			s.inboxes[a.Org] = slices.Delete(s.inboxes[a.Org], i, i+1)
			if in.from != nil {
				in.from.Status, in.from.Changed = "IKKE_LEVERT", s.opts.Now()
			}
		}
	}
	s.mu.Unlock()
	if in == nil {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// bridged turns a received shipment into the SvarInn entry its receiver sees.
func bridged(sh *Shipment) *incoming {
	m := sh.Metadata
	e := map[string]any{
		"id": sh.ID, "tittel": sh.Tittel, "date": sh.created.UnixMilli(), "status": "Klar for mottak", "niva": "4",
		"mottaker": map[string]any{"navn": str(m, "mottaker", "navn"), "orgnr": sh.Receiver},
	}
	if str(m, "sikkerhetsniva") == "BETYDELIG" {
		e["niva"] = "3"
	}
	for _, k := range []string{"svarPaForsendelseId", "forsendelsestype", "eksternReferanse"} {
		if v := str(m, k); v != "" {
			e[map[string]string{"svarPaForsendelseId": "svarPaForsendelse", "forsendelsestype": "forsendelseType",
				"eksternReferanse": "eksternRef"}[k]] = v
		}
	}
	if st, ok := m["svarSendesTil"].(map[string]any); ok {
		to := map[string]any{"navn": str(st, "navn"), "adresse1": str(st, "adresse", "adresselinje1"),
			"adresse2": str(st, "adresse", "adresselinje2"), "postnr": str(st, "adresse", "postnummer"),
			"poststed": str(st, "adresse", "poststed")}
		if str(st, "type") == "PERSON" {
			to["fnr"] = str(st, "digitalId")
		} else {
			to["orgnr"] = str(st, "digitalId")
		}
		e["svarSendesTil"] = to
	}
	if md, ok := m["metadataFraAvleverendeSystem"].(map[string]any); ok {
		out := map[string]any{}
		for k, v := range md {
			if k == "journaldato" || k == "dokumentetsDato" {
				if t, err := time.Parse(time.RFC3339, strings.TrimSpace(v.(string))); err == nil {
					v = t.UnixMilli()
				} else {
					continue
				}
			}
			out[k] = v
		}
		e["metadataFraAvleverendeSystem"] = out
	}
	files := make([]file, 0, len(sh.Documents))
	for _, d := range sh.Documents {
		files = append(files, file{name: d.Filnavn, mime: d.MimeType, body: d.body, sha256: d.SHA256})
	}
	in := incoming{id: sh.ID, from: sh, files: files}
	in.shipment = withFiles(e, files)
	return &in
}

type file struct {
	name, mime string
	body       blob // the shipment's: removed with it
	sha256     string
}

// withFiles adds filmetadata to entry.
func withFiles(entry map[string]any, files []file) map[string]any {
	meta := []map[string]any{}
	for _, f := range files {
		meta = append(meta, map[string]any{"filnavn": f.name, "mimetype": f.mime, "sha256hash": f.sha256, "size": f.body.size})
	}
	entry["filmetadata"] = meta
	return entry
}

// writeZip streams the files into a ZIP, reading big ones from disk.
func writeZip(w io.Writer, files []file) error {
	zw := zip.NewWriter(w)
	for _, f := range files {
		fw, err := zw.Create(f.name)
		if err != nil {
			return err
		}
		rc, err := f.body.open()
		if err != nil {
			return err
		}
		_, err = io.Copy(fw, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return zw.Close()
}

// str digs a string out of nested JSON objects.
func str(m map[string]any, path ...string) string {
	var v any = m
	for _, k := range path {
		o, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = o[k]
	}
	s, _ := v.(string)
	return s
}

// Incoming is a shipment a test puts in a SvarInn account directly.
type Incoming struct {
	Tittel string `json:"tittel"`
	// SvarSendesTilOrg or SvarSendesTilFnr is the sender's answer address.
	SvarSendesTilOrg string            `json:"svarSendesTilOrg,omitempty"`
	SvarSendesTilFnr string            `json:"svarSendesTilFnr,omitempty"`
	Files            map[string][]byte `json:"files"` // name → content (base64 in JSON)
	// Corrupt makes the download something that is not a CMS.
	Corrupt bool `json:"corrupt,omitempty"`
}

// AddIncoming puts a shipment in org's SvarInn account and returns its id.
func (s *Sim) AddIncoming(org string, in Incoming) string {
	id := newID()
	e := map[string]any{"id": id, "tittel": in.Tittel, "date": s.opts.Now().UnixMilli(), "status": "Klar for mottak",
		"niva": "4", "mottaker": map[string]any{"navn": "Mottaker " + org, "orgnr": org}}
	switch {
	case in.SvarSendesTilOrg != "":
		e["svarSendesTil"] = map[string]any{"navn": "Avsender " + in.SvarSendesTilOrg, "orgnr": in.SvarSendesTilOrg}
	case in.SvarSendesTilFnr != "":
		e["svarSendesTil"] = map[string]any{"navn": "Innbygger", "fnr": in.SvarSendesTilFnr}
	}
	var files []file
	for _, name := range slices.Sorted(maps.Keys(in.Files)) {
		mimeType := "application/octet-stream"
		if strings.HasSuffix(strings.ToLower(name), ".pdf") {
			mimeType = "application/pdf"
		}
		data := in.Files[name]
		sum := sha256.Sum256(data)
		files = append(files, file{name: name, mime: mimeType, body: blob{data: data, size: int64(len(data))}, sha256: hex.EncodeToString(sum[:])})
	}
	entry := withFiles(e, files)
	s.mu.Lock()
	s.inboxes[org] = append(s.inboxes[org], &incoming{shipment: entry, id: id, files: files, corrupt: in.Corrupt})
	s.mu.Unlock()
	return id
}

func (s *Sim) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /_sim/shipments", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.Shipments()) })
	mux.HandleFunc("POST /_sim/svarinn/{org}", func(w http.ResponseWriter, r *http.Request) {
		var in Incoming
		if err := json.NewDecoder(io.LimitReader(r.Body, 4*maxMeta)).Decode(&in); err != nil {
			http.Error(w, "want {\"tittel\", \"files\": {name: base64}}", http.StatusBadRequest)
			return
		}
		writeJSON(w, map[string]string{"id": s.AddIncoming(r.PathValue("org"), in)})
	})
	mux.HandleFunc("GET /_sim/svarinn/{org}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]int{"waiting": s.Waiting(r.PathValue("org"))})
	})
	mux.HandleFunc("DELETE /_sim/svarinn/{org}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		delete(s.inboxes, r.PathValue("org"))
		s.mu.Unlock()
	})
	mux.HandleFunc("GET /_sim/svarinn/{org}/failed", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.Failures(r.PathValue("org")))
	})
}

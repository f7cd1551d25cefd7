package dpfsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/efm-go/efm/packaging/jws"
)

// maxMeta caps the forsendelse part and other non-document bodies.
const maxMeta = 16 << 20

func (s *Sim) restRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v3/kontoer/{konto}/forsendelser/organisasjon", s.restSend)
	mux.HandleFunc("POST /api/v2/kontoer/{konto}/forsendelser/status-sok", s.restStatus)
	mux.HandleFunc("GET /api/v2/kontoer/{konto}/forsendelser", s.restByRef)
	mux.HandleFunc("GET /api/v2/forsendelsestyper", s.restTypes)
}

// errorMessage is SvarUt's ErrorMessage body for injected statuses.
func errorMessage(status int) (string, []byte) {
	b, _ := json.Marshal(map[string]any{"timestamp": time.Now().UnixMilli(), "status": status,
		"error": http.StatusText(status), "errorId": newID(), "message": "injected by the simulator", "errorCode": "SIMULATED"})
	return "application/json", b
}

func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"timestamp": time.Now().UnixMilli(), "status": status,
		"error": http.StatusText(status), "errorId": newID(), "path": r.URL.Path, "message": msg, "errorCode": code})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// authorize checks the integration headers and the Maskinporten token, and
// for account paths that the token acts for the account's organisation. It
// returns that organisation ("" for paths without an account).
func (s *Sim) authorize(w http.ResponseWriter, r *http.Request) (string, bool) {
	if r.Header.Get("IntegrasjonId") != s.opts.IntegrasjonID || r.Header.Get("IntegrasjonPassord") != s.opts.IntegrasjonPassord ||
		s.opts.IntegrasjonID == "" {
		writeError(w, r, http.StatusUnauthorized, "UNAUTHORIZED", "ukjent integrasjon")
		return "", false
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		writeError(w, r, http.StatusUnauthorized, "UNAUTHORIZED", "mangler bearer token")
		return "", false
	}
	payload, _, err := jws.Verify([]byte(tok), s.opts.MaskinportenKey)
	var claims struct {
		Scope    string `json:"scope"`
		Exp      int64  `json:"exp"`
		Consumer struct {
			ID string `json:"ID"`
		} `json:"consumer"`
	}
	if err == nil {
		err = json.Unmarshal(payload, &claims)
	}
	if err != nil || s.opts.Now().Unix() > claims.Exp || !slices.Contains(strings.Fields(claims.Scope), "ks:fiks") {
		writeError(w, r, http.StatusUnauthorized, "UNAUTHORIZED", "ugyldig token")
		return "", false
	}
	konto := r.PathValue("konto")
	if konto == "" {
		return "", true
	}
	for _, a := range s.opts.REST {
		if a.KontoID == konto {
			if claims.Consumer.ID != "0192:"+a.Org {
				writeError(w, r, http.StatusForbidden, "FORBIDDEN", "tokenet gjelder ikke kontoens organisasjon")
				return "", false
			}
			return a.Org, true
		}
	}
	writeError(w, r, http.StatusNotFound, "KONTO_NOT_FOUND", "ukjent konto")
	return "", false
}

// restSend takes a v3 multipart send: the forsendelse part, then the
// documents in the order of dokumenter, matched by filename.
func (s *Sim) restSend(w http.ResponseWriter, r *http.Request) {
	org, ok := s.authorize(w, r)
	if !ok {
		return
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		writeError(w, r, http.StatusBadRequest, "BAD_REQUEST", "forventer multipart/form-data")
		return
	}
	// Decided from the Content-Length before any document is read: over
	// the simulator's cap the shipment cannot be taken whatever it is.
	if r.ContentLength > s.opts.MaxShipment+maxMeta {
		writeTooLarge(w, r, errTooLarge{s.opts.MaxShipment})
		return
	}
	meta, files, err := s.readSend(r)
	if err != nil {
		var tl errTooLarge
		if errors.As(err, &tl) {
			writeTooLarge(w, r, tl)
		} else {
			writeError(w, r, http.StatusBadRequest, "BAD_REQUEST", err.Error())
		}
		return
	}
	ok = false
	defer func() {
		if !ok {
			removeAll(files)
		}
	}()
	var f struct {
		Tittel   string `json:"tittel"`
		Mottaker struct {
			Navn      string `json:"navn"`
			DigitalID string `json:"digitalId"`
		} `json:"mottaker"`
		Kryptert   bool   `json:"kryptert"`
		KunDigital bool   `json:"kunDigitalLevering"`
		Type       string `json:"forsendelsestype"`
		EksternRef string `json:"eksternReferanse"`
		Dokumenter []struct {
			Filnavn  string `json:"filnavn"`
			MimeType string `json:"mimeType"`
		} `json:"dokumenter"`
	}
	var all map[string]any
	if json.Unmarshal(meta, &f) != nil || json.Unmarshal(meta, &all) != nil {
		writeError(w, r, http.StatusBadRequest, "BAD_REQUEST", "ulesbar forsendelse")
		return
	}
	if msg := s.check(f.Tittel, f.Mottaker.Navn, f.Mottaker.DigitalID, f.Type, len(f.Dokumenter)); msg != "" {
		writeError(w, r, http.StatusBadRequest, "VALIDATION", msg)
		return
	}
	if len(files) != len(f.Dokumenter) {
		writeError(w, r, http.StatusBadRequest, "VALIDATION", "antall filer stemmer ikke med dokumenter")
		return
	}
	for i, d := range f.Dokumenter {
		if files[i].Filnavn != d.Filnavn {
			writeError(w, r, http.StatusBadRequest, "VALIDATION", fmt.Sprintf("fil %d heter ikke %s", i+1, d.Filnavn))
			return
		}
		files[i].MimeType = d.MimeType
	}
	if err := s.decryptAll(files, f.Kryptert, s.budget(f.KunDigital)); err != nil {
		var tl errTooLarge
		if errors.As(err, &tl) {
			writeTooLarge(w, r, tl)
		} else {
			writeError(w, r, http.StatusBadRequest, "DEKRYPTERING", err.Error())
		}
		return
	}
	ok = true
	sh := s.record(org, f.Mottaker.DigitalID, f.EksternRef, f.Tittel, f.Type, all, files, "rest", "")
	writeJSON(w, map[string]string{"id": sh.ID})
}

// writeTooLarge is SvarUt's refusal of a shipment over a size rule: its
// ErrorMessage with 400, as for its other validation errors.
func writeTooLarge(w http.ResponseWriter, r *http.Request, e errTooLarge) {
	writeError(w, r, http.StatusBadRequest, "MAX_FILE_SIZE_EXCEEDED", e.Error())
}

// readSend reads a v3 multipart send: the forsendelse part, then the
// documents, each spooled (to disk when big). Once the forsendelse says
// whether the shipment may be printed, the rule that applies is decided
// from the Content-Length before the documents are read; without one, while
// they are read. On error nothing stays behind.
func (s *Sim) readSend(r *http.Request) (meta []byte, files []Document, err error) {
	_, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	mr := multipart.NewReader(r.Body, params["boundary"])
	defer func() {
		if err != nil {
			removeAll(files)
			files = nil
		}
	}()
	limit := s.opts.MaxShipment
	var used int64
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return meta, files, nil
		}
		if err != nil {
			return nil, files, errors.New("ulesbar multipart")
		}
		if p.FormName() == "forsendelse" && p.FileName() == "" {
			if meta, err = io.ReadAll(io.LimitReader(p, maxMeta+1)); err != nil || len(meta) > maxMeta {
				return nil, files, errors.New("ulesbar forsendelse")
			}
			var f struct {
				KunDigital bool              `json:"kunDigitalLevering"`
				Dokumenter []json.RawMessage `json:"dokumenter"`
			}
			if json.Unmarshal(meta, &f) == nil {
				limit = s.budget(f.KunDigital)
				if r.ContentLength > limit+int64(len(f.Dokumenter))*cmsOverhead+maxMeta {
					return nil, files, errTooLarge{limit}
				}
			}
			continue
		}
		// The encrypted bytes may exceed the content by cmsOverhead each;
		// decryptAll applies the rule to the content exactly.
		budget := limit + int64(len(files)+1)*cmsOverhead - used
		b, err := s.spool(p, budget, limit, nil)
		if err != nil {
			var tl errTooLarge
			if errors.As(err, &tl) {
				return nil, files, err
			}
			return nil, files, errors.New("ulesbar multipart")
		}
		used += b.size
		files = append(files, Document{Filnavn: p.FileName(), body: b})
	}
}

// check is SvarUt's validation common to both APIs; it returns what is wrong.
func (s *Sim) check(tittel, navn, orgnr, typ string, docs int) string {
	switch {
	case strings.TrimSpace(tittel) == "":
		return "tittel mangler"
	case strings.TrimSpace(navn) == "":
		return "mottaker.navn mangler"
	case len(orgnr) != 9:
		return "mottaker.digitalId må være et organisasjonsnummer"
	case docs == 0:
		return "Kan ikke lagre tomt dokument"
	case typ != "" && len(s.opts.ForsendelseTyper) > 0 && !slices.Contains(s.opts.ForsendelseTyper, typ):
		return "ukjent forsendelsestype " + typ
	}
	return ""
}

// record stores a shipment and, when the receiver has a SvarInn account,
// puts it in that account (the bridge). id "" makes a new one.
func (s *Sim) record(sender, receiver, ref, tittel, typ string, meta map[string]any, files []Document, via, id string) *Shipment {
	if id == "" {
		id = newID()
	}
	now := s.opts.Now()
	sh := &Shipment{ID: id, Sender: sender, Receiver: receiver, EksternRef: ref, Tittel: tittel, Type: typ, Metadata: meta,
		Documents: files, Status: "MOTTATT", Changed: now, Via: via, created: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shipments = append(s.shipments, sh)
	s.byID[sh.ID] = sh
	if s.innAccount(receiver) != nil {
		sh.bridged, sh.Status = true, "KLAR_FOR_MOTTAK"
		s.inboxes[receiver] = append(s.inboxes[receiver], bridged(sh))
	}
	return sh
}

func (s *Sim) restStatus(w http.ResponseWriter, r *http.Request) {
	org, ok := s.authorize(w, r)
	if !ok {
		return
	}
	var req struct {
		IDs []string `json:"forsendelseIds"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || req.IDs == nil {
		writeError(w, r, http.StatusBadRequest, "BAD_REQUEST", "forventer forsendelseIds")
		return
	}
	out := []map[string]string{}
	s.mu.Lock()
	for _, id := range req.IDs {
		sh := s.byID[id]
		if sh == nil || sh.Sender != org {
			continue
		}
		s.advanceLocked(sh)
		out = append(out, map[string]string{"id": sh.ID, "status": sh.Status, "sisteStatusEndring": sh.Changed.Format(time.RFC3339Nano)})
	}
	s.mu.Unlock()
	writeJSON(w, map[string]any{"statuser": out})
}

func (s *Sim) restByRef(w http.ResponseWriter, r *http.Request) {
	org, ok := s.authorize(w, r)
	if !ok {
		return
	}
	ref := r.URL.Query().Get("eksternRef")
	if ref == "" {
		writeError(w, r, http.StatusBadRequest, "BAD_REQUEST", "eksternRef mangler")
		return
	}
	writeJSON(w, map[string]any{"forsendelseIds": s.idsByRef(org, ref)})
}

func (s *Sim) idsByRef(org, ref string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := []string{}
	for _, sh := range s.shipments {
		if sh.Sender == org && sh.EksternRef == ref {
			ids = append(ids, sh.ID)
		}
	}
	return ids
}

func (s *Sim) restTypes(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r); !ok {
		return
	}
	types := s.opts.ForsendelseTyper
	if types == nil {
		types = []string{}
	}
	writeJSON(w, map[string]any{"forsendelsestyper": types})
}

package dpfsim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// SOAPPath is where ForsendelsesServiceV9 is served.
const SOAPPath = "/tjenester/forsendelseservice/ForsendelsesServiceV9"

const soapNS = "http://www.ks.no/svarut/servicesV9"

// SOAPAccount is a SvarUt account for the SOAP API (HTTP Basic).
type SOAPAccount struct {
	Username, Password, Org string
}

func (s *Sim) soapRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+SOAPPath, s.soap)
	mux.HandleFunc("POST /_sim/soapfault", func(w http.ResponseWriter, r *http.Request) {
		var f struct {
			Reason string `json:"reason"`
			Times  int    `json:"times"`
		}
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil || f.Reason == "" {
			http.Error(w, `want {"reason": "...", "times": n}`, http.StatusBadRequest)
			return
		}
		s.FailSOAP(f.Reason, f.Times)
	})
}

// FailSOAP answers the next times SOAP calls with a fault carrying reason
// (e.g. "Duplikat forsendelse", final; anything else is retried).
func (s *Sim) FailSOAP(reason string, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range max(times, 1) {
		s.soapFaults = append(s.soapFaults, reason)
	}
}

func soapFault(w http.ResponseWriter, code, reason string) {
	w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(reason))
	io.WriteString(w, `<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><soap:Fault>`+
		`<soap:Code><soap:Value>soap:`+code+`</soap:Value></soap:Code><soap:Reason><soap:Text xml:lang="no">`+b.String()+
		`</soap:Text></soap:Reason></soap:Fault></soap:Body></soap:Envelope>`)
}

func soapAnswer(w http.ResponseWriter, op, inner string) {
	w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
	io.WriteString(w, `<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><ns2:`+op+
		`Response xmlns:ns2="`+soapNS+`">`+inner+`</ns2:`+op+`Response></soap:Body></soap:Envelope>`)
}

// soapRequest is the envelope as the simulator reads it.
type soapRequest struct {
	Body struct {
		Op []struct {
			XMLName     xml.Name
			IDs         []string     `xml:"forsendelseider"`
			EksternRef  string       `xml:"eksternRef"`
			ID          string       `xml:"forsendelsesid"`
			Forsendelse *soapShipped `xml:"forsendelse"`
		} `xml:",any"`
	} `xml:"http://www.w3.org/2003/05/soap-envelope Body"`
}

type soapPost struct {
	Adresse1 string `xml:"adresse1" json:"adresselinje1,omitempty"`
	Adresse2 string `xml:"adresse2" json:"adresselinje2,omitempty"`
	Navn     string `xml:"navn" json:"-"`
	Postnr   string `xml:"postnr" json:"postnummer,omitempty"`
	Poststed string `xml:"poststed" json:"poststed,omitempty"`
}

type soapAdresse struct {
	Orgnr string   `xml:"digitalAdresse>orgnr"`
	Fnr   string   `xml:"digitalAdresse>fodselsnummer"`
	Post  soapPost `xml:"postAdresse"`
}

type soapShipped struct {
	Dokumenter []struct {
		Data struct {
			Include struct {
				Href string `xml:"href,attr"`
			} `xml:"http://www.w3.org/2004/08/xop/include Include"`
			Inline string `xml:",chardata"`
		} `xml:"data"`
		Filnavn  string `xml:"filnavn"`
		Mimetype string `xml:"mimetype"`
	} `xml:"dokumenter"`
	Eksternref        string         `xml:"eksternref"`
	ForsendelseType   string         `xml:"forsendelseType"`
	KrevNiva4         bool           `xml:"krevNiva4Innlogging"`
	Kryptert          bool           `xml:"kryptert"`
	KunDigital        bool           `xml:"kunDigitalLevering"`
	Metadata          map[string]any `xml:"-"`
	MetadataXML       *soapMetadata  `xml:"metadataFraAvleverendeSystem"`
	Mottaker          soapAdresse    `xml:"mottaker"`
	SvarPaForsendelse string         `xml:"svarPaForsendelse"`
	SvarSendesTil     *soapAdresse   `xml:"svarSendesTil"`
	Tittel            string         `xml:"tittel"`
}

type soapMetadata struct {
	Saksaar           int    `xml:"saksaar" json:"saksaar,omitempty"`
	Sakssekvensnummer int64  `xml:"sakssekvensnummer" json:"sakssekvensnummer,omitempty"`
	Journalaar        int    `xml:"journalaar" json:"journalaar,omitempty"`
	Journalpostnummer int64  `xml:"journalpostnummer" json:"journalpostnummer,omitempty"`
	Journalposttype   string `xml:"journalposttype" json:"journalposttype,omitempty"`
	Journaldato       string `xml:"journaldato" json:"journaldato,omitempty"`
	Tittel            string `xml:"tittel" json:"tittel,omitempty"`
}

// soapAccount checks the Basic credentials of a SOAP account.
func (s *Sim) soapAccount(r *http.Request) (string, bool) {
	u, p, ok := r.BasicAuth()
	for _, a := range s.opts.SOAP {
		if ok && a.Username == u && a.Password == p {
			return a.Org, true
		}
	}
	return "", false
}

func (s *Sim) soap(w http.ResponseWriter, r *http.Request) {
	org, ok := s.soapAccount(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="SvarUt"`)
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	var injected string
	if len(s.soapFaults) > 0 {
		injected, s.soapFaults = s.soapFaults[0], s.soapFaults[1:]
	}
	s.mu.Unlock()
	if injected != "" {
		soapFault(w, "Receiver", injected)
		return
	}
	root, parts, err := s.readMTOM(r)
	if err != nil {
		soapFault(w, "Sender", "Ugyldig innhold: "+err.Error())
		return
	}
	defer func() {
		for _, b := range parts {
			b.remove()
		}
	}()
	var env soapRequest
	if err := xml.Unmarshal(root, &env); err != nil || len(env.Body.Op) != 1 || env.Body.Op[0].XMLName.Space != soapNS {
		soapFault(w, "Sender", "Ugyldig innhold: ikke en SOAP 1.2-konvolutt for ForsendelsesServiceV9")
		return
	}
	op := env.Body.Op[0]
	switch op.XMLName.Local {
	case "retreiveForsendelseTyper":
		var b strings.Builder
		for _, t := range s.opts.ForsendelseTyper {
			b.WriteString("<return>" + xmlText(t) + "</return>")
		}
		soapAnswer(w, op.XMLName.Local, b.String())
	case "retrieveForsendelseIdByEksternRef":
		var b strings.Builder
		for _, id := range s.idsByRef(org, op.EksternRef) {
			b.WriteString("<return>" + id + "</return>")
		}
		soapAnswer(w, op.XMLName.Local, b.String())
	case "retrieveForsendelseStatuser":
		var b strings.Builder
		s.mu.Lock()
		for _, id := range op.IDs {
			if sh := s.byID[id]; sh != nil && sh.Sender == org {
				s.advanceLocked(sh)
				b.WriteString("<return><forsendelseStatus>" + sh.Status + "</forsendelseStatus><forsendelsesid>" + sh.ID +
					"</forsendelsesid><sisteStatusEndring>" + sh.Changed.Format(time.RFC3339Nano) + "</sisteStatusEndring></return>")
			}
		}
		s.mu.Unlock()
		soapAnswer(w, op.XMLName.Local, b.String())
	case "sendForsendelseMedId":
		s.soapSend(w, org, op.ID, op.Forsendelse, parts)
	default:
		soapFault(w, "Sender", "Ukjent operasjon "+op.XMLName.Local)
	}
}

func (s *Sim) soapSend(w http.ResponseWriter, org, id string, f *soapShipped, parts map[string]*blob) {
	if f == nil || !isUUID(id) {
		soapFault(w, "Sender", "Ugyldig innhold: forsendelse og forsendelsesid (UUID) kreves")
		return
	}
	s.mu.Lock()
	_, dup := s.byID[id]
	s.mu.Unlock()
	if dup {
		soapFault(w, "Sender", "Duplikat forsendelsesid "+id)
		return
	}
	if msg := s.check(f.Tittel, f.Mottaker.Post.Navn, f.Mottaker.Orgnr, f.ForsendelseType, len(f.Dokumenter)); msg != "" {
		soapFault(w, "Sender", "Ugyldig innhold: "+msg)
		return
	}
	files := make([]Document, 0, len(f.Dokumenter))
	for _, d := range f.Dokumenter {
		var body blob
		if href := d.Data.Include.Href; href != "" {
			// A part is one document's: taken here, so the request's
			// clean-up leaves it to the shipment.
			cid, _ := url.PathUnescape(strings.TrimPrefix(href, "cid:"))
			if p := parts[cid]; p != nil {
				body, *p = *p, blob{}
			}
		} else {
			data, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(d.Data.Inline))
			body = blob{data: data, size: int64(len(data))}
		}
		files = append(files, Document{Filnavn: d.Filnavn, MimeType: d.Mimetype, body: body})
	}
	if err := s.decryptAll(files, f.Kryptert, s.budget(f.KunDigital)); err != nil {
		soapFault(w, "Sender", err.Error())
		return
	}
	s.record(org, f.Mottaker.Orgnr, f.Eksternref, f.Tittel, f.ForsendelseType, f.asREST(), files, "soap", id)
	soapAnswer(w, "sendForsendelseMedId", "<return>"+id+"</return>")
}

// asREST gives the shipment in the JSON shape the bridge reads (REST v3).
func (f *soapShipped) asREST() map[string]any {
	m := map[string]any{"tittel": f.Tittel, "mottaker": map[string]any{"navn": f.Mottaker.Post.Navn, "digitalId": f.Mottaker.Orgnr},
		"sikkerhetsniva": map[bool]string{true: "HOYESTE", false: "BETYDELIG"}[f.KrevNiva4]}
	if f.SvarPaForsendelse != "" {
		m["svarPaForsendelseId"] = f.SvarPaForsendelse
	}
	if f.ForsendelseType != "" {
		m["forsendelsestype"] = f.ForsendelseType
	}
	if st := f.SvarSendesTil; st != nil {
		adr := map[string]any{}
		b, _ := json.Marshal(st.Post)
		_ = json.Unmarshal(b, &adr)
		to := map[string]any{"navn": st.Post.Navn, "adresse": adr, "type": "ORGANISASJON", "digitalId": st.Orgnr}
		if st.Fnr != "" {
			to["type"], to["digitalId"] = "PERSON", st.Fnr
		}
		m["svarSendesTil"] = to
	}
	if md := f.MetadataXML; md != nil {
		out := map[string]any{}
		b, _ := json.Marshal(md)
		_ = json.Unmarshal(b, &out)
		m["metadataFraAvleverendeSystem"] = out
	}
	return m
}

// readMTOM returns the root XML of a SOAP request and, for MTOM, its
// attachments by Content-ID, spooled to disk when big. Over the
// simulator's cap it is errTooLarge, never a cut document; the size rule of
// the shipment is applied to the content by decryptAll.
func (s *Sim) readMTOM(r *http.Request) (root []byte, parts map[string]*blob, err error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, nil, err
	}
	if r.ContentLength > s.opts.MaxShipment+maxMeta {
		return nil, nil, errTooLarge{s.opts.MaxShipment}
	}
	readRoot := func(rd io.Reader) ([]byte, error) {
		b, err := io.ReadAll(io.LimitReader(rd, maxMeta+1))
		if err == nil && len(b) > maxMeta {
			err = errTooLarge{maxMeta}
		}
		return b, err
	}
	if mt != "multipart/related" {
		root, err = readRoot(r.Body)
		return root, nil, err
	}
	parts = map[string]*blob{}
	defer func() {
		if err != nil {
			for _, b := range parts {
				b.remove()
			}
			parts = nil
		}
	}()
	mr := multipart.NewReader(r.Body, params["boundary"])
	var used int64
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, parts, err
		}
		cid := strings.Trim(p.Header.Get("Content-ID"), "<>")
		if root == nil && (cid == strings.Trim(params["start"], "<>") || params["start"] == "") {
			if root, err = readRoot(p); err != nil {
				return nil, parts, err
			}
			continue
		}
		limit := s.opts.MaxShipment
		b, err := s.spool(p, limit+int64(len(parts)+1)*cmsOverhead-used, limit, nil)
		if err != nil {
			return nil, parts, err
		}
		used += b.size
		if old := parts[cid]; old != nil {
			old.remove()
		}
		parts[cid] = &b
	}
	if root == nil {
		return nil, parts, io.ErrUnexpectedEOF
	}
	return root, parts, nil
}

func xmlText(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func isUUID(s string) bool {
	return len(s) == 36 && strings.Count(s, "-") == 4 && !slices.ContainsFunc([]byte(s), func(c byte) bool {
		return !strings.ContainsRune("0123456789abcdefABCDEF-", rune(c))
	})
}

package dpisim

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/efm-go/efm/internal/simfault"
	"github.com/efm-go/efm/packaging/jws"
	"github.com/efm-go/efm/transport/dpi"
)

// maxPart caps each multipart part the simulator keeps in memory.
const maxPart = 200 << 20

type message struct {
	received    Received
	consumer    string // 0192:<orgnr> of the sender, who may read the receipts
	avsenderID  string
	created     time.Time
	sentAt      time.Time // when the access point reports SENDT
	failed      bool      // FEILET instead of SENDT
	failedAbout string
}

type receipt struct {
	id          string
	consumer    string
	kanal       string
	avsenderID  string
	availableAt time.Time
	token       string
	read        bool
}

func writeProblem(w http.ResponseWriter, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": title, "status": status, "detail": detail})
}

func decodeJSON(r *http.Request, v any) error {
	return json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v)
}

// claims are what the simulator reads from a Maskinporten access token.
type claims struct {
	Scope    string `json:"scope"`
	Exp      int64  `json:"exp"`
	Consumer struct {
		ID string `json:"ID"`
	} `json:"consumer"`
}

// auth checks the bearer token: signed by Maskinporten, not expired, with
// the DPI scope. It answers 401/403 itself and returns ok false then.
func (s *Sim) auth(w http.ResponseWriter, r *http.Request) (string, claims, bool) {
	var c claims
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		writeProblem(w, http.StatusUnauthorized, "Unauthorized", "missing bearer token")
		return "", c, false
	}
	payload, _, err := jws.Verify([]byte(tok), s.opts.MaskinportenKeys...)
	if err != nil || json.Unmarshal(payload, &c) != nil {
		writeProblem(w, http.StatusUnauthorized, "Unauthorized", "token not issued by Maskinporten")
		return "", c, false
	}
	if c.Exp != 0 && s.opts.Now().Unix() > c.Exp+10 {
		writeProblem(w, http.StatusUnauthorized, "Unauthorized", "token expired")
		return "", c, false
	}
	if !slices.Contains(strings.Fields(c.Scope), dpi.Scope) {
		writeProblem(w, http.StatusForbidden, "Forbidden", "token lacks scope "+dpi.Scope)
		return "", c, false
	}
	return tok, c, true
}

// send is POST /messages/out.
func (s *Sim) send(w http.ResponseWriter, r *http.Request) {
	tok, cl, ok := s.auth(w, r)
	if !ok {
		return
	}
	kanal := r.URL.Query().Get("kanal")
	if !validChannel(kanal) {
		writeProblem(w, http.StatusBadRequest, "Invalid kanal", "kanal must be letters a-z, A-Z, digits, _ and -")
		return
	}
	jwsPart, pkg, err := readParts(r)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, "Invalid multipart", err.Error())
		return
	}
	bm, cert, err := s.verifyBusinessMessage(jwsPart)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, "Invalid forretningsmelding", err.Error())
		return
	}
	if bm.Token != tok {
		writeProblem(w, http.StatusBadRequest, "Invalid forretningsmelding", "maskinportentoken is not the bearer token")
		return
	}
	if bm.Avsender.Virksomhetsidentifikator.Value != cl.Consumer.ID {
		writeProblem(w, http.StatusBadRequest, "Invalid forretningsmelding", "the token's consumer is not avsender.virksomhetsidentifikator")
		return
	}
	if bm.Header.Sender[0].Identifier.Value != "0192:"+orgOf(cert) {
		writeProblem(w, http.StatusBadRequest, "Invalid forretningsmelding", "the JWS is not signed with the sender's business certificate")
		return
	}
	sum := sha256.Sum256(pkg)
	if bm.Fingerprint.DigestMethod != dpi.DigestSHA256 || bm.Fingerprint.DigestValue != base64.StdEncoding.EncodeToString(sum[:]) {
		writeProblem(w, http.StatusBadRequest, "Invalid forretningsmelding", "dokumentpakkefingeravtrykk does not match the dokumentpakke")
		return
	}
	id := bm.Header.DocumentIdentification.InstanceIdentifier
	now := s.opts.Now()
	s.mu.Lock()
	if m, dup := s.messages[id]; dup {
		m.received.Duplicates++
		s.mu.Unlock()
		writeProblem(w, http.StatusBadRequest, "Duplicate message", "messageId "+id+" already received")
		return
	}
	sc := s.sched
	m := &message{consumer: cl.Consumer.ID, avsenderID: bm.Avsender.Avsenderidentifikator, created: now,
		sentAt: now.Add(time.Duration(sc.Sent))}
	m.received = Received{MessageID: id, ConversationID: bm.Header.ConversationID(), Type: bm.Type, Channel: kanal,
		Sender: bm.Header.Sender[0].Identifier.Value, Receiver: bm.Header.Receiver[0].Identifier.Value}
	s.messages[id] = m
	s.order = append(s.order, m)
	s.mu.Unlock()

	// Corners 3 and 4: the supplier opens the package now and answers over
	// time; what it finds decides the receipts.
	docs, titles, problemText := s.open(bm, pkg)
	s.mu.Lock()
	// Corner 3 accepts once the package is in: its SENDT is never stamped
	// before the access point has answered the sender.
	m.sentAt = s.opts.Now().Add(time.Duration(sc.Sent))
	m.received.Documents, m.received.Titles, m.received.Problem = docs, titles, problemText
	m.received.Notified = bm.notified()
	if bm.Print != nil {
		m.received.Address = &bm.Print.Mottaker
	}
	if sc.Outcome == "feilet" {
		m.failed, m.failedAbout = true, "Sending til mottakers aksesspunkt feilet"
	} else {
		s.scheduleReceipts(m, bm, sc, kanal, problemText)
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
}

// validChannel applies the OpenAPI's character rule. Its 28-character limit
// is not applied: the reference's own default channel,
// no_difi_move_integrasjonspunkt, is 30 characters and is in use.
func validChannel(k string) bool {
	if k == "" || len(k) > 64 {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func readParts(r *http.Request) (jwsPart, pkg []byte, err error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, nil, err
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		b, err := io.ReadAll(io.LimitReader(p, maxPart+1))
		if err != nil {
			return nil, nil, err
		}
		if len(b) > maxPart {
			return nil, nil, fmt.Errorf("part %s too large", p.FormName())
		}
		switch p.FormName() {
		case "forretningsmelding":
			jwsPart = b
		case "dokumentpakke":
			pkg = b
		}
	}
	if jwsPart == nil || pkg == nil {
		return nil, nil, fmt.Errorf("want parts forretningsmelding and dokumentpakke")
	}
	return jwsPart, pkg, nil
}

// businessMessage is the part of digital and utskrift the simulator reads.
type businessMessage struct {
	Type        string
	Header      dpi.Header
	Avsender    dpi.Avsender
	Token       string
	Fingerprint dpi.Fingerprint
	Mailbox     string
	Opening     bool
	Varsler     *dpi.Varsler
	Print       *dpi.Utskrift
}

func (b businessMessage) notified() []string {
	var out []string
	if b.Varsler != nil && b.Varsler.Epostvarsel != nil {
		out = append(out, "epost")
	}
	if b.Varsler != nil && b.Varsler.Smsvarsel != nil {
		out = append(out, "sms")
	}
	return out
}

// verifyBusinessMessage checks the JWS against its x5c certificate, that
// certificate against the roots, and the payload against its schema.
func (s *Sim) verifyBusinessMessage(token []byte) (*businessMessage, *x509.Certificate, error) {
	payload, leaf, err := dpi.VerifyJWS(token, s.opts.Roots, s.opts.Now())
	if err != nil {
		return nil, nil, err
	}
	typ, err := dpi.Validate(payload)
	if err != nil {
		return nil, nil, err
	}
	if typ != "digital" && typ != "utskrift" {
		return nil, nil, fmt.Errorf("type %s cannot be sent", typ)
	}
	var raw struct {
		SBD map[string]json.RawMessage `json:"standardBusinessDocument"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		return nil, nil, err
	}
	b := &businessMessage{Type: typ}
	if err := json.Unmarshal(raw.SBD["standardBusinessDocumentHeader"], &b.Header); err != nil {
		return nil, nil, err
	}
	if typ == "digital" {
		var d dpi.Digital
		if err := json.Unmarshal(raw.SBD[typ], &d); err != nil {
			return nil, nil, err
		}
		b.Avsender, b.Token, b.Fingerprint, b.Mailbox, b.Opening, b.Varsler = d.Avsender, d.Maskinportentoken,
			d.Dokumentpakkefingeravtrykk, d.Mottaker.Postkasseadresse, d.Aapningskvittering, d.Varsler
	} else {
		var u dpi.Utskrift
		if err := json.Unmarshal(raw.SBD[typ], &u); err != nil {
			return nil, nil, err
		}
		b.Avsender, b.Token, b.Fingerprint, b.Print = u.Avsender, u.Maskinportentoken, u.Dokumentpakkefingeravtrykk, &u
	}
	return b, leaf, nil
}

// statuses is GET /messages/out/{id}/statuses.
func (s *Sim) statuses(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := s.auth(w, r); !ok {
		return
	}
	s.mu.Lock()
	m, found := s.messages[r.PathValue("id")]
	var out []dpi.Status
	if found {
		out = append(out, dpi.Status{Status: "OPPRETTET", Timestamp: m.created})
		now := s.opts.Now()
		switch {
		case m.failed:
			out = append(out, dpi.Status{Status: "FEILET", Beskrivelse: m.failedAbout, Timestamp: m.sentAt})
		case !now.Before(m.sentAt):
			out = append(out, dpi.Status{Status: "SENDT", Timestamp: m.sentAt})
		}
	}
	s.mu.Unlock()
	if !found {
		writeProblem(w, http.StatusNotFound, "Not found", "no such message")
		return
	}
	simfault.WriteJSON(w, http.StatusOK, out)
}

// incoming is GET /messages/in: the caller's unread receipts for the
// channel and sender identifier, oldest first.
func (s *Sim) incoming(w http.ResponseWriter, r *http.Request) {
	_, cl, ok := s.auth(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	kanal, avs := strings.ToLower(q.Get("kanal")), q.Get("avsenderidentifikator")
	size := 100
	if v, err := strconv.Atoi(q.Get("page_size")); err == nil && v > 0 && v < size {
		size = v
	}
	now := s.opts.Now()
	type item struct {
		Forretningsmelding string `json:"forretningsmelding"`
		// Receipts have no document package; the OpenAPI allows no null
		// here, so the field is left out.
		Downloadurl *string `json:"downloadurl,omitempty"`
	}
	out := []item{}
	s.mu.Lock()
	for _, rc := range s.receipts {
		if len(out) >= size {
			break
		}
		if rc.read || rc.consumer != cl.Consumer.ID || now.Before(rc.availableAt) || rc.avsenderID != avs ||
			(kanal != "" && rc.kanal != kanal) {
			continue
		}
		out = append(out, item{Forretningsmelding: rc.token})
	}
	s.mu.Unlock()
	if len(out) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	simfault.WriteJSON(w, http.StatusOK, out)
}

// read is POST /messages/in/{id}/read.
func (s *Sim) read(w http.ResponseWriter, r *http.Request) {
	_, cl, ok := s.auth(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	s.mu.Lock()
	found := false
	for _, rc := range s.receipts {
		if rc.id == id && rc.consumer == cl.Consumer.ID {
			rc.read, found = true, true
		}
	}
	s.mu.Unlock()
	if !found {
		writeProblem(w, http.StatusNotFound, "Not found", "no such incoming message")
		return
	}
	w.WriteHeader(http.StatusOK)
}

// Package dpfsim simulates KS FIKS for DPF (spec channels.md §9.13) on one
// host, as svarut.ks.no serves both: SvarUt REST (v3 send, v2 status,
// external reference, shipment types) under /api, and SvarInn under
// /tjenester/svarinn.
//
// SvarUt checks the Maskinporten token (scope ks:fiks, consumer = the
// account's organisation) and the integration headers, decrypts every
// document with SvarUt's key and records what arrived. Statuses move MOTTATT
// → KLAR_FOR_MOTTAK → LEST on timers; a shipment to an organisation with a
// SvarInn account (the bridge) waits in that account instead and becomes
// LEST when the receiver acknowledges it, as KS does.
//
// Size rules are SvarUt's own: at most 350 MB of documents in a shipment
// that may go to print, refused with ErrorMessage 400 (REST) or a SOAP
// fault, never cut; digital-only shipments up to Options.MaxShipment.
// Documents over a few MiB are spooled to Options.Dir and decrypted from
// there; Close and /_sim/reset remove them.
//
// SvarInn serves each account's shipments, the download as a CMS of a ZIP
// encrypted to the receiving organisation's certificate (RSAES-OAEP,
// AES-256-CBC), kvitterMottak and mottakFeilet.
//
// Control API under /_sim/:
//
//	POST /_sim/reset
//	POST /_sim/faults, DELETE /_sim/faults, GET /_sim/requests   as simfault
//	GET  /_sim/shipments               what SvarUt received (metadata, document names, sizes and SHA-256)
//	POST /_sim/soapfault               {"reason": "Duplikat ...", "times": n}: the next SOAP calls fault
//	POST /_sim/svarinn/{org}           add an incoming shipment: {"tittel", "files": {name: base64}, "corrupt": bool}
//	GET  /_sim/svarinn/{org}           {"waiting": n}
//	DELETE /_sim/svarinn/{org}         empty an account (tests sharing one simulator)
//	GET  /_sim/svarinn/{org}/failed    the mottakFeilet reports of an account
package dpfsim

import (
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/efm-go/efm/internal/simfault"
)

// RESTAccount is a SvarUt sending account (REST).
type RESTAccount struct {
	KontoID string // UUID in the paths
	Org     string // the token's consumer must be this organisation
}

// InnAccount is a SvarInn receiving system.
type InnAccount struct {
	Username, Password string
	Org                string
	// Cert is the organisation's certificate the downloads are encrypted to.
	Cert *x509.Certificate
}

// Schedule is the status timeline of a shipment that is not bridged.
type Schedule struct {
	Ready simfault.Duration `json:"ready"` // MOTTATT → KLAR_FOR_MOTTAK
	Read  simfault.Duration `json:"read"`  // → LEST, after Ready
}

// DefaultSchedule is short enough for tests.
var DefaultSchedule = Schedule{Ready: simfault.Duration(50 * time.Millisecond), Read: simfault.Duration(150 * time.Millisecond)}

// Options configures a Sim.
type Options struct {
	// MaskinportenKey verifies REST bearer tokens. Required.
	MaskinportenKey *rsa.PublicKey
	// Key and Cert are SvarUt's: documents must decrypt with them. Required.
	Key  *rsa.PrivateKey
	Cert *x509.Certificate
	// IntegrasjonID and IntegrasjonPassord are the one KS integration the
	// REST API accepts.
	IntegrasjonID, IntegrasjonPassord string
	REST                              []RESTAccount
	// SOAP are the SOAP API's accounts (HTTP Basic).
	SOAP    []SOAPAccount
	SvarInn []InnAccount
	// ForsendelseTyper is the seeded list of shipment types.
	ForsendelseTyper []string
	Schedule         *Schedule
	Now              func() time.Time // default time.Now
	// Dir is where documents over a few MiB are kept while the simulator
	// holds their shipment; default os.TempDir(). Close removes them.
	Dir string
	// MaxShipment caps the documents of a digital-only shipment
	// (kunDigitalLevering); default DefaultMaxShipment. Shipments that may
	// be printed are capped at PrintLimit, as SvarUt does.
	MaxShipment int64
}

// Document is a received document, decrypted.
type Document struct {
	Filnavn  string `json:"filnavn"`
	MimeType string `json:"mimeType"`
	Size     int    `json:"size"`
	SHA256   string `json:"sha256"` // of the content, hex
	body     blob
}

// Shipment is what SvarUt received.
type Shipment struct {
	ID         string         `json:"id"`
	Sender     string         `json:"sender"`
	Receiver   string         `json:"receiver"`
	EksternRef string         `json:"eksternRef"`
	Tittel     string         `json:"tittel"`
	Type       string         `json:"forsendelsestype,omitempty"`
	Metadata   map[string]any `json:"metadata"` // the forsendelse as sent
	Documents  []Document     `json:"documents"`
	Status     string         `json:"status"`
	Changed    time.Time      `json:"sisteStatusEndring"`
	Via        string         `json:"via"` // rest or soap
	created    time.Time
	bridged    bool
}

// incoming is a shipment waiting in a SvarInn account.
type incoming struct {
	shipment map[string]any // hentNyeForsendelser entry
	id       string
	files    []file
	corrupt  bool
	from     *Shipment // nil when added through /_sim/
}

// Failure is a mottakFeilet report.
type Failure struct {
	ID          string `json:"id"`
	Feilmelding string `json:"feilmelding"`
	Permanent   bool   `json:"permanent"`
}

// Sim is the FIKS simulator. Safe for concurrent use.
type Sim struct {
	opts    Options
	faults  *simfault.Injector
	handler http.Handler

	mu        sync.Mutex
	sched     Schedule
	shipments []*Shipment
	byID      map[string]*Shipment
	inboxes   map[string][]*incoming // org → waiting
	failures  map[string][]Failure   // org → mottakFeilet
	// soapFaults are injected fault reasons, one per coming SOAP call.
	soapFaults []string
}

// New returns a Sim.
func New(opts Options) (*Sim, error) {
	if opts.MaskinportenKey == nil || opts.Key == nil || opts.Cert == nil {
		return nil, errors.New("dpfsim: MaskinportenKey, Key and Cert are required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Dir == "" {
		opts.Dir = os.TempDir()
	}
	if opts.MaxShipment <= 0 {
		opts.MaxShipment = DefaultMaxShipment
	}
	s := &Sim{opts: opts, sched: DefaultSchedule}
	if opts.Schedule != nil {
		s.sched = *opts.Schedule
	}
	s.faults = simfault.New(simfault.Options{Match: simfault.Pattern, StatusAnswer: errorMessage, OnReset: func() {
		s.mu.Lock()
		s.resetLocked()
		s.mu.Unlock()
	}})
	s.resetLocked()
	mux := http.NewServeMux()
	s.restRoutes(mux)
	s.soapRoutes(mux)
	s.innRoutes(mux)
	s.controlRoutes(mux)
	s.faults.Routes(mux)
	s.handler = s.faults.Wrap(mux)
	return s, nil
}

func (s *Sim) resetLocked() {
	for _, sh := range s.shipments {
		removeAll(sh.Documents)
	}
	s.shipments, s.byID = nil, map[string]*Shipment{}
	s.inboxes, s.failures = map[string][]*incoming{}, map[string][]Failure{}
	s.soapFaults = nil
}

func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Faults gives tests direct access to failure injection.
func (s *Sim) Faults() *simfault.Injector { return s.faults }

// SetSchedule replaces the timeline for shipments received afterwards.
func (s *Sim) SetSchedule(sc Schedule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sched = sc
}

// Shipments returns copies of what SvarUt received, oldest first.
func (s *Sim) Shipments() []Shipment {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Shipment, 0, len(s.shipments))
	for _, sh := range s.shipments {
		s.advanceLocked(sh)
		out = append(out, *sh)
	}
	return out
}

// DocumentData returns a received document's decrypted bytes.
func (s *Sim) DocumentData(id, filnavn string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.byID[id]
	if sh == nil {
		return nil, false
	}
	for _, d := range sh.Documents {
		if d.Filnavn == filnavn {
			rc, err := d.body.open()
			if err != nil {
				return nil, false
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			return b, err == nil
		}
	}
	return nil, false
}

// Deliveries counts shipments per external reference (messageId): more than
// one is a doubled message.
func (s *Sim) Deliveries() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, sh := range s.shipments {
		out[sh.EksternRef]++
	}
	return out
}

// Failures returns the mottakFeilet reports of an organisation's account.
func (s *Sim) Failures(org string) []Failure {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Failure(nil), s.failures[org]...)
}

// Waiting counts the shipments waiting in an organisation's SvarInn account.
func (s *Sim) Waiting(org string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.inboxes[org])
}

// advanceLocked moves a shipment along its timeline.
func (s *Sim) advanceLocked(sh *Shipment) {
	if sh.bridged || sh.Status == "LEST" {
		return
	}
	now := s.opts.Now()
	ready := sh.created.Add(time.Duration(s.sched.Ready))
	read := ready.Add(time.Duration(s.sched.Read))
	switch {
	case !now.Before(read):
		sh.Status, sh.Changed = "LEST", read
	case !now.Before(ready) && sh.Status == "MOTTATT":
		sh.Status, sh.Changed = "KLAR_FOR_MOTTAK", ready
	}
}

// innAccount finds the SvarInn account of an organisation.
func (s *Sim) innAccount(org string) *InnAccount {
	for i := range s.opts.SvarInn {
		if s.opts.SvarInn[i].Org == org {
			return &s.opts.SvarInn[i]
		}
	}
	return nil
}

func newID() string { return uuid.NewString() }

// Duration and Fault name simfault's types for packages outside transport.
type (
	Duration = simfault.Duration
	Fault    = simfault.Fault
)

// Package dpisim simulates the DPI access point ("corner 2") and, behind it,
// the mailbox suppliers and the print service ("corners 3 and 4"), as spec
// channels.md §9.12 describes: the access point checks the bearer token,
// the business message's JWS, x5c chain and JSON Schema, that the token in
// the message is the bearer, that the token's consumer is the sender, the
// fingerprint of the package and that the messageId is new, and answers
// problem+json 400/401/403 otherwise. Behind it the supplier (or the print
// service) decrypts the CMS with the citizen's (or the print) key, checks
// the XAdES signature, the digests and the DPI manifest, and sends signed
// receipts over time.
//
// Control API under /_sim/ (not part of the access point):
//
//	POST   /_sim/reset
//	POST   /_sim/faults, DELETE /_sim/faults, GET /_sim/requests   as simfault
//	GET    /_sim/config, POST /_sim/config   Schedule (delays and outcomes)
//	GET    /_sim/messages                    what the citizens received
package dpisim

import (
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/efm-go/efm/internal/simfault"
	"github.com/efm-go/efm/transport/dpi"
)

// Identity is a key and its certificate.
type Identity struct {
	Key  *rsa.PrivateKey
	Cert *x509.Certificate
}

// Schedule is the timeline of every message sent from now on, settable
// through /_sim/config. Outcome picks the receipts:
//
//	""                 digital: leveringskvittering, then aapningskvittering
//	                   when asked for; print: mottakskvittering
//	"feil"             a feil receipt (feiltype SERVER)
//	"varslingfeilet"   leveringskvittering, then varslingfeiletkvittering
//	"returpost"        print: mottakskvittering, then returpostkvittering
//	"early"            the delivery receipt before the access point says SENDT
//	"unknown"          a receipt of a type no schema knows
//	"badsig"           a delivery receipt whose signature fails, then a good one
//	"feilet"           the access point reports FEILET and nothing else comes
type Schedule struct {
	Sent    simfault.Duration `json:"sent"`    // OPPRETTET → SENDT
	Deliver simfault.Duration `json:"deliver"` // after SENDT: the delivery receipt
	Open    simfault.Duration `json:"open"`    // after delivery: the opening receipt
	Outcome string            `json:"outcome,omitempty"`
}

// DefaultSchedule is short enough for tests.
var DefaultSchedule = Schedule{Sent: simfault.Duration(50 * time.Millisecond), Deliver: simfault.Duration(100 * time.Millisecond),
	Open: simfault.Duration(200 * time.Millisecond)}

// Options configure a Sim.
type Options struct {
	// MaskinportenKeys verify bearer tokens; required.
	MaskinportenKeys []*rsa.PublicKey
	// Roots are the CAs of the business certificates (the senders' JWS and
	// XAdES signatures); required.
	Roots *x509.CertPool
	// Mailboxes are the citizens' encryption keys by postkasseadresse.
	Mailboxes map[string]Identity
	// Print is the print service's key (KRR's print certificate).
	Print *Identity
	// Suppliers sign receipts, by organisation number (mailbox suppliers and
	// the print provider); a receiver without one gets no receipts.
	Suppliers map[string]Identity
	Schedule  *Schedule
	Now       func() time.Time
}

// Sim is the access point with corners 3 and 4. It is safe for concurrent use.
type Sim struct {
	opts    Options
	faults  *simfault.Injector
	handler http.Handler

	mu       sync.Mutex
	sched    Schedule
	messages map[string]*message // by messageId
	order    []*message
	receipts []*receipt
}

// New returns a Sim.
func New(opts Options) (*Sim, error) {
	if len(opts.MaskinportenKeys) == 0 {
		return nil, errors.New("dpisim: MaskinportenKeys is required")
	}
	if opts.Roots == nil {
		return nil, errors.New("dpisim: Roots is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Sim{opts: opts, sched: DefaultSchedule}
	if opts.Schedule != nil {
		s.sched = *opts.Schedule
	}
	s.faults = simfault.New(simfault.Options{Match: simfault.Pattern, FlatRequests: true, OnReset: func() {
		s.mu.Lock()
		s.resetLocked()
		s.mu.Unlock()
	}})
	s.resetLocked()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /messages/out", s.send)
	mux.HandleFunc("GET /messages/out/{id}/statuses", s.statuses)
	mux.HandleFunc("GET /messages/in", s.incoming)
	mux.HandleFunc("POST /messages/in/{id}/read", s.read)
	mux.HandleFunc("GET /_sim/config", s.getConfig)
	mux.HandleFunc("POST /_sim/config", s.setConfig)
	mux.HandleFunc("GET /_sim/messages", s.listMessages)
	s.faults.Routes(mux)
	s.handler = s.faults.Wrap(mux)
	return s, nil
}

func (s *Sim) resetLocked() {
	s.messages = map[string]*message{}
	s.order = nil
	s.receipts = nil
}

// ServeHTTP implements http.Handler.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Faults is the fault injector, for tests.
func (s *Sim) Faults() *simfault.Injector { return s.faults }

// SetSchedule changes the timeline of messages sent from now on.
func (s *Sim) SetSchedule(sc Schedule) {
	s.mu.Lock()
	s.sched = sc
	s.mu.Unlock()
}

// Received is what one message brought the citizen (or the print service).
type Received struct {
	MessageID      string   `json:"messageId"`
	ConversationID string   `json:"conversationId"`
	Type           string   `json:"type"` // digital or utskrift
	Channel        string   `json:"kanal"`
	Sender         string   `json:"sender"`   // 0192:<orgnr>
	Receiver       string   `json:"receiver"` // 0192:<supplier>
	Documents      []string `json:"documents"`
	Titles         []string `json:"titles"`
	// Notified lists the notification channels used (epost, sms), never the
	// addresses themselves.
	Notified []string `json:"notified,omitempty"`
	// Address is where the print service sends a printed letter.
	Address *dpi.Address `json:"address,omitempty"`
	// Problem is why corner 3/4 refused the package ("" when it opened).
	Problem string `json:"problem,omitempty"`
	// Duplicates counts sends of this messageId the access point refused as
	// already received: a client that retries blindly after a lost answer.
	Duplicates int `json:"duplicates"`
}

// Messages returns what arrived, oldest first.
func (s *Sim) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Received, 0, len(s.order))
	for _, m := range s.order {
		out = append(out, m.received)
	}
	return out
}

func (s *Sim) listMessages(w http.ResponseWriter, _ *http.Request) {
	simfault.WriteJSON(w, http.StatusOK, map[string]any{"messages": s.Messages()})
}

func (s *Sim) getConfig(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	sc := s.sched
	s.mu.Unlock()
	simfault.WriteJSON(w, http.StatusOK, sc)
}

func (s *Sim) setConfig(w http.ResponseWriter, r *http.Request) {
	var sc Schedule
	if err := decodeJSON(r, &sc); err != nil {
		writeProblem(w, http.StatusBadRequest, "Invalid config", err.Error())
		return
	}
	switch sc.Outcome {
	case "", "feil", "varslingfeilet", "returpost", "early", "unknown", "feilet", "badsig":
	default:
		writeProblem(w, http.StatusBadRequest, "Invalid config", "unknown outcome "+sc.Outcome)
		return
	}
	s.SetSchedule(sc)
	simfault.WriteJSON(w, http.StatusOK, sc)
}

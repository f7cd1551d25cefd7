// Package dposim simulates Altinn 3 Broker as eFormidling's DPO uses it
// (spec channels.md §9.10) and the integration points of simulated peer
// organisations behind it.
//
// The broker routes file transfers by recipient org, so two real daemons
// pointed at one Sim exchange messages with each other. For recipients
// configured as peers the Sim itself plays the receiving integration point:
// it downloads and confirms the transfer, optionally checks the package
// (Options.Open), and on a schedule uploads back a status MOTTATT, a status
// LEVERT and, for arkivmelding, an arkivmelding_kvittering, each echoing the
// messageId and conversationId and honouring the message-channel rule.
//
// Control API under /_sim/ (not part of the broker protocol):
//
//	POST   /_sim/reset              forget transfers, faults and counters
//	POST   /_sim/faults             {"path": "/broker/api/v1/filetransfer/*/upload", "method": "POST",
//	                                 "status": 503, "times": 2, "delay": "2s", "drop": true, "after": true}
//	DELETE /_sim/faults
//	GET    /_sim/requests           request counts by route
//	POST   /_sim/delay              {"ms": 250} latency added to every answer
//	GET    /_sim/config, POST /_sim/config   Schedule (delays, dropped receipts, kvittering type, publish hold, failed uploads)
//	GET    /_sim/peers, POST /_sim/peers     {"org": "910075918"} makes an org a simulated peer
//	GET    /_sim/deliveries          {"deliveries": {messageId: n}, "statuses": {messageId: ["MOTTATT", ...]}, "duplicates": [...]}
//	GET    /_sim/transfers           every transfer's overview
//	POST   /_sim/send                {"sender": "0192:…", "recipient": "0192:…", "sbd": {...}, "asic": "<base64>", "reference": ""}
//	                                 originate a message, as a peer would
package dposim

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/efm-go/efm/internal/simfault"
	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/altinn/altinnsim"
	"github.com/efm-go/efm/transport/dpo"
	"github.com/google/uuid"
)

// BasePath is where the broker API is mounted, as in the real URL.
const BasePath = "/broker/api/v1"

// Verifier checks the bearer token of a broker request; *altinnsim.Sim is one.
type Verifier interface {
	VerifyRequest(r *http.Request) (altinnsim.Claims, error)
}

// Schedule is the simulated peers' and broker's timing, settable at run time
// through POST /_sim/config.
type Schedule struct {
	// PublishDelay is the broker's virus scan between upload and Published.
	PublishDelay simfault.Duration `json:"publishDelay"`
	// Mottatt, Levert and Kvittering are the delays after publication at
	// which a peer answers.
	Mottatt    simfault.Duration `json:"mottatt"`
	Levert     simfault.Duration `json:"levert"`
	Kvittering simfault.Duration `json:"kvittering"`
	// Drop lists answers peers never send: "MOTTATT", "LEVERT", "kvittering".
	Drop []string `json:"drop,omitempty"`
	// KvitteringType is the arkivmelding_kvittering receiptType; "" means
	// OK; "none" sends no kvittering.
	KvitteringType string `json:"kvitteringType,omitempty"`
	// HoldPublish keeps uploads in UploadProcessing forever.
	HoldPublish bool `json:"holdPublish,omitempty"`
	// FailUploads makes the next n uploads end in Failed.
	FailUploads int `json:"failUploads,omitempty"`
}

// DefaultSchedule is short enough for tests: a message reaches LEVERT well
// under a second after upload.
var DefaultSchedule = Schedule{
	PublishDelay: simfault.Duration(20 * time.Millisecond),
	Mottatt:      simfault.Duration(50 * time.Millisecond),
	Levert:       simfault.Duration(100 * time.Millisecond),
	Kvittering:   simfault.Duration(150 * time.Millisecond),
}

// Options configures a Sim.
type Options struct {
	// Auth verifies Altinn tokens. Required.
	Auth Verifier
	// ResourceID is the only resource the broker serves; default
	// dpo.DefaultResourceID.
	ResourceID string
	// Peers are the organisation numbers whose integration point the Sim plays.
	Peers []string
	// Schedule; the zero value means DefaultSchedule.
	Schedule *Schedule
	// Open, when not nil, checks a package a peer receives the way its
	// integration point would (decrypt with the peer's key, verify the ASiC
	// digests and manifest). asic streams the package, nil when the message
	// has none. A peer that cannot open a package sends no receipts; the
	// failure shows in /_sim/deliveries as peerErrors.
	Open func(peerOrg string, sbd []byte, asic io.Reader) error
	// MaxFileTransferSize is the served resource's maxFileTransferSize;
	// 0 leaves it unset, so the broker's own cap applies
	// (DefaultMaxFileTransferSize). SetResource and PUT /resource change it.
	MaxFileTransferSize int64
	// Dir is where uploads larger than a few MiB are kept until every
	// recipient confirmed them; default os.TempDir().
	Dir string
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Sim is the broker and its peers. It is safe for concurrent use.
type Sim struct {
	opts    Options
	faults  *simfault.Injector
	handler http.Handler

	mu        sync.Mutex
	sched     Schedule
	peers     map[string]bool
	resources map[string]Resource
	transfers map[string]*transfer
	order     []*transfer // creation order
	// waiting indexes published transfers by recipient org while that
	// recipient has not started downloading: the daemons' poll asks for
	// exactly these, and scanning every transfer ever made would not keep
	// up with a benchmark's load.
	waiting    map[string]map[*transfer]bool
	deliveries map[string]int
	statuses   map[string][]string
	peerErrors map[string]string
	timers     simfault.Timers // pending peer answers
}

type recipient struct {
	org     string // 0192:<orgnr>
	status  string
	changed time.Time
}

type statusEvent struct {
	Status  string    `json:"fileTransferStatus"`
	Changed time.Time `json:"fileTransferStatusChanged"`
}

type transfer struct {
	id, resourceID, fileName, ref, sender string
	recipients                            []*recipient
	status                                string
	changed, created, expires             time.Time
	file                                  *blob // nil before the upload and after the purge
	size                                  int64
	checksum                              string
	props                                 map[string]string
	history                               []statusEvent
	// known is the header of a file the simulator wrote itself, so that
	// publishing it need not read it back; nil for uploads.
	known *transport.Header
}

// New returns a Sim.
func New(opts Options) (*Sim, error) {
	if opts.Auth == nil {
		return nil, errors.New("dposim: Auth is required")
	}
	if opts.ResourceID == "" {
		opts.ResourceID = dpo.DefaultResourceID
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Dir == "" {
		opts.Dir = os.TempDir()
	}
	s := &Sim{opts: opts, peers: map[string]bool{}, resources: map[string]Resource{}}
	if err := s.SetResource(opts.ResourceID, Resource{MaxFileTransferSize: opts.MaxFileTransferSize}); err != nil {
		return nil, fmt.Errorf("dposim: %w", err)
	}
	s.faults = simfault.New(simfault.Options{Match: simfault.Pattern, FlatRequests: true, OnReset: func() {
		s.mu.Lock()
		s.resetLocked()
		s.mu.Unlock()
	}})
	s.sched = DefaultSchedule
	if opts.Schedule != nil {
		s.sched = *opts.Schedule
	}
	for _, p := range opts.Peers {
		s.peers[transport.OrgNumber(p)] = true
	}
	s.resetLocked()
	mux := http.NewServeMux()
	s.routes(mux)
	s.resourceRoutes(mux)
	s.faults.Routes(mux)
	s.handler = s.faults.Wrap(mux)
	return s, nil
}

func (s *Sim) resetLocked() {
	s.timers.Reset()
	s.purgeAllLocked()
	s.transfers = map[string]*transfer{}
	s.order = nil
	s.waiting = map[string]map[*transfer]bool{}
	s.deliveries = map[string]int{}
	s.statuses = map[string][]string{}
	s.peerErrors = map[string]string{}
}

func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Faults gives tests direct access to failure injection.
func (s *Sim) Faults() *simfault.Injector { return s.faults }

// Close stops pending peer answers and removes the files kept on disk.
func (s *Sim) Close() {
	s.timers.Close()
	s.mu.Lock()
	s.purgeAllLocked()
	s.mu.Unlock()
}

func (s *Sim) purgeAllLocked() {
	for _, t := range s.transfers {
		if t.file != nil {
			t.file.remove()
			t.file = nil
		}
	}
}

// SetSchedule replaces the schedule.
func (s *Sim) SetSchedule(sc Schedule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sched = sc
}

// AddPeer makes org (an organisation number) a simulated peer.
func (s *Sim) AddPeer(org string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peers[transport.OrgNumber(org)] = true
}

// Deliveries counts published business messages by messageId; a count
// above one is a duplicate delivery.
func (s *Sim) Deliveries() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.deliveries))
	for k, v := range s.deliveries {
		out[k] = v
	}
	return out
}

// Statuses lists the status messages published for each messageId, in order.
func (s *Sim) Statuses() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]string, len(s.statuses))
	for k, v := range s.statuses {
		out[k] = append([]string(nil), v...)
	}
	return out
}

func (s *Sim) setStatusLocked(t *transfer, status string) {
	now := s.opts.Now().UTC()
	t.status, t.changed = status, now
	t.history = append(t.history, statusEvent{Status: status, Changed: now})
}

// newTransferLocked creates a transfer in Initialized.
func (s *Sim) newTransferLocked(req dpo.InitializeRequest) *transfer {
	now := s.opts.Now().UTC()
	t := &transfer{id: uuid.NewString(), resourceID: req.ResourceID, fileName: req.FileName,
		ref: req.SendersFileTransferReference, sender: req.Sender, created: now,
		expires: now.Add(30 * 24 * time.Hour), props: req.PropertyList}
	if t.props == nil {
		t.props = map[string]string{}
	}
	for _, r := range req.Recipients {
		t.recipients = append(t.recipients, &recipient{org: r, status: dpo.RecipientInitialized, changed: now})
	}
	s.setStatusLocked(t, dpo.StatusInitialized)
	s.transfers[t.id] = t
	s.order = append(s.order, t)
	return t
}

// storeLocked takes an upload and schedules publication.
func (s *Sim) storeLocked(t *transfer, file *blob, checksum string) {
	t.file, t.size, t.checksum = file, file.size, checksum
	s.setStatusLocked(t, dpo.StatusUploadProcessing)
	if s.sched.FailUploads > 0 {
		s.sched.FailUploads--
		s.setStatusLocked(t, dpo.StatusFailed)
		return
	}
	if s.sched.HoldPublish {
		return
	}
	s.timers.After(time.Duration(s.sched.PublishDelay), func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.publishLocked(t)
	})
}

// publishLocked makes a transfer visible to its recipients, counts the
// delivery and lets peers answer.
func (s *Sim) publishLocked(t *transfer) {
	if t.status != dpo.StatusUploadProcessing {
		return
	}
	s.setStatusLocked(t, dpo.StatusPublished)
	for _, r := range t.recipients {
		if r.status == dpo.RecipientInitialized {
			w := s.waiting[r.org]
			if w == nil {
				w = map[*transfer]bool{}
				s.waiting[r.org] = w
			}
			w[t] = true
		}
	}
	if t.known != nil && !s.toPeerLocked(t) {
		s.countLocked(*t.known)
		return
	}
	fh, err := t.file.open()
	if err != nil {
		return
	}
	rd := newSharedReader(fh)
	defer rd.release()
	f, err := dpo.ParseFile(rd, t.size)
	if err != nil {
		return // an unreadable file is still published; receivers discard it
	}
	s.countLocked(f.Header)
	for _, r := range t.recipients {
		if s.peers[transport.OrgNumber(r.org)] {
			s.peerReceiveLocked(t, r, f, rd)
		}
	}
}

// countLocked counts a published message for /_sim/deliveries.
func (s *Sim) countLocked(h transport.Header) {
	if h.Type == transport.TypeStatus {
		s.statuses[h.MessageID] = append(s.statuses[h.MessageID], h.Status)
	} else {
		s.deliveries[h.MessageID]++
	}
}

func (s *Sim) toPeerLocked(t *transfer) bool {
	for _, r := range t.recipients {
		if s.peers[transport.OrgNumber(r.org)] {
			return true
		}
	}
	return false
}

func (s *Sim) dropped(what string) bool {
	for _, d := range s.sched.Drop {
		if d == what {
			return true
		}
	}
	return false
}

// setRecipientLocked moves a recipient on and keeps the waiting index.
func (s *Sim) setRecipientLocked(t *transfer, r *recipient, status string) {
	r.status, r.changed = status, s.opts.Now().UTC()
	if status != dpo.RecipientInitialized {
		delete(s.waiting[r.org], t)
	}
}

// Duration and Fault name simfault's types for packages outside transport
// (the sandbox), which cannot import an internal package: a Schedule is
// written with Duration(200*time.Millisecond), a fault with Faults().Add(Fault{...}).
type (
	Duration = simfault.Duration
	Fault    = simfault.Fault
)

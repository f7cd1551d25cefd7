// Package dpesim simulates the Azure Service Bus REST API as DPE uses it,
// and the eInnsyn integration point behind it (spec channels.md §9.14).
//
// Queues are created on first use. Every request must carry a shared access
// signature made with a seeded key (§7.1); an expired se or a bad sig is 401.
// Peek-lock hands out a message with a lock token; a locked message
// reappears when its lock expires; DELETE with the lock token completes it.
// Duplicate detection drops a message whose MessageId the queue saw within
// Schedule.DuplicateWindow, answering 201 like the bus does.
//
// Queues of peer orgs (eInnsyn) are consumed by the Sim itself: it answers a
// message with status MOTTATT and LEVERT and, for publisering, an
// einnsyn_kvittering, on the sender's queue and on a schedule.
//
// Control API under /_sim/:
//
//	POST   /_sim/reset
//	POST   /_sim/faults, DELETE /_sim/faults, GET /_sim/requests   as simfault
//	GET    /_sim/config, POST /_sim/config   Schedule
//	GET    /_sim/deliveries   {"deliveries": {messageId: n}, "statuses": {...}, "duplicates": [...], "deduplicated": n}
//	GET    /_sim/queues       message counts per queue
//	POST   /_sim/send         {"queue": "nextbestqueue…", "sbd": {...}, "asic": "<base64 of the CMS>"}
package dpesim

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/efm-go/efm/internal/simfault"
	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/dpe"
	"github.com/google/uuid"
)

// Schedule is the Sim's timing, settable at run time through /_sim/config.
type Schedule struct {
	Mottatt    simfault.Duration `json:"mottatt"`
	Levert     simfault.Duration `json:"levert"`
	Kvittering simfault.Duration `json:"kvittering"`
	// Drop lists answers the peer never sends: "MOTTATT", "LEVERT", "kvittering".
	Drop []string `json:"drop,omitempty"`
	// LockDuration is the peek-lock duration; Azure's default is 30 s.
	LockDuration simfault.Duration `json:"lockDuration"`
	// DuplicateWindow is the duplicate detection history; Azure's default is 10 min.
	DuplicateWindow simfault.Duration `json:"duplicateWindow"`
	// ReceiptQueue is the queue suffix peers send answers to; default innsyn
	// (eInnsyn runs in mode data, which answers to innsyn, §7.2).
	ReceiptQueue string `json:"receiptQueue,omitempty"`
}

// DefaultSchedule is short enough for tests.
var DefaultSchedule = Schedule{
	Mottatt:         simfault.Duration(50 * time.Millisecond),
	Levert:          simfault.Duration(100 * time.Millisecond),
	Kvittering:      simfault.Duration(150 * time.Millisecond),
	LockDuration:    simfault.Duration(30 * time.Second),
	DuplicateWindow: simfault.Duration(10 * time.Minute),
}

// Options configures a Sim.
type Options struct {
	// Keys are the accepted SAS key names and keys. Required.
	Keys map[string]string
	// Peers are the eInnsyn organisation numbers whose queues the Sim consumes.
	Peers []string
	// Schedule; nil means DefaultSchedule.
	Schedule *Schedule
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Sim is the bus and its eInnsyn peer. It is safe for concurrent use.
type Sim struct {
	opts    Options
	faults  *simfault.Injector
	handler http.Handler

	mu           sync.Mutex
	sched        Schedule
	peers        map[string]bool
	queues       map[string]*queue
	seq          int64
	deliveries   map[string]int
	statuses     map[string][]string
	deduplicated int
	timers       simfault.Timers // pending peer answers
}

type message struct {
	props       dpe.BrokerProperties
	body        []byte
	lockedUntil time.Time
	enqueued    time.Time
}

type queue struct {
	messages []*message
	seen     map[string]time.Time // MessageId → when, for duplicate detection
}

// New returns a Sim.
func New(opts Options) (*Sim, error) {
	if len(opts.Keys) == 0 {
		return nil, errors.New("dpesim: Keys is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Sim{opts: opts, peers: map[string]bool{}}
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
		s.peers[p] = true
	}
	s.resetLocked()
	mux := http.NewServeMux()
	s.routes(mux)
	s.faults.Routes(mux)
	s.handler = s.faults.Wrap(mux)
	return s, nil
}

func (s *Sim) resetLocked() {
	s.timers.Reset()
	s.queues = map[string]*queue{}
	s.deliveries = map[string]int{}
	s.statuses = map[string][]string{}
	s.deduplicated = 0
}

func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Faults gives tests direct access to failure injection.
func (s *Sim) Faults() *simfault.Injector { return s.faults }

// SetSchedule replaces the schedule.
func (s *Sim) SetSchedule(sc Schedule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sched = sc
}

// Close stops pending peer answers.
func (s *Sim) Close() {
	s.timers.Close()
}

func (s *Sim) queueLocked(name string) *queue {
	q := s.queues[name]
	if q == nil {
		q = &queue{seen: map[string]time.Time{}}
		s.queues[name] = q
	}
	return q
}

// peerOf returns the peer org whose queue name is, or "".
func (s *Sim) peerOf(queueName string) string {
	rest, ok := strings.CutPrefix(queueName, "nextbestqueue")
	if !ok || len(rest) < 9 {
		return ""
	}
	if org := rest[:9]; s.peers[org] {
		return org
	}
	return ""
}

// enqueueLocked stores a message, applying duplicate detection, counting
// deliveries and letting a peer consume it. It reports whether the message
// was kept.
func (s *Sim) enqueueLocked(queueName string, props dpe.BrokerProperties, body []byte) bool {
	now := s.opts.Now()
	q := s.queueLocked(queueName)
	if props.MessageID == "" {
		props.MessageID = uuid.NewString()
	}
	if at, ok := q.seen[props.MessageID]; ok && now.Sub(at) < time.Duration(s.sched.DuplicateWindow) {
		s.deduplicated++
		return false
	}
	q.seen[props.MessageID] = now
	s.seq++
	props.SequenceNumber = s.seq
	props.LockToken, props.DeliveryCount, props.LockedUntilUtc = "", 0, ""
	sbd, h, _, err := dpe.DecodeEnvelope(body)
	if err == nil {
		if h.Type == transport.TypeStatus {
			s.statuses[h.MessageID] = append(s.statuses[h.MessageID], h.Status)
		} else {
			s.deliveries[h.MessageID]++
		}
	}
	if peer := s.peerOf(queueName); peer != "" {
		if err == nil {
			s.peerAnswerLocked(sbd, h)
		}
		return true // the peer consumed it at once
	}
	q.messages = append(q.messages, &message{props: props, body: body, enqueued: now})
	return true
}

func (s *Sim) dropped(what string) bool {
	for _, d := range s.sched.Drop {
		if d == what {
			return true
		}
	}
	return false
}

// peerAnswerLocked plays eInnsyn's integration point receiving sbd.
func (s *Sim) peerAnswerLocked(sbd []byte, h transport.Header) {
	switch h.Type {
	case transport.TypeStatus, transport.TypeEinnsynKvittering, transport.TypeArkivmeldingKvittering:
		return
	}
	sender := transport.OrgNumber(h.Sender)
	if sender == "" {
		return
	}
	suffix := s.sched.ReceiptQueue
	if suffix == "" {
		suffix = "innsyn"
	}
	to := "nextbestqueue" + sender + suffix
	answer := func(what string, delay time.Duration, build func() ([]byte, error)) {
		if s.dropped(what) {
			return
		}
		s.timers.After(delay, func() {
			raw, err := build()
			if err != nil {
				return
			}
			body, err := dpe.EncodeEnvelope(raw, nil)
			if err != nil {
				return
			}
			rh, err := transport.ParseHeader(raw)
			if err != nil {
				return
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			s.enqueueLocked(to, dpe.BrokerProperties{MessageID: dpe.DedupID(rh)}, body)
		})
	}
	answer("MOTTATT", time.Duration(s.sched.Mottatt), func() ([]byte, error) {
		return transport.StatusReply(sbd, "MOTTATT", s.opts.Now())
	})
	answer("LEVERT", time.Duration(s.sched.Levert), func() ([]byte, error) {
		return transport.StatusReply(sbd, "LEVERT", s.opts.Now())
	})
	if h.Type == "publisering" {
		answer("kvittering", time.Duration(s.sched.Kvittering), func() ([]byte, error) {
			return transport.EinnsynReceipt(sbd, s.opts.Now())
		})
	}
}

// Duration and Fault name simfault's types for packages outside transport
// (the sandbox), which cannot import an internal package: a Schedule is
// written with Duration(200*time.Millisecond), a fault with Faults().Add(Fault{...}).
type (
	Duration = simfault.Duration
	Fault    = simfault.Fault
)

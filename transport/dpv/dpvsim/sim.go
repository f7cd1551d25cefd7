// Package dpvsim simulates Altinn 3 Correspondence as the eFormidling proxy
// shows it to DPV (spec channels.md §9.11): multipart upload with dotted
// field names matched case-insensitively, validation with ProblemDetails,
// 409 on a reused idempotentKey, lookup by sendersReference, and a timeline
// per correspondence (Initialized → Published after a delay → Read after a
// further delay, or never).
//
// Control API under /_sim/:
//
//	POST   /_sim/reset
//	POST   /_sim/faults, DELETE /_sim/faults, GET /_sim/requests   as simfault
//	GET    /_sim/config, POST /_sim/config   Schedule {"publish": "100ms", "read": "300ms", "neverRead": false}
//	POST   /_sim/correspondences/{id}/purge  {"by": "recipient"|"altinn"}
//	POST   /_sim/correspondences/{id}/delete {"status": 404|410}
//	GET    /_sim/correspondences             everything received (fields, attachment names and sizes)
//	GET    /_sim/deliveries                  {"deliveries": {sendersReference: n}, "duplicates": [...]}
package dpvsim

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/efm-go/efm/internal/simfault"
	"github.com/efm-go/efm/transport/altinn/altinnsim"
)

// BasePath is where the API is mounted, as behind the proxy.
const BasePath = "/correspondence/api/v1"

// Verifier checks the bearer token; *altinnsim.Sim is one.
type Verifier interface {
	VerifyRequest(r *http.Request) (altinnsim.Claims, error)
}

// Schedule is the correspondence timeline, settable through /_sim/config.
type Schedule struct {
	Publish   simfault.Duration `json:"publish"`
	Read      simfault.Duration `json:"read"` // after publication
	NeverRead bool              `json:"neverRead,omitempty"`
}

// DefaultSchedule is short enough for tests.
var DefaultSchedule = Schedule{Publish: simfault.Duration(50 * time.Millisecond), Read: simfault.Duration(100 * time.Millisecond)}

// Options configures a Sim.
type Options struct {
	// Auth verifies Altinn tokens. Required.
	Auth Verifier
	// Schedule; nil means DefaultSchedule.
	Schedule *Schedule
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Sim is the correspondence service. It is safe for concurrent use.
type Sim struct {
	opts    Options
	faults  *simfault.Injector
	handler http.Handler

	mu         sync.Mutex
	sched      Schedule
	byID       map[string]*correspondence
	order      []*correspondence
	keys       map[string]string // idempotentKey → id
	deliveries map[string]int
}

// Attachment is a received file.
type Attachment struct {
	ID       string `json:"id"`
	FileName string `json:"fileName"`
	Size     int    `json:"size"`
	data     []byte
}

type correspondence struct {
	ID          string            `json:"correspondenceId"`
	Fields      map[string]string `json:"fields"` // lower-cased dotted names
	Attachments []*Attachment     `json:"attachments"`
	Created     time.Time         `json:"created"`
	publishAt   time.Time
	readAt      time.Time // zero: never
	purged      string
	purgedAt    time.Time
	gone        int // 404 or 410 once deleted
}

// New returns a Sim.
func New(opts Options) (*Sim, error) {
	if opts.Auth == nil {
		return nil, errors.New("dpvsim: Auth is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Sim{opts: opts, sched: DefaultSchedule}
	s.faults = simfault.New(simfault.Options{Match: simfault.Pattern, FlatRequests: true, OnReset: func() {
		s.mu.Lock()
		s.resetLocked()
		s.mu.Unlock()
	}})
	if opts.Schedule != nil {
		s.sched = *opts.Schedule
	}
	s.resetLocked()
	mux := http.NewServeMux()
	s.routes(mux)
	s.faults.Routes(mux)
	s.handler = s.faults.Wrap(mux)
	return s, nil
}

func (s *Sim) resetLocked() {
	s.byID = map[string]*correspondence{}
	s.order = nil
	s.keys = map[string]string{}
	s.deliveries = map[string]int{}
}

func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Faults gives tests direct access to failure injection.
func (s *Sim) Faults() *simfault.Injector { return s.faults }

// SetSchedule replaces the schedule for correspondences created afterwards.
func (s *Sim) SetSchedule(sc Schedule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sched = sc
}

// Deliveries counts correspondences created per sendersReference (messageId).
func (s *Sim) Deliveries() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.deliveries))
	for k, v := range s.deliveries {
		out[k] = v
	}
	return out
}

// Attachment returns a received file's bytes, for assertions.
func (s *Sim) Attachment(correspondenceID, fileName string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.byID[correspondenceID]
	if c == nil {
		return nil, false
	}
	for _, a := range c.Attachments {
		if a.FileName == fileName {
			return a.data, true
		}
	}
	return nil, false
}

// Purge marks a correspondence purged by "recipient" or "altinn".
func (s *Sim) Purge(id, by string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.byID[id]
	if c == nil {
		return false
	}
	c.purged = "PurgedByRecipient"
	if by == "altinn" {
		c.purged = "PurgedByAltinn"
	}
	c.purgedAt = s.opts.Now().UTC()
	return true
}

// Delete makes lookups of a correspondence answer status (404 or 410).
func (s *Sim) Delete(id string, status int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.byID[id]
	if c == nil {
		return false
	}
	c.gone = status
	return true
}

// Duration and Fault name simfault's types for packages outside transport
// (the sandbox), which cannot import an internal package: a Schedule is
// written with Duration(200*time.Millisecond), a fault with Faults().Add(Fault{...}).
type (
	Duration = simfault.Duration
	Fault    = simfault.Fault
)

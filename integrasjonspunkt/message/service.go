// Package message is the core of the local API: the outgoing store (create,
// upload, send), the incoming queue (receive, peek, pop, acknowledge), and the
// message state machine of local-api.md §14.
//
// Every status change goes through one function, (*Service).record, inside
// one SQLite transaction that also writes the central-log outbox row
// (operations.md §5.4) and the status-queue entry, so no status exists without
// its event. Webhook events are handed to the Notifier after the commit and
// never block the caller.
//
// The pipeline (channels) drives messages with SetStatus, Outgoing,
// OpenAttachment and Receive; it never writes the store itself.
package message

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/integrasjonspunkt/payload"
	"github.com/efm-go/efm/integrasjonspunkt/sbd"
	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/internal/logattr"
)

// Enqueuer is what the service needs from the work queue.
type Enqueuer interface {
	Enqueue(ctx context.Context, messageID string) error
}

// AsyncEnqueuer is an Enqueuer that can also publish without waiting for
// the queue's answer, for messages already committed (see publish).
type AsyncEnqueuer interface {
	EnqueueAsync(messageID string) error
}

// Notifier receives every newly recorded status, after its commit. It must
// not block (webhook delivery is asynchronous, local-api.md §9.5).
type Notifier interface {
	Notify(ev StatusEvent)
}

// StatusEvent is a newly recorded status, as webhooks report it.
type StatusEvent struct {
	MessageID, ConversationID, Direction, Service, Status, Description string
	At                                                                 time.Time
}

// Directions.
const (
	Outgoing = "OUTGOING"
	Incoming = "INCOMING"
)

// Config holds the service's dependencies and settings.
type Config struct {
	Store    *store.Store    // must not be nil
	Payloads *payload.Store  // must not be nil
	Queue    Enqueuer        // must not be nil
	Events   *events.Builder // must not be nil
	Registry Registry        // must not be nil
	Notifier Notifier        // nil: no webhooks
	Logger   *slog.Logger    // must not be nil

	OrgNumber string               // the daemon's own organisation number
	Enabled   func(ch string) bool // whether a channel is enabled
	// SizeLimits is the total attachment size per channel (local-api.md §5.8).
	SizeLimits map[string]int64
	// TTL is the default time to live per channel; DefaultTTL covers the rest.
	TTL        map[string]time.Duration
	DefaultTTL time.Duration
	// StatusQueueIncludes lists the channels whose statuses go on the status
	// queue of E21 (difi.move.feature.statusQueueIncludes; default none).
	StatusQueueIncludes []string
	// LockTimeout is how long a peek locks an incoming message (default 5 min).
	LockTimeout time.Duration
	// MessageChannel is difi.move.dpo.message-channel ("" for none).
	MessageChannel string
	// Lenient skips the required-field checks of business messages (D8).
	Lenient bool
	// DPIPolling says the DPI channel polls for status, which makes DPI
	// conversations pollable after SENDT (local-api.md §14.4).
	DPIPolling bool
	// Certificate reports why the daemon's business certificate cannot be
	// used (expired, unreadable), nil when it can; nil func means always
	// usable. E2–E5 refuse with InvalidCertificateException (§15.2 step 3).
	Certificate func() error
	// SvarUtCredentials reports whether a SvarUt account exists for an
	// organisation the daemon sends DPF for on behalf of; nil means every
	// represented organisation has one.
	SvarUtCredentials func(org string) bool
	// ForsendelseTyper lists the KS SvarUt shipment types an organisation's
	// SvarUt account may use (SvarUt's retreiveForsendelseTyper, channels.md
	// §5.1). nil means no SvarUt service is available and, as in the
	// reference, dpf.forsendelseType is not checked; New takes it from a
	// Registry that implements ForsendelseTypeLister when unset.
	ForsendelseTyper func(ctx context.Context, org string) ([]string, error)
	// ChannelProblem says why an enabled channel cannot send (what is
	// missing in its configuration), nil when it can; nil func: every
	// enabled channel can. E2–E5 refuse with 400 ServiceNotEnabledException.
	ChannelProblem func(ch string) error
	// HerIDs are the daemon's own NHN HER ids (difi.move.dph.her-ids): the
	// only senders a DPH message may name (local-api.md §12.11).
	HerIDs []string
	// IDPolicy validates party identifiers (difi.move.identifier.synthetic.allow).
	IDPolicy ident.Policy
	// KeepPayload keeps an outgoing message's SBD and files this long after
	// it left the outgoing store (SENDT, FEIL, LEVETID_UTLOPT) instead of
	// deleting them then (efm.retention.outgoing-payload; 0: delete then).
	KeepPayload time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service is the message core. It is safe for concurrent use.
type Service struct {
	cfg Config
	st  *store.Store
	log *slog.Logger

	certMu      sync.Mutex
	certChecked time.Time
	certErr     error

	counts transitions
}

// certCheckEvery bounds how stale the certificate check of E2–E5 may be:
// verifying the chain per message would cost more than the message.
const certCheckEvery = 10 * time.Second

// certificate is Config.Certificate, asked at most every certCheckEvery.
func (s *Service) certificate() error {
	if s.cfg.Certificate == nil {
		return nil
	}
	s.certMu.Lock()
	defer s.certMu.Unlock()
	if now := s.cfg.Now(); s.certChecked.IsZero() || now.Sub(s.certChecked) >= certCheckEvery {
		s.certErr, s.certChecked = s.cfg.Certificate(), now
	}
	return s.certErr
}

// New checks cfg and returns the service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Payloads == nil || cfg.Queue == nil || cfg.Events == nil || cfg.Registry == nil || cfg.Logger == nil {
		return nil, errors.New("message: store, payloads, queue, events, registry and logger are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LockTimeout <= 0 {
		cfg.LockTimeout = 5 * time.Minute
	}
	if cfg.DefaultTTL <= 0 {
		cfg.DefaultTTL = 24 * time.Hour
	}
	if cfg.Enabled == nil {
		cfg.Enabled = func(string) bool { return false }
	}
	if l, ok := cfg.Registry.(ForsendelseTypeLister); ok && cfg.ForsendelseTyper == nil {
		cfg.ForsendelseTyper = l.ForsendelseTyper
	}
	return &Service{cfg: cfg, st: cfg.Store, log: cfg.Logger.With(logattr.Component("message"))}, nil
}

// Change is one status report for a message.
type Change struct {
	MessageID   string
	Direction   string // OUTGOING (default) or INCOMING
	Status      string
	Description string
	RawReceipt  string
	At          time.Time         // when it happened at the channel; zero: now
	Reason      events.ReasonCode // for FEIL, ANNET, LEVETID_UTLOPT; empty picks a default
}

// ErrUnknownMessage means no conversation exists for the message.
var ErrUnknownMessage = errors.New("no conversation for message")

// SetStatus records a status on a message's conversation: the pipeline's
// one way to move a message (local-api.md §14.2). A status the conversation
// already has is ignored. SENDT, FEIL and LEVETID_UTLOPT on an outgoing
// message remove it and its files from the outgoing store.
func (s *Service) SetStatus(ctx context.Context, ch Change) error {
	return s.setStatuses(ctx, []Change{ch})
}

// setStatuses records chs in order in one transaction. A change on an
// unknown message is skipped; ErrUnknownMessage is returned, after the
// others are committed, when the last change's message is unknown.
func (s *Service) setStatuses(ctx context.Context, chs []Change) error {
	unknown, err := s.applyStatuses(ctx, chs)
	if err != nil {
		return err
	}
	if last := chs[len(chs)-1]; unknown[last.MessageID] {
		return fmt.Errorf("recording status %s: %w %s", last.Status, ErrUnknownMessage, last.MessageID)
	}
	return nil
}

// applyStatuses records chs in order in one transaction and returns the
// message ids it skipped because no conversation has them. Changes to one
// conversation in a row share one read and one summary write.
func (s *Service) applyStatuses(ctx context.Context, chs []Change) (map[string]bool, error) {
	var evs []StatusEvent
	var files []string
	var unknown map[string]bool
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		evs, files, unknown = nil, nil, nil
		var c *store.Conversation
		var before store.Written
		flush := func() error {
			if c == nil || c.Written() == before {
				return nil
			}
			return tx.UpdateConversation(c)
		}
		for _, ch := range chs {
			if ch.Direction == "" {
				ch.Direction = Outgoing
			}
			// recordStatus keeps c up to date, so a second change to the
			// same conversation needs no second read.
			if c == nil || c.MessageID != ch.MessageID || c.Direction != ch.Direction {
				if err := flush(); err != nil {
					return fmt.Errorf("recording status %s: %w", ch.Status, err)
				}
				var err error
				c, err = tx.Conversation(ch.MessageID, ch.Direction)
				if errors.Is(err, store.ErrNotFound) {
					if unknown == nil {
						unknown = map[string]bool{}
					}
					c, unknown[ch.MessageID] = nil, true
					continue
				}
				if err != nil {
					return fmt.Errorf("recording status %s: %w", ch.Status, err)
				}
				// Unknown is what the id's last look-up found: the same id
				// may be known in the other direction (a message to itself).
				delete(unknown, ch.MessageID)
				before = c.Written()
			}
			ev, fs, err := s.recordStatus(tx, c, ch)
			if err != nil {
				return fmt.Errorf("recording status %s: %w", ch.Status, err)
			}
			evs, files = append(evs, ev...), append(files, fs...)
		}
		return flush()
	})
	if err != nil {
		return nil, err
	}
	s.after(evs, files)
	return unknown, nil
}

// after runs what follows a commit: file removal and webhook events.
func (s *Service) after(evs []StatusEvent, files []string) {
	s.counts.add(evs)
	if len(files) > 0 {
		if err := s.cfg.Payloads.Remove(files...); err != nil {
			s.log.Warn("removing payload files", logattr.Err(err))
		}
	}
	if s.cfg.Notifier != nil {
		for _, ev := range evs {
			s.cfg.Notifier.Notify(ev)
		}
	}
}

var finalStatuses = []string{"LEVERT", "LEST", "FEIL", "LEVETID_UTLOPT", "INNKOMMENDE_LEVERT"}

// record is the one function that writes a status (local-api.md §14.2): the
// status row, the conversation's summary, the central-log outbox row and the
// status-queue entry, in the caller's transaction. It returns the webhook
// events to send and the payload files to remove once committed.
func (s *Service) record(tx *store.Tx, c *store.Conversation, ch Change) ([]StatusEvent, []string, error) {
	// A conversation inserted just before its first status (E2, E5)
	// usually has nothing left to change: one statement less on the writer.
	before := c.Written()
	evs, files, err := s.recordStatus(tx, c, ch)
	if err != nil {
		return nil, nil, err
	}
	if c.Written() != before {
		if err := tx.UpdateConversation(c); err != nil {
			return nil, nil, err
		}
	}
	return evs, files, nil
}

// recordStatus is record without the conversation's summary, which the
// caller writes once it has recorded every change it has for c.
func (s *Service) recordStatus(tx *store.Tx, c *store.Conversation, ch Change) ([]StatusEvent, []string, error) {
	now := s.cfg.Now()
	at := ch.At
	if at.IsZero() {
		at = now
	}
	have := func(st string) bool {
		return slices.ContainsFunc(c.Statuses, func(x store.Status) bool { return x.Status == st })
	}
	if have(ch.Status) {
		return nil, nil, nil
	}
	sentBefore := have("SENDT")
	// A channel's own time may lie before a status already recorded (Altinn
	// publishes before our create call returns); the history stays in order.
	for _, st := range c.Statuses {
		if st.LastUpdate.After(at) {
			at = st.LastUpdate
		}
	}
	var evs []StatusEvent
	var files []string
	steps := []store.Status{{Status: ch.Status, Description: ch.Description, RawReceipt: ch.RawReceipt, LastUpdate: at}}
	if order := progress[c.ServiceIdentifier]; c.Direction == Outgoing && slices.Contains(order, ch.Status) {
		// Receipts travel apart and arrive in any order (DPO's MOTTATT,
		// LEVERT and archive receipt are three transfers fetched side by
		// side), but a history reads in the state machine's order, by id and
		// by time (local-api.md §14.2): a step reported before the ones it
		// follows brings them along, a second earlier each, and those
		// arriving later are repeats.
		k := slices.Index(order, ch.Status)
		if slices.ContainsFunc(order[k+1:], have) {
			return nil, nil, nil
		}
		for j := k - 1; j >= 0; j-- {
			if !have(order[j]) {
				steps = append([]store.Status{{Status: order[j], LastUpdate: at.Add(time.Duration(j-k) * time.Second)}}, steps...)
			}
		}
	}
	for _, st := range steps {
		st.ConvID = c.ID
		if err := tx.InsertStatus(&st); err != nil {
			return nil, nil, err
		}
		st.MessageID, st.ConversationID = c.MessageID, c.ConversationID
		c.Statuses = append(c.Statuses, st)
		c.Status = st.Status
		c.LastUpdate = now
		if slices.Contains(finalStatuses, st.Status) {
			c.Finished = true
		}
		c.Pollable = s.pollable(c, st.Status)
		if err := s.writeEvent(tx, c, st, ch.Reason); err != nil {
			return nil, nil, err
		}
		if slices.Contains(s.cfg.StatusQueueIncludes, c.ServiceIdentifier) {
			if err := tx.QueueStatus(st.ID); err != nil {
				return nil, nil, fmt.Errorf("queueing status: %w", err)
			}
		}
		evs = append(evs, StatusEvent{MessageID: c.MessageID, ConversationID: c.ConversationID, Direction: c.Direction,
			Service: c.ServiceIdentifier, Status: st.Status, Description: st.Description, At: now})
	}
	// The payload goes when the channel took the message for good (SENDT),
	// or it failed, and at the latest with any final status: a receipt
	// that overtook SENDT (channels outside progress) must not leave it.
	if c.Direction == Outgoing && (slices.ContainsFunc(steps, func(st store.Status) bool {
		return slices.Contains([]string{"SENDT", "FEIL", "LEVETID_UTLOPT"}, st.Status)
	}) || c.Finished && !sentBefore) {
		if s.cfg.KeepPayload > 0 {
			if err := tx.KeepPayload(c.MessageID, now.Add(s.cfg.KeepPayload)); err != nil {
				return nil, nil, err
			}
		}
		fs, err := tx.DeleteOutgoing(c.MessageID)
		if err != nil {
			return nil, nil, err
		}
		if s.cfg.KeepPayload <= 0 {
			files = fs
		}
	}
	return evs, files, nil
}

// progress is the outgoing order of local-api.md §14.2 as each channel
// reports it (§14.3). DPH is left out: its MOTTATT is a transport
// acknowledgement that need not come before its application receipt.
var progress = map[string][]string{
	"DPO": {"SENDT", "MOTTATT", "LEVERT", "LEST"},
	"DPE": {"SENDT", "MOTTATT", "LEVERT"},
	"DPI": {"SENDT", "MOTTATT", "LEVERT", "LEST"},
	"DPV": {"SENDT", "LEVERT", "LEST"},
	"DPF": {"SENDT", "LEVERT", "LEST"},
}

// pollable applies local-api.md §14.4.
func (s *Service) pollable(c *store.Conversation, status string) bool {
	switch status {
	case "SENDT":
		switch c.ServiceIdentifier {
		case "DPF", "DPV", "DPH":
			return true
		case "DPI":
			return s.cfg.DPIPolling
		}
	case "LEST", "FEIL", "LEVETID_UTLOPT", "INNKOMMENDE_LEVERT":
		return false
	case "MOTTATT":
		if c.ServiceIdentifier == "DPI" {
			return false
		}
	case "LEVERT":
		if c.ServiceIdentifier == "DPI" || c.ServiceIdentifier == "DPH" {
			return false
		}
	}
	return c.Pollable
}

// anyID classifies stored identifiers for events: a synthetic person number
// accepted under an earlier setting is still a person, and still gets only
// its pseudonym.
var anyID = ident.Policy{AllowSynthetic: true}

func (s *Service) writeEvent(tx *store.Tx, c *store.Conversation, st store.Status, reason events.ReasonCode) error {
	if reason == "" {
		switch st.Status {
		case "LEVETID_UTLOPT":
			reason = events.ReasonTTLExpired
		case "FEIL":
			reason = events.ReasonChannelRejected
		case "ANNET":
			reason = events.ReasonUnknown
		}
	}
	in := events.StatusInput{
		OccurredAt:         st.LastUpdate,
		MessageID:          c.MessageID,
		ConversationID:     c.ConversationID,
		Direction:          events.Direction(c.Direction),
		Service:            events.ServiceID(c.ServiceIdentifier),
		ProcessIdentifier:  c.ProcessIdentifier,
		DocumentIdentifier: c.DocumentIdentifier,
		Status:             events.Status(st.Status),
		Reason:             reason,
		Client:             c.Client,
	}
	if id, err := anyID.ParseID(c.Sender); err == nil {
		if o, ok := id.Org(); ok {
			in.SenderOrgNr = o.String()
		}
		if p, ok := id.Part(); ok {
			in.OnBehalfOf = p.String()
		}
	}
	if id, err := anyID.ParseID(c.Receiver); err == nil {
		if o, ok := id.Org(); ok {
			in.Receiver = events.OrganisationReceiver(o.String())
		} else if p, ok := id.Person(); ok {
			in.Receiver = events.PersonReceiver(p)
		}
	}
	typ, body, err := s.cfg.Events.MessageStatus(in)
	if err != nil {
		// The status stands even when its event cannot be built (a receiver
		// the schema has no form for, or a field the scan emptied): losing
		// the tracking line is better than losing the message's history.
		s.log.Warn("central-log event not written", logattr.MessageID(c.MessageID), logattr.Status(st.Status), logattr.Err(err))
		return nil
	}
	return tx.InsertEvent(string(typ), body, s.cfg.Now())
}

// channelOfType lists the channels each business message may travel over
// (local-api.md §13.3).
var channelOfType = map[string][]string{
	sbd.TypeArkivmelding:            {"DPO", "DPF", "DPV"},
	sbd.TypeArkivmeldingKvittering:  {"DPO", "DPF", "DPV"},
	sbd.TypeAvtalt:                  {"DPO"},
	sbd.TypeDigital:                 {"DPI"},
	sbd.TypeDigitalDPV:              {"DPV"},
	sbd.TypePrint:                   {"DPI"},
	sbd.TypeInnsynskrav:             {"DPE"},
	sbd.TypePublisering:             {"DPE"},
	sbd.TypeEinnsynKvittering:       {"DPE"},
	sbd.TypeStatus:                  {"DPO", "DPE", "DPF", "DPV"},
	sbd.TypeDialogmelding:           {"DPH"},
	sbd.TypeDialogmeldingKvittering: {"DPH"},
}

// Channels are the service identifiers of local-api.md §13.1.
var Channels = []string{"DPO", "DPV", "DPI", "DPF", "DPE", "DPH", "DPFIO", "UNKNOWN"}

// Sweep applies the deadlines of local-api.md §14.5 once: unfinished outgoing
// messages past expiry get LEVETID_UTLOPT; incoming ones past expiry leave
// the queue and get LEVETID_UTLOPT.
func (s *Service) Sweep(ctx context.Context) error {
	now := s.cfg.Now()
	out, err := s.st.ExpiredOutgoing(ctx, now)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range out {
		errs = append(errs, s.SetStatus(ctx, Change{MessageID: id, Status: "LEVETID_UTLOPT", Reason: events.ReasonTTLExpired}))
	}
	in, err := s.st.ExpiredIncoming(ctx, now)
	if err != nil {
		return err
	}
	for _, id := range in {
		errs = append(errs, s.dropIncoming(ctx, id, Change{MessageID: id, Direction: Incoming, Status: "LEVETID_UTLOPT", Reason: events.ReasonTTLExpired}))
	}
	return errors.Join(errs...)
}

// Run sweeps deadlines every interval until ctx ends (checked at least every
// 30 s, local-api.md §14.5).
func (s *Service) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = 30 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("deadline sweep", logattr.Err(err))
			}
		}
	}
}

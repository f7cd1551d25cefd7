package events

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/google/uuid"
)

// ErrRedactedRequired means the scan emptied a field the event cannot go
// without, so no event is written. The caller commits its status row anyway
// and counts the loss; the error names the field, never its value.
var ErrRedactedRequired = errors.New("scan removed a required field")

// Receiver is the typed receiver of a message: an organisation or a person.
// Make one with OrganisationReceiver or PersonReceiver; the zero value is invalid.
type Receiver struct {
	orgnr  string
	person ident.PersonID
}

// OrganisationReceiver is a receiver with a 9-digit organisation number.
func OrganisationReceiver(orgnr string) Receiver { return Receiver{orgnr: orgnr} }

// PersonReceiver is a citizen receiver. Only a parsed ident.PersonID is
// accepted, so a number can reach an event only through the pseudonym.
func PersonReceiver(p ident.PersonID) Receiver { return Receiver{person: p} }

// BuilderConfig holds what every event of one installation carries.
type BuilderConfig struct {
	// InstallationID is the random UUID made at install (not the hostname). Required.
	InstallationID string
	// OrgNr is the org number the installation runs as, the one in its
	// business certificate. Required.
	OrgNr string
	// Version is our product version (buildinfo.Version). Required.
	Version string
	// Key is the pseudonym key (LoadOrCreateKey). Required.
	Key *PseudonymKey
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Builder makes validated, scanned events. It is safe for concurrent use.
type Builder struct {
	cfg        BuilderConfig
	redactions atomic.Int64
}

// NewBuilder checks cfg and returns a Builder.
func NewBuilder(cfg BuilderConfig) (*Builder, error) {
	var errs []error
	if !validUUID(cfg.InstallationID, 0) {
		errs = append(errs, errors.New("events builder: installation id must be a UUID"))
	} else if ContainsPersonNumber(cfg.InstallationID) {
		// Every event would lose its installation_id to the scan; better to
		// fail loudly at start. Make installation ids with NewID.
		errs = append(errs, errors.New("events builder: installation id trips the person-number scan; make it with events.NewID"))
	}
	if !validOrgNr(cfg.OrgNr) {
		errs = append(errs, errors.New("events builder: org number must be 9 digits with a valid control digit"))
	}
	if !validToken(cfg.Version, 64) {
		errs = append(errs, errors.New("events builder: version is required"))
	}
	if cfg.Key == nil {
		errs = append(errs, errors.New("events builder: pseudonym key is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Builder{cfg: cfg}, nil
}

// Redactions is efm_central_log_redactions_total: fields the scan dropped.
func (b *Builder) Redactions() int64 { return b.redactions.Load() }

// NewID returns a random UUID (v4) whose text never trips the scan. About
// one random UUID in 11 000 has an all-digit last group holding 11 digits
// that pass the person-number checksum; the scan would drop such a field.
// Use it for every id the daemon makes that reaches an event: the
// installation id, and message and conversation ids it chooses itself.
func NewID() string {
	for {
		if id := uuid.NewString(); !ContainsPersonNumber(id) {
			return id
		}
	}
}

// newEventID is a UUIDv7 (time-ordered, so central indexes stay local) that
// never trips the scan, for the reason NewID gives.
func newEventID() (string, error) {
	for {
		id, err := uuid.NewV7()
		if err != nil {
			return "", err
		}
		if s := id.String(); !ContainsPersonNumber(s) {
			return s, nil
		}
	}
}

func (b *Builder) header(t Type, at time.Time) (Header, error) {
	id, err := newEventID()
	if err != nil {
		return Header{}, fmt.Errorf("making event id: %w", err)
	}
	if at.IsZero() {
		at = b.cfg.Now()
	}
	return Header{
		SchemaVersion:  SchemaVersion,
		Type:           t,
		EventID:        id,
		OccurredAt:     at.UTC(),
		InstallationID: b.cfg.InstallationID,
		OrgNr:          b.cfg.OrgNr,
		IPVersion:      b.cfg.Version,
	}, nil
}

// StatusInput is what the pipeline knows when it adds a status. Only typed
// values: a person receiver can only come in as Person.
type StatusInput struct {
	OccurredAt         time.Time // zero means now
	OnBehalfOf         string    // org number, på-vegne-av; empty when not
	MessageID          string
	ConversationID     string
	Direction          Direction
	Service            ServiceID
	ProcessIdentifier  string
	DocumentIdentifier string
	Status             Status
	Reason             ReasonCode // for FEIL, ANNET, LEVETID_UTLOPT
	SenderOrgNr        string
	Receiver           Receiver
	Client             string // product token of the caller's User-Agent
}

// MessageStatus builds a message.status event and returns it encoded, ready for
// the outbox row in the same transaction as the status row.
func (b *Builder) MessageStatus(in StatusInput) (Type, []byte, error) {
	h, err := b.header(TypeMessageStatus, in.OccurredAt)
	if err != nil {
		return "", nil, err
	}
	e := &MessageStatus{
		Header:             h,
		OnBehalfOf:         in.OnBehalfOf,
		MessageID:          in.MessageID,
		ConversationID:     in.ConversationID,
		Direction:          in.Direction,
		ServiceIdentifier:  in.Service,
		ProcessIdentifier:  in.ProcessIdentifier,
		DocumentIdentifier: in.DocumentIdentifier,
		Status:             in.Status,
		ReasonCode:         in.Reason,
		SenderOrgNr:        in.SenderOrgNr,
		Client:             in.Client,
	}
	switch {
	case !in.Receiver.person.IsZero():
		p, err := b.cfg.Key.Pseudonym(in.Receiver.person.Reveal())
		if err != nil {
			return "", nil, fmt.Errorf("pseudonymising receiver: %w", err)
		}
		e.ReceiverType, e.ReceiverPseudonym = ReceiverPerson, p
	case in.Receiver.orgnr != "":
		e.ReceiverType, e.ReceiverOrgNr = ReceiverOrganisation, in.Receiver.orgnr
	}
	return b.finish(e)
}

// InstallationStarted builds the event written at each start.
func (b *Builder) InstallationStarted(os, arch string, channels []ServiceID, apiMajors []string) (Type, []byte, error) {
	h, err := b.header(TypeInstallationStarted, time.Time{})
	if err != nil {
		return "", nil, err
	}
	if channels == nil {
		channels = []ServiceID{}
	}
	if apiMajors == nil {
		apiMajors = []string{}
	}
	return b.finish(&InstallationStarted{Header: h, OS: os, Arch: arch, Channels: channels, APIMajors: apiMajors})
}

// InstallationHeartbeat builds the daily heartbeat.
func (b *Builder) InstallationHeartbeat(unfinished []ServiceCount, certNotAfter time.Time) (Type, []byte, error) {
	h, err := b.header(TypeInstallationHeartbeat, time.Time{})
	if err != nil {
		return "", nil, err
	}
	if unfinished == nil {
		unfinished = []ServiceCount{}
	}
	return b.finish(&InstallationHeartbeat{Header: h, Unfinished: unfinished, CertificateNotAfter: certNotAfter.UTC()})
}

// Update builds one of the update.* events; reason is empty on success.
func (b *Builder) Update(t Type, from, to string, reason ReasonCode) (Type, []byte, error) {
	h, err := b.header(t, time.Time{})
	if err != nil {
		return "", nil, err
	}
	return b.finish(&Update{Header: h, FromVersion: from, ToVersion: to, ReasonCode: reason})
}

// finish runs the scan before anything is written (operations.md §5.3), then
// validates and encodes. An optional field the scan drops simply goes; a
// required one stops the event.
func (b *Builder) finish(e Event) (Type, []byte, error) {
	t := e.EventHeader().Type
	if hits := Redact(e); len(hits) > 0 {
		b.redactions.Add(int64(len(hits)))
		if err := e.validate(); err != nil {
			return "", nil, fmt.Errorf("building %s event: %w: %v", t, ErrRedactedRequired, hits)
		}
	}
	body, err := Encode(e)
	if err != nil {
		return "", nil, err
	}
	return t, body, nil
}

package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// SchemaVersion is the event schema this binary writes (operations.md §5.3).
// Decode accepts it and the version before it (§6 rule 8); SupportedVersions
// lists both for pakkesporing's /v1/schema.
const SchemaVersion = 1

// SupportedVersions are the schema versions Decode accepts, newest first.
// Version 0 never shipped, so only 1 is listed until version 2 exists.
var SupportedVersions = []int{SchemaVersion}

// Type is an event type from the table in operations.md §5.3.
type Type string

// The event types. Each has its own struct; Decode maps a type to it.
const (
	TypeMessageStatus         Type = "message.status"
	TypeInstallationStarted   Type = "installation.started"
	TypeInstallationHeartbeat Type = "installation.heartbeat"
	TypeUpdateApplied         Type = "update.applied"
	TypeUpdateCommitted       Type = "update.committed"
	TypeUpdateRolledBack      Type = "update.rolled_back"
	TypeUpdateFailed          Type = "update.failed"
)

// Types lists every event type, in the order the backlog drops them when it is
// over its limits: heartbeats first, message.status last (operations.md §5.4).
var Types = []Type{
	TypeInstallationHeartbeat, TypeInstallationStarted,
	TypeUpdateApplied, TypeUpdateCommitted, TypeUpdateRolledBack, TypeUpdateFailed,
	TypeMessageStatus,
}

// Direction is OUTGOING or INCOMING, as the reference spells it.
type Direction string

// The directions.
const (
	Outgoing Direction = "OUTGOING"
	Incoming Direction = "INCOMING"
)

// ServiceID is a channel as the reference spells it in service_identifier.
type ServiceID string

// The channels.
const (
	DPO   ServiceID = "DPO"
	DPV   ServiceID = "DPV"
	DPI   ServiceID = "DPI"
	DPF   ServiceID = "DPF"
	DPFIO ServiceID = "DPFIO"
	DPE   ServiceID = "DPE"
	DPH   ServiceID = "DPH"
)

var serviceIDs = []ServiceID{DPO, DPV, DPI, DPF, DPFIO, DPE, DPH}

// Status is a message status value, spelled as the contract spells it.
type Status string

// The status values of operations.md §5.1 (the reference's, legacy ones excluded).
const (
	Opprettet          Status = "OPPRETTET"
	Sendt              Status = "SENDT"
	Mottatt            Status = "MOTTATT"
	Levert             Status = "LEVERT"
	Lest               Status = "LEST"
	Feil               Status = "FEIL"
	Annet              Status = "ANNET"
	InnkommendeMottatt Status = "INNKOMMENDE_MOTTATT"
	InnkommendeLevert  Status = "INNKOMMENDE_LEVERT"
	LevetidUtlopt      Status = "LEVETID_UTLOPT"
)

var statuses = []Status{Opprettet, Sendt, Mottatt, Levert, Lest, Feil, Annet, InnkommendeMottatt, InnkommendeLevert, LevetidUtlopt}

// Final reports whether s ends a conversation, which sets handled_at centrally
// (operations.md §5.4). LEST is not final but moves handled_at when it comes later.
func (s Status) Final() bool {
	return s == Levert || s == Feil || s == LevetidUtlopt || s == InnkommendeLevert
}

// ReasonCode is a failure reason from a fixed list, never free text
// (operations.md §5.3, STYLE.md §5).
type ReasonCode string

// The reason codes. A new code is an additive schema change: add it here and
// pakkesporing learns it with the next release.
const (
	ReasonReceiverNotFound   ReasonCode = "receiver_not_found"
	ReasonReceiverReserved   ReasonCode = "receiver_reserved"
	ReasonAuthFailed         ReasonCode = "auth_failed"
	ReasonTTLExpired         ReasonCode = "ttl_expired"
	ReasonChannelRejected    ReasonCode = "channel_rejected"
	ReasonChannelUnavailable ReasonCode = "channel_unavailable"
	ReasonCertificateInvalid ReasonCode = "certificate_invalid"
	ReasonPayloadInvalid     ReasonCode = "payload_invalid"
	ReasonInternalError      ReasonCode = "internal_error"
	ReasonSignatureInvalid   ReasonCode = "signature_invalid"
	ReasonChecksumMismatch   ReasonCode = "checksum_mismatch"
	ReasonDownloadFailed     ReasonCode = "download_failed"
	ReasonSelfTestFailed     ReasonCode = "self_test_failed"
	ReasonHealthCheckFailed  ReasonCode = "health_check_failed"
	ReasonManifestExpired    ReasonCode = "manifest_expired"
	ReasonClockBehind        ReasonCode = "clock_behind"
	ReasonUnknown            ReasonCode = "unknown"
)

// ReasonCodes is the fixed list.
var ReasonCodes = []ReasonCode{
	ReasonReceiverNotFound, ReasonReceiverReserved, ReasonAuthFailed, ReasonTTLExpired,
	ReasonChannelRejected, ReasonChannelUnavailable, ReasonCertificateInvalid, ReasonPayloadInvalid,
	ReasonInternalError, ReasonSignatureInvalid, ReasonChecksumMismatch, ReasonDownloadFailed,
	ReasonSelfTestFailed, ReasonHealthCheckFailed, ReasonManifestExpired, ReasonClockBehind, ReasonUnknown,
}

// ReceiverType says whether receiver_orgnr or receiver_pseudonym is set.
type ReceiverType string

// The receiver types.
const (
	ReceiverOrganisation ReceiverType = "organisation"
	ReceiverPerson       ReceiverType = "person"
)

// Header is the part every event has. OccurredAt is written in UTC.
type Header struct {
	SchemaVersion  int       `json:"schema_version"`
	Type           Type      `json:"type"`
	EventID        string    `json:"event_id"`
	OccurredAt     time.Time `json:"occurred_at"`
	InstallationID string    `json:"installation_id"`
	OrgNr          string    `json:"orgnr"`
	IPVersion      string    `json:"ip_version"`
}

// Event is one of the event structs of this package. The interface is sealed:
// only this package's types satisfy it, so nothing else can be shipped.
type Event interface {
	EventHeader() *Header
	validate() error
}

// EventHeader returns the common header.
func (h *Header) EventHeader() *Header { return h }

// MessageStatus is the tracking core: one per status added to a conversation.
type MessageStatus struct {
	Header
	OnBehalfOf         string       `json:"on_behalf_of,omitempty"`
	MessageID          string       `json:"message_id" scan:"uuid"`
	ConversationID     string       `json:"conversation_id" scan:"uuid"`
	Direction          Direction    `json:"direction"`
	ServiceIdentifier  ServiceID    `json:"service_identifier"`
	ProcessIdentifier  string       `json:"process_identifier,omitempty"`
	DocumentIdentifier string       `json:"document_identifier,omitempty"`
	Status             Status       `json:"status"`
	ReasonCode         ReasonCode   `json:"reason_code,omitempty"`
	SenderOrgNr        string       `json:"sender_orgnr,omitempty"`
	ReceiverType       ReceiverType `json:"receiver_type"`
	ReceiverOrgNr      string       `json:"receiver_orgnr,omitempty"`
	ReceiverPseudonym  string       `json:"receiver_pseudonym,omitempty"`
	Client             string       `json:"client,omitempty"`
}

// InstallationStarted is written at each start.
type InstallationStarted struct {
	Header
	OS        string      `json:"os"`
	Arch      string      `json:"arch"`
	Channels  []ServiceID `json:"channels"`
	APIMajors []string    `json:"api_majors"`
}

// ServiceCount is the number of unfinished messages for one service.
type ServiceCount struct {
	Service ServiceID `json:"service"`
	Count   int       `json:"count"`
}

// InstallationHeartbeat is written daily.
type InstallationHeartbeat struct {
	Header
	Unfinished          []ServiceCount `json:"unfinished"`
	CertificateNotAfter time.Time      `json:"certificate_not_after"`
}

// Update is any of the update.* events (operations.md §4.4); Header.Type says which.
type Update struct {
	Header
	FromVersion string     `json:"from_version"`
	ToVersion   string     `json:"to_version"`
	ReasonCode  ReasonCode `json:"reason_code,omitempty"`
}

// ErrInvalid is matched by every validation failure; *FieldError carries the field.
var ErrInvalid = errors.New("invalid event")

// ErrSchemaVersion means the event declares a schema version this side does not accept.
var ErrSchemaVersion = errors.New("unsupported schema_version")

// FieldError names the field that made an event invalid. Its text never
// carries the field's value, which may be the very number we keep out.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return "field " + e.Field + ": " + e.Reason }

// Is makes errors.Is(err, ErrInvalid) true for every FieldError.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func fieldErr(field, reason string) error { return &FieldError{Field: field, Reason: reason} }

func (h *Header) validate() error {
	if h.SchemaVersion == 0 {
		return fieldErr("schema_version", "required")
	}
	if !slices.Contains(SupportedVersions, h.SchemaVersion) {
		return fmt.Errorf("%w %d", ErrSchemaVersion, h.SchemaVersion)
	}
	if !validUUID(h.EventID, 7) {
		return fieldErr("event_id", "must be a UUIDv7")
	}
	if h.OccurredAt.IsZero() {
		return fieldErr("occurred_at", "required")
	}
	if !validUUID(h.InstallationID, 0) {
		return fieldErr("installation_id", "must be a UUID")
	}
	if !validOrgNr(h.OrgNr) {
		return fieldErr("orgnr", "must be a 9-digit organisation number with a valid control digit")
	}
	if !validToken(h.IPVersion, 64) {
		return fieldErr("ip_version", "required, printable, at most 64 characters")
	}
	return nil
}

func (e *MessageStatus) validate() error {
	if e.Type != TypeMessageStatus {
		return fieldErr("type", "must be "+string(TypeMessageStatus))
	}
	if err := e.Header.validate(); err != nil {
		return err
	}
	switch {
	case e.OnBehalfOf != "" && !validOrgNr(e.OnBehalfOf):
		return fieldErr("on_behalf_of", "must be an organisation number")
	case !validToken(e.MessageID, 128):
		return fieldErr("message_id", "required, printable, at most 128 characters")
	case !validToken(e.ConversationID, 128):
		return fieldErr("conversation_id", "required, printable, at most 128 characters")
	case e.Direction != Outgoing && e.Direction != Incoming:
		return fieldErr("direction", "must be OUTGOING or INCOMING")
	case !slices.Contains(serviceIDs, e.ServiceIdentifier):
		return fieldErr("service_identifier", "unknown service")
	case e.ProcessIdentifier != "" && !validURN(e.ProcessIdentifier):
		return fieldErr("process_identifier", "must be a URN")
	case e.DocumentIdentifier != "" && !validURN(e.DocumentIdentifier):
		return fieldErr("document_identifier", "must be a URN")
	case !slices.Contains(statuses, e.Status):
		return fieldErr("status", "unknown status")
	case e.ReasonCode != "" && !slices.Contains(ReasonCodes, e.ReasonCode):
		return fieldErr("reason_code", "not in the fixed list")
	case e.ReasonCode == "" && (e.Status == Feil || e.Status == Annet):
		return fieldErr("reason_code", "required for FEIL and ANNET")
	case e.ReasonCode != "" && e.Status != Feil && e.Status != Annet && e.Status != LevetidUtlopt:
		return fieldErr("reason_code", "only for FEIL, ANNET and LEVETID_UTLOPT")
	case e.SenderOrgNr != "" && !validOrgNr(e.SenderOrgNr):
		return fieldErr("sender_orgnr", "must be an organisation number")
	case e.Client != "" && !validToken(e.Client, 64):
		return fieldErr("client", "printable, at most 64 characters")
	}
	switch e.ReceiverType {
	case ReceiverOrganisation:
		if !validOrgNr(e.ReceiverOrgNr) {
			return fieldErr("receiver_orgnr", "required organisation number for receiver_type organisation")
		}
		if e.ReceiverPseudonym != "" {
			return fieldErr("receiver_pseudonym", "only for receiver_type person")
		}
	case ReceiverPerson:
		if !validPseudonym(e.ReceiverPseudonym) {
			return fieldErr("receiver_pseudonym", "required 22-character base64url pseudonym for receiver_type person")
		}
		if e.ReceiverOrgNr != "" {
			return fieldErr("receiver_orgnr", "only for receiver_type organisation")
		}
	default:
		return fieldErr("receiver_type", "must be organisation or person")
	}
	return nil
}

func (e *InstallationStarted) validate() error {
	if e.Type != TypeInstallationStarted {
		return fieldErr("type", "must be "+string(TypeInstallationStarted))
	}
	if err := e.Header.validate(); err != nil {
		return err
	}
	if !validToken(e.OS, 32) {
		return fieldErr("os", "required, at most 32 characters")
	}
	if !validToken(e.Arch, 32) {
		return fieldErr("arch", "required, at most 32 characters")
	}
	for _, c := range e.Channels {
		if !slices.Contains(serviceIDs, c) {
			return fieldErr("channels", "unknown service")
		}
	}
	for _, m := range e.APIMajors {
		if !validToken(m, 8) {
			return fieldErr("api_majors", "entries at most 8 characters")
		}
	}
	return nil
}

func (e *InstallationHeartbeat) validate() error {
	if e.Type != TypeInstallationHeartbeat {
		return fieldErr("type", "must be "+string(TypeInstallationHeartbeat))
	}
	if err := e.Header.validate(); err != nil {
		return err
	}
	for _, u := range e.Unfinished {
		if !slices.Contains(serviceIDs, u.Service) {
			return fieldErr("unfinished", "unknown service")
		}
		if u.Count < 0 {
			return fieldErr("unfinished", "count must not be negative")
		}
	}
	return nil
}

func (e *Update) validate() error {
	switch e.Type {
	case TypeUpdateApplied, TypeUpdateCommitted, TypeUpdateRolledBack, TypeUpdateFailed:
	default:
		return fieldErr("type", "must be one of the update.* types")
	}
	if err := e.Header.validate(); err != nil {
		return err
	}
	switch {
	case !validToken(e.FromVersion, 64):
		return fieldErr("from_version", "required, at most 64 characters")
	case !validToken(e.ToVersion, 64):
		return fieldErr("to_version", "required, at most 64 characters")
	case e.ReasonCode != "" && !slices.Contains(ReasonCodes, e.ReasonCode):
		return fieldErr("reason_code", "not in the fixed list")
	}
	return nil
}

// Validate checks an event against the schema: required fields, enums, the
// fixed reason list, the receiver rules. It does not run the scan (Scan).
func Validate(e Event) error { return e.validate() }

// Encode validates e and renders it as one JSON line without the trailing newline.
// The store writes the result into event_outbox with e's type.
func Encode(e Event) ([]byte, error) {
	if err := e.validate(); err != nil {
		return nil, fmt.Errorf("encoding %s event: %w", e.EventHeader().Type, err)
	}
	h := e.EventHeader()
	h.OccurredAt = h.OccurredAt.UTC()
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encoding %s event: %w", h.Type, err)
	}
	return b, nil
}

// maxEventBytes bounds one event line. The largest legal event is well under
// 2 KiB; 16 KiB leaves room for additive fields without inviting abuse.
const maxEventBytes = 16 << 10

// Decode parses one JSON event strictly: the declared schema_version must be
// supported, the type known, and a field not in that type's struct is an
// error (the allow-list holds on the receiving side too). The result is
// validated. Errors are *FieldError (errors.Is ErrInvalid) or ErrSchemaVersion.
func Decode(line []byte) (Event, error) {
	if len(line) > maxEventBytes {
		return nil, fieldErr("", "event larger than 16 KiB")
	}
	e, err := newForType(line)
	if err != nil {
		return nil, versionFirst(line, err)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(e); err != nil {
		return nil, versionFirst(line, decodeFieldError(err))
	}
	if dec.More() {
		return nil, fieldErr("", "trailing data after the event")
	}
	if err := e.validate(); err != nil {
		return nil, err
	}
	h := e.EventHeader()
	h.OccurredAt = h.OccurredAt.UTC()
	return e, nil
}

// versionFirst reports an unsupported schema_version in preference to err:
// a newer schema's fields and types are unknown here by definition.
func versionFirst(line []byte, err error) error {
	var peek struct {
		SchemaVersion *int `json:"schema_version"`
	}
	if json.Unmarshal(line, &peek) == nil && peek.SchemaVersion != nil && !slices.Contains(SupportedVersions, *peek.SchemaVersion) {
		return fmt.Errorf("%w %d", ErrSchemaVersion, *peek.SchemaVersion)
	}
	return err
}

// newForType returns an empty struct for the event's type. The common case,
// a compact `"type":"…"` as Encode writes it, is found without a second full
// parse (ingest decodes tens of thousands of events a second); anything else
// is peeked at properly. validate checks the type again after decoding, so
// a guess can never let a wrong struct through.
func newForType(line []byte) (Event, error) {
	t := Type("")
	if i := bytes.Index(line, []byte(`"type":"`)); i >= 0 && bytes.Count(line, []byte(`"type"`)) == 1 {
		rest := line[i+8:]
		if j := bytes.IndexByte(rest, '"'); j >= 0 {
			t = Type(rest[:j])
		}
	}
	if t == "" {
		var peek struct {
			Type Type `json:"type"`
		}
		if err := json.Unmarshal(line, &peek); err != nil {
			return nil, fieldErr("", "not a JSON object")
		}
		t = peek.Type
	}
	switch t {
	case TypeMessageStatus:
		return new(MessageStatus), nil
	case TypeInstallationStarted:
		return new(InstallationStarted), nil
	case TypeInstallationHeartbeat:
		return new(InstallationHeartbeat), nil
	case TypeUpdateApplied, TypeUpdateCommitted, TypeUpdateRolledBack, TypeUpdateFailed:
		return new(Update), nil
	}
	return nil, fieldErr("type", "unknown event type")
}

// decodeFieldError turns a json error into a FieldError naming the field, so
// the 422 body can say which field was wrong without echoing a value.
func decodeFieldError(err error) error {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		return fieldErr(safeFieldName(ute.Field), "wrong JSON type")
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return fieldErr(safeFieldName(strings.Trim(name, `"`)), "not in the schema")
	}
	var te *time.ParseError
	if errors.As(err, &te) {
		return fieldErr("", "time not in RFC 3339")
	}
	return fieldErr("", "malformed JSON")
}

// safeFieldName keeps a sender-chosen JSON key out of errors when it could
// itself be the number (a client that keys data by fødselsnummer).
func safeFieldName(name string) string {
	if len(name) > 64 || ContainsPersonNumber(name) || !validToken(name, 64) {
		return "(unnamed field)"
	}
	return name
}

func validToken(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func validURN(s string) bool {
	return validToken(s, 256) && strings.HasPrefix(strings.ToLower(s), "urn:")
}

// validUUID accepts the canonical 36-character form; version 0 means any version.
func validUUID(s string, version byte) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return version == 0 || s[14] == '0'+version
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func validPseudonym(s string) bool {
	if len(s) != pseudonymLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

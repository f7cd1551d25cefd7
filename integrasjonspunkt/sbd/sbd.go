// Package sbd is the JSON form of the StandardBusinessDocument of the local API
// (local-api.md §11–§13): the envelope types, the one lenient decoder, the
// header and business message constraints and the document type tables.
//
// The decoder holds the contract's leniency in one place: unknown members are
// ignored, numbers and booleans sent as strings are coerced where the schema
// says number or boolean, the type is matched case-insensitively. Everything
// a client sent that the daemon does not interpret (contactInformation,
// manifest, unknown business message members) is passed through unchanged.
//
// This package imports no other package of the daemon.
package sbd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // Europe/Oslo on machines without a zone database (Windows)
)

// Header is standardBusinessDocumentHeader (local-api.md §11.2).
type Header struct {
	HeaderVersion          string                  `json:"headerVersion,omitempty"`
	Sender                 []Partner               `json:"sender,omitempty"`
	Receiver               []Partner               `json:"receiver,omitempty"`
	DocumentIdentification *DocumentIdentification `json:"documentIdentification,omitempty"`
	Manifest               json.RawMessage         `json:"manifest,omitempty"`
	BusinessScope          *BusinessScope          `json:"businessScope,omitempty"`
}

// Partner is a sender or receiver.
type Partner struct {
	Identifier         *PartnerIdentification `json:"identifier,omitempty"`
	ContactInformation json.RawMessage        `json:"contactInformation,omitempty"`
}

// PartnerIdentification is a party identifier and its authority.
type PartnerIdentification struct {
	Value     string `json:"value,omitempty"`
	Authority string `json:"authority,omitempty"`
}

// DocumentIdentification names the business message and the message id.
type DocumentIdentification struct {
	Standard            string `json:"standard,omitempty"`
	TypeVersion         string `json:"typeVersion,omitempty"`
	InstanceIdentifier  string `json:"instanceIdentifier,omitempty"`
	Type                string `json:"type,omitempty"`
	CreationDateAndTime string `json:"creationDateAndTime,omitempty"`
	MultipleType        *Bool  `json:"multipleType,omitempty"`
}

// BusinessScope holds the scopes.
type BusinessScope struct {
	Scope []Scope `json:"scope,omitempty"`
}

// Scope is one business scope (local-api.md §11.3).
type Scope struct {
	Type               string             `json:"type,omitempty"`
	InstanceIdentifier string             `json:"instanceIdentifier,omitempty"`
	Identifier         string             `json:"identifier,omitempty"`
	ScopeInformation   []ScopeInformation `json:"scopeInformation,omitempty"`
}

// ScopeInformation is one correlation entry.
type ScopeInformation struct {
	ExpectedResponseDateTime             string `json:"expectedResponseDateTime,omitempty"`
	RequestingDocumentInstanceIdentifier string `json:"requestingDocumentInstanceIdentifier,omitempty"`
	RequestingDocumentCreationDateTime   string `json:"requestingDocumentCreationDateTime,omitempty"`
}

// Bool is a boolean that also accepts "true" and "false" as strings.
type Bool bool

// UnmarshalJSON accepts a JSON boolean or its string form.
func (b *Bool) UnmarshalJSON(data []byte) error {
	s := strings.Trim(string(data), `"`)
	switch strings.ToLower(s) {
	case "true":
		*b = true
	case "false":
		*b = false
	default:
		return fmt.Errorf("%w: %s is not a boolean", ErrSyntax, data)
	}
	return nil
}

// Scope types.
const (
	ScopeConversationID = "ConversationId"
	ScopeSenderRef      = "SenderRef"
	ScopeReceiverRef    = "ReceiverRef"
	ScopeJournalpostID  = "JournalpostId"
	ScopeParentID       = "ParentId"
	ScopeMessageChannel = "MessageChannel"
)

// ScopeTypes are the six scope types of §11.3.
var ScopeTypes = []string{ScopeConversationID, ScopeSenderRef, ScopeReceiverRef, ScopeJournalpostID, ScopeParentID, ScopeMessageChannel}

// Authorities of party identifiers.
const (
	AuthorityISO6523 = "iso6523-actorid-upis"
	AuthorityNHN     = "nhn-actorid"
)

// Document is a decoded SBD: the header and one business message whose
// member name is Type.
type Document struct {
	Header   *Header
	Type     string         // canonical lower-case type name; "" when unknown
	Business map[string]any // the business message; numbers are json.Number
}

// ErrSyntax is wrapped by every error that means the body is not an SBD at
// all: malformed JSON or a wrong JSON type (400 HttpMessageNotReadable).
var ErrSyntax = errors.New("malformed sbd")

// ErrMissingBusinessMessage means no member named after the type exists
// (400 MissingMessageTypeException).
var ErrMissingBusinessMessage = errors.New("business message missing")

const headerKey = "standardBusinessDocumentHeader"

// Decode parses an SBD. A syntax error wraps ErrSyntax. An unknown type is
// not an error here: Validate reports it as the MessageType constraint,
// in the order the reference does.
func Decode(data []byte) (*Document, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	if top == nil {
		return nil, fmt.Errorf("%w: body is null", ErrSyntax)
	}
	d := &Document{}
	if raw, ok := top[headerKey]; ok && !isNull(raw) {
		d.Header = &Header{}
		if err := json.Unmarshal(raw, d.Header); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrSyntax, headerKey, err)
		}
		d.Header.normalise()
	}
	if d.Header == nil || d.Header.DocumentIdentification == nil || d.Header.DocumentIdentification.Type == "" {
		return d, nil
	}
	di := d.Header.DocumentIdentification
	t, known := LookupType(di.Type)
	if !known {
		return d, nil
	}
	di.Type = t
	d.Type = t
	for k, raw := range top {
		if k == headerKey || !strings.EqualFold(k, t) {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrSyntax, k, err)
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: %s must be an object", ErrSyntax, k)
		}
		dropNulls(m)
		d.Business = m
	}
	if d.Business == nil {
		return nil, fmt.Errorf("%w: no member named %q", ErrMissingBusinessMessage, t)
	}
	if err := coerce(t, d.Business); err != nil {
		return nil, err
	}
	return d, nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// normalise drops what the contract omits when empty.
func (h *Header) normalise() {
	for _, ps := range [][]Partner{h.Sender, h.Receiver} {
		for i := range ps {
			if c := bytes.TrimSpace(ps[i].ContactInformation); len(c) == 0 || bytes.Equal(c, []byte("[]")) || bytes.Equal(c, []byte("null")) {
				ps[i].ContactInformation = nil
			}
		}
	}
	if m := bytes.TrimSpace(h.Manifest); bytes.Equal(m, []byte("null")) {
		h.Manifest = nil
	}
}

func dropNulls(m map[string]any) {
	for k, v := range m {
		if v == nil {
			delete(m, k)
			continue
		}
		dropNullsIn(v)
	}
}

func dropNullsIn(v any) {
	switch x := v.(type) {
	case map[string]any:
		dropNulls(x)
	case []any:
		for _, e := range x {
			dropNullsIn(e)
		}
	}
}

// MarshalJSON writes the header first, then the business message under its
// type name.
func (d *Document) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"` + headerKey + `":`)
	hdr := d.Header
	if hdr == nil {
		hdr = &Header{} // never null in output (local-api.md §2.3)
	}
	h, err := json.Marshal(hdr)
	if err != nil {
		return nil, err
	}
	b.Write(h)
	if d.Type != "" {
		bm := d.Business
		if bm == nil {
			bm = map[string]any{}
		}
		body, err := json.Marshal(bm)
		if err != nil {
			return nil, err
		}
		b.WriteString(`,"` + d.Type + `":`)
		b.Write(body)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// DocID returns documentIdentification, never nil.
func (d *Document) DocID() *DocumentIdentification {
	if d.Header == nil {
		d.Header = &Header{}
	}
	if d.Header.DocumentIdentification == nil {
		d.Header.DocumentIdentification = &DocumentIdentification{}
	}
	return d.Header.DocumentIdentification
}

// MessageID is the instanceIdentifier of documentIdentification.
func (d *Document) MessageID() string { return d.DocID().InstanceIdentifier }

// ConversationScope returns the ConversationId scope, or nil.
func (d *Document) ConversationScope() *Scope { return d.Scope(ScopeConversationID) }

// Scope returns the first scope of type t, or nil.
func (d *Document) Scope(t string) *Scope {
	if d.Header == nil || d.Header.BusinessScope == nil {
		return nil
	}
	for i := range d.Header.BusinessScope.Scope {
		if d.Header.BusinessScope.Scope[i].Type == t {
			return &d.Header.BusinessScope.Scope[i]
		}
	}
	return nil
}

// ConversationID is the instanceIdentifier of the ConversationId scope.
func (d *Document) ConversationID() string {
	if s := d.ConversationScope(); s != nil {
		return s.InstanceIdentifier
	}
	return ""
}

// Process is the identifier of the ConversationId scope.
func (d *Document) Process() string {
	if s := d.ConversationScope(); s != nil {
		return s.Identifier
	}
	return ""
}

// ExpectedResponse is the first expectedResponseDateTime of the
// ConversationId scope ("" when none).
func (d *Document) ExpectedResponse() string {
	if s := d.ConversationScope(); s != nil && len(s.ScopeInformation) > 0 {
		return s.ScopeInformation[0].ExpectedResponseDateTime
	}
	return ""
}

// SenderValue is sender[0].identifier.value, or "".
func (d *Document) SenderValue() string { return partnerValue(d.Header.senders()) }

// ReceiverValue is receiver[0].identifier.value, or "".
func (d *Document) ReceiverValue() string { return partnerValue(d.Header.receivers()) }

func (h *Header) senders() []Partner {
	if h == nil {
		return nil
	}
	return h.Sender
}

func (h *Header) receivers() []Partner {
	if h == nil {
		return nil
	}
	return h.Receiver
}

func partnerValue(ps []Partner) string {
	if len(ps) == 0 || ps[0].Identifier == nil {
		return ""
	}
	return ps[0].Identifier.Value
}

// String returns a business message string field ("" when absent).
func (d *Document) String(path string) string {
	v := lookup(d.Business, path)
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	}
	return ""
}

// Int returns a business message number field and whether it is set.
func (d *Document) Int(path string) (int, bool) {
	if n, ok := lookup(d.Business, path).(json.Number); ok {
		if i, err := n.Int64(); err == nil {
			return int(i), true
		}
	}
	return 0, false
}

// Object returns a business message object field, or nil.
func (d *Document) Object(path string) map[string]any {
	m, _ := lookup(d.Business, path).(map[string]any)
	return m
}

func lookup(m map[string]any, path string) any {
	var cur any = m
	for p := range strings.SplitSeq(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

// Oslo is the zone of output times and of input times without an offset
// (local-api.md §2.3).
var Oslo = mustZone("Europe/Oslo")

func mustZone(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err) // time/tzdata is embedded: cannot happen
	}
	return l
}

// FormatTime writes a date-time with offset in Europe/Oslo.
func FormatTime(t time.Time) string { return t.In(Oslo).Format(time.RFC3339) }

// ParseTime reads an ISO-8601 date-time; without an offset it is taken as
// Europe/Oslo time.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, s, Oslo); err == nil {
			return t, nil
		}
	}
	// Java's ISO_OFFSET_DATE_TIME also accepts +0100 without a colon.
	if t, err := time.Parse("2006-01-02T15:04:05.999999999-0700", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO-8601 date-time", s)
}

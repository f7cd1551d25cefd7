package transport

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Document types and processes a channel needs to know to route and answer
// a message (local-api.md §12, §13).
const (
	TypeStatus                 = "status"
	TypeArkivmeldingKvittering = "arkivmelding_kvittering"
	TypeEinnsynKvittering      = "einnsyn_kvittering"

	StandardStatus                 = "urn:no:difi:eformidling:xsd::status"
	StandardArkivmeldingKvittering = "urn:no:difi:arkivmelding:xsd::arkivmelding_kvittering"
	StandardEinnsynKvittering      = "urn:no:difi:einnsyn:xsd::einnsyn_kvittering"

	ProcessArkivmeldingResponse = "urn:no:difi:profile:arkivmelding:response:ver1.0"
	ProcessAvtaltResponse       = "urn:no:difi:profile:avtalt:response:ver1.0"
	ProcessEinnsynResponse      = "urn:no:difi:profile:einnsyn:response:ver1.0"

	authorityOrg = "iso6523-actorid-upis"
)

// Header is what a channel reads from an SBD: who it is from and to, which
// message and conversation it belongs to, and for status and receipt
// messages what they report. The full SBD travels as opaque JSON beside it.
type Header struct {
	MessageID      string
	ConversationID string
	Process        string // the ConversationId scope's identifier
	Type           string // documentIdentification.type, lower case
	Standard       string
	Sender         string // sender[0].identifier.value, e.g. 0192:910075918
	Receiver       string // receiver[0].identifier.value
	MessageChannel string // MessageChannel scope identifier, "" when absent
	Expires        time.Time

	// Status is the business message's status for Type "status".
	Status string
	// RelatedToMessageID and ReceiptType are set for arkivmelding_kvittering.
	RelatedToMessageID string
	ReceiptType        string
}

type sbdParty struct {
	Identifier struct {
		Value     string `json:"value"`
		Authority string `json:"authority"`
	} `json:"identifier"`
}

type sbdWire struct {
	Header *struct {
		Sender                 []sbdParty `json:"sender"`
		Receiver               []sbdParty `json:"receiver"`
		DocumentIdentification *struct {
			Standard           string `json:"standard"`
			Type               string `json:"type"`
			InstanceIdentifier string `json:"instanceIdentifier"`
		} `json:"documentIdentification"`
		BusinessScope *struct {
			Scope []struct {
				Type               string `json:"type"`
				InstanceIdentifier string `json:"instanceIdentifier"`
				Identifier         string `json:"identifier"`
				ScopeInformation   []struct {
					ExpectedResponseDateTime string `json:"expectedResponseDateTime"`
				} `json:"scopeInformation"`
			} `json:"scope"`
		} `json:"businessScope"`
	} `json:"standardBusinessDocumentHeader"`
}

// ParseHeader reads the routing facts from an SBD in the JSON shape of
// local-api.md §11. It fails with ErrMalformed when the header is missing,
// the messageId or conversationId is not a UUID (§2.4 step 5), or the
// business message member named by the type is absent.
func ParseHeader(sbd []byte) (Header, error) {
	// One pass over the whole document, then only the members needed: a
	// struct and a map decoded side by side read every SBD twice, and a
	// channel parses each one it sends and receives (issue 18).
	var top map[string]json.RawMessage
	if err := json.Unmarshal(sbd, &top); err != nil {
		return Header{}, fmt.Errorf("%w: sbd json: %v", ErrMalformed, err)
	}
	var w sbdWire
	// Member names match case-insensitively, as they would decoding the
	// document into sbdWire; the last of two spellings would win there,
	// which a map cannot tell, so such a document is refused.
	raw, ok := member(top, "standardBusinessDocumentHeader")
	if !ok {
		return Header{}, fmt.Errorf("%w: two sbd headers", ErrMalformed)
	}
	if raw != nil {
		if err := json.Unmarshal(raw, &w.Header); err != nil {
			return Header{}, fmt.Errorf("%w: sbd json: %v", ErrMalformed, err)
		}
	}
	if w.Header == nil || w.Header.DocumentIdentification == nil || w.Header.BusinessScope == nil {
		return Header{}, fmt.Errorf("%w: sbd without header, documentIdentification or businessScope", ErrMalformed)
	}
	di := w.Header.DocumentIdentification
	h := Header{
		MessageID: strings.ToLower(di.InstanceIdentifier),
		Type:      strings.ToLower(di.Type),
		Standard:  di.Standard,
	}
	if !isUUID(h.MessageID) {
		return Header{}, fmt.Errorf("%w: messageId is not a uuid", ErrMalformed)
	}
	if h.Type == "" {
		return Header{}, fmt.Errorf("%w: sbd without a document type", ErrMalformed)
	}
	if len(w.Header.Sender) > 0 {
		h.Sender = w.Header.Sender[0].Identifier.Value
	}
	if len(w.Header.Receiver) > 0 {
		h.Receiver = w.Header.Receiver[0].Identifier.Value
	}
	conversations := 0
	for _, s := range w.Header.BusinessScope.Scope {
		switch s.Type {
		case "ConversationId":
			conversations++
			h.ConversationID = strings.ToLower(s.InstanceIdentifier)
			h.Process = s.Identifier
			if len(s.ScopeInformation) > 0 && s.ScopeInformation[0].ExpectedResponseDateTime != "" {
				t, err := time.Parse(time.RFC3339Nano, s.ScopeInformation[0].ExpectedResponseDateTime)
				if err != nil {
					return Header{}, fmt.Errorf("%w: expectedResponseDateTime: %v", ErrMalformed, err)
				}
				h.Expires = t
			}
		case "MessageChannel":
			h.MessageChannel = s.Identifier
		}
	}
	if conversations != 1 || !isUUID(h.ConversationID) {
		return Header{}, fmt.Errorf("%w: need exactly one ConversationId scope with a uuid", ErrMalformed)
	}
	// The business member is named after the type; its spelling on the wire
	// follows the type as sent, so look it up case-insensitively.
	var body json.RawMessage
	for k, v := range top {
		if strings.EqualFold(k, h.Type) {
			body = v
		}
	}
	if body == nil {
		return Header{}, fmt.Errorf("%w: no business message member %q", ErrMalformed, h.Type)
	}
	switch h.Type {
	case TypeStatus:
		var s struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(body, &s); err != nil {
			return Header{}, fmt.Errorf("%w: status message: %v", ErrMalformed, err)
		}
		h.Status = s.Status
	case TypeArkivmeldingKvittering:
		var k struct {
			ReceiptType        string `json:"receiptType"`
			RelatedToMessageID string `json:"relatedToMessageId"`
		}
		if err := json.Unmarshal(body, &k); err != nil {
			return Header{}, fmt.Errorf("%w: arkivmelding_kvittering: %v", ErrMalformed, err)
		}
		h.ReceiptType, h.RelatedToMessageID = k.ReceiptType, strings.ToLower(k.RelatedToMessageID)
	}
	return h, nil
}

// member finds the member of top named name in any case: nil when there is
// none, ok false when more than one spelling is there.
func member(top map[string]json.RawMessage, name string) (raw json.RawMessage, ok bool) {
	n := 0
	for k, v := range top {
		if strings.EqualFold(k, name) {
			raw, n = v, n+1
		}
	}
	return raw, n <= 1
}

// OrgNumber returns the organisation number an iso6523 identifier names:
// the last nine-digit part of "0192:A" or "0192:A:B" (the org acted for).
// It returns "" for anything else, such as a person.
func OrgNumber(identifier string) string {
	parts := strings.Split(identifier, ":")
	if len(parts) < 2 || parts[0] != "0192" {
		if isOrgNumber(identifier) {
			return identifier
		}
		return ""
	}
	last := parts[len(parts)-1]
	if !isOrgNumber(last) {
		return ""
	}
	return last
}

func isOrgNumber(s string) bool {
	if len(s) != 9 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testMessageID      = "5f0b3a6e-2d7c-4d4e-9a39-6a1f0a3c1b01"
	testConversationID = "8a4c1f02-7b9e-4c3d-8f21-0e5d6c7b8a90"
)

func sampleSBD(typ, body string) []byte {
	return []byte(fmt.Sprintf(`{
  "standardBusinessDocumentHeader": {
    "headerVersion": "1.0",
    "sender": [{"identifier": {"value": "0192:910077473", "authority": "iso6523-actorid-upis"}}],
    "receiver": [{"identifier": {"value": "0192:910075918", "authority": "iso6523-actorid-upis"}}],
    "documentIdentification": {"standard": "urn:no:difi:arkivmelding:xsd::%[1]s", "typeVersion": "2.0",
      "instanceIdentifier": %[2]q, "type": %[1]q, "creationDateAndTime": "2026-01-01T10:00:00Z"},
    "businessScope": {"scope": [
      {"type": "ConversationId", "instanceIdentifier": %[3]q,
       "identifier": "urn:no:difi:profile:arkivmelding:administrasjon:ver1.0",
       "scopeInformation": [{"expectedResponseDateTime": "2026-01-02T10:00:00+01:00"}]},
      {"type": "MessageChannel", "instanceIdentifier": "c1", "identifier": "kanal-a"}]}
  },
  %[1]q: %[4]s
}`, typ, testMessageID, testConversationID, body))
}

func TestParseHeader(t *testing.T) {
	h, err := ParseHeader(sampleSBD("arkivmelding", `{"hoveddokument": "a.pdf"}`))
	require.NoError(t, err)
	assert.Equal(t, testMessageID, h.MessageID)
	assert.Equal(t, testConversationID, h.ConversationID)
	assert.Equal(t, "arkivmelding", h.Type)
	assert.Equal(t, "0192:910077473", h.Sender)
	assert.Equal(t, "0192:910075918", h.Receiver)
	assert.Equal(t, "kanal-a", h.MessageChannel)
	assert.Equal(t, "urn:no:difi:profile:arkivmelding:administrasjon:ver1.0", h.Process)
	assert.True(t, h.Expires.Equal(time.Date(2026, 1, 2, 9, 0, 0, 0, time.UTC)))

	h, err = ParseHeader(sampleSBD("status", `{"status": "LEVERT"}`))
	require.NoError(t, err)
	assert.Equal(t, "LEVERT", h.Status)

	h, err = ParseHeader(sampleSBD("arkivmelding_kvittering",
		`{"receiptType": "ERROR", "relatedToMessageId": "`+testConversationID+`"}`))
	require.NoError(t, err)
	assert.Equal(t, "ERROR", h.ReceiptType)
	assert.Equal(t, testConversationID, h.RelatedToMessageID)
}

func TestParseHeader_Malformed(t *testing.T) {
	tests := []struct{ name, in string }{
		{"not json", `{`},
		{"no header", `{"arkivmelding": {}}`},
		{"message id not uuid", string(sampleSBD("arkivmelding", `{}`)[:0]) +
			`{"standardBusinessDocumentHeader": {"documentIdentification": {"type": "arkivmelding", "instanceIdentifier": "x"},
			"businessScope": {"scope": [{"type": "ConversationId", "instanceIdentifier": "` + testConversationID + `"}]}}, "arkivmelding": {}}`},
		{"no business member", `{"standardBusinessDocumentHeader": {"documentIdentification": {"type": "arkivmelding", "instanceIdentifier": "` + testMessageID + `"},
			"businessScope": {"scope": [{"type": "ConversationId", "instanceIdentifier": "` + testConversationID + `"}]}}}`},
		{"two conversations", `{"standardBusinessDocumentHeader": {"documentIdentification": {"type": "a", "instanceIdentifier": "` + testMessageID + `"},
			"businessScope": {"scope": [{"type": "ConversationId", "instanceIdentifier": "` + testConversationID + `"},
			{"type": "ConversationId", "instanceIdentifier": "` + testConversationID + `"}]}}, "a": {}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseHeader([]byte(tt.in))
			assert.ErrorIs(t, err, ErrMalformed)
		})
	}
}

func TestStatusReply(t *testing.T) {
	orig := sampleSBD("arkivmelding", `{}`)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	raw, err := StatusReply(orig, "MOTTATT", now)
	require.NoError(t, err)
	h, err := ParseHeader(raw)
	require.NoError(t, err)
	assert.Equal(t, testMessageID, h.MessageID, "a status echoes the original messageId")
	assert.Equal(t, testConversationID, h.ConversationID)
	assert.Equal(t, TypeStatus, h.Type)
	assert.Equal(t, StandardStatus, h.Standard)
	assert.Equal(t, "MOTTATT", h.Status)
	assert.Equal(t, "0192:910075918", h.Sender, "sender and receiver are swapped")
	assert.Equal(t, "0192:910077473", h.Receiver)
	assert.Equal(t, ProcessArkivmeldingResponse, h.Process)
	assert.Equal(t, "kanal-a", h.MessageChannel, "the message channel scope is copied")

	raw, err = ArkivmeldingReceipt(orig, "OK", now)
	require.NoError(t, err)
	h, err = ParseHeader(raw)
	require.NoError(t, err)
	assert.NotEqual(t, testMessageID, h.MessageID)
	assert.Equal(t, testMessageID, h.RelatedToMessageID)
	assert.Equal(t, "OK", h.ReceiptType)

	raw, err = EinnsynReceipt(orig, now)
	require.NoError(t, err)
	var k struct {
		Kv struct {
			Status string `json:"status"`
		} `json:"einnsyn_kvittering"`
	}
	require.NoError(t, json.Unmarshal(raw, &k))
	assert.True(t, json.Valid([]byte(k.Kv.Status)), "status is JSON encoded as a string")
}

func TestOrgNumber(t *testing.T) {
	tests := []struct{ in, want string }{
		{"0192:910075918", "910075918"},
		{"0192:910075918:987654321", "987654321"},
		{"910075918", "910075918"},
		{"12345678901", ""},
		{"0192:abc", ""},
		{"9908:910075918", ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, OrgNumber(tt.in), tt.in)
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add(sampleSBD("arkivmelding", `{}`))
	f.Add(sampleSBD("status", `{"status": "MOTTATT"}`))
	f.Add(sampleSBD("arkivmelding_kvittering", `{"receiptType": "OK"}`))
	f.Add([]byte(`{"standardBusinessDocumentHeader": null}`))
	f.Add([]byte(`{"standardBusinessDocumentHeader": 1, "StandardBusinessDocumentHeader": null}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := ParseHeader(in)
		// The one-pass parse reads what the two-pass one did, but for a
		// document that spells the header member two ways.
		oh, oerr := parseHeaderTwoPass(in)
		if (err == nil) != (oerr == nil) {
			var top map[string]json.RawMessage
			if json.Unmarshal(in, &top) != nil {
				t.Fatalf("one pass: %v, two passes: %v", err, oerr)
			}
			if _, ok := member(top, "standardBusinessDocumentHeader"); ok {
				t.Fatalf("one pass: %v, two passes: %v", err, oerr)
			}
		}
		if err == nil && oerr == nil && h != oh {
			t.Fatalf("one pass %+v, two passes %+v", h, oh)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not marked malformed: %v", err)
			}
			return
		}
		if !isUUID(h.MessageID) || !isUUID(h.ConversationID) || h.Type == "" {
			t.Fatalf("accepted header without ids or type: %+v", h)
		}
		// A header we accept must be answerable: the reply parses back to
		// the same message and conversation.
		raw, err := StatusReply(in, "MOTTATT", time.Unix(0, 0))
		if err != nil {
			t.Fatalf("cannot answer an accepted message: %v", err)
		}
		r, err := ParseHeader(raw)
		if err != nil {
			t.Fatalf("reply does not parse: %v", err)
		}
		if r.MessageID != h.MessageID || r.ConversationID != h.ConversationID || r.Status != "MOTTATT" {
			t.Fatalf("reply lost ids: %+v vs %+v", r, h)
		}
	})
}

func TestWithSender(t *testing.T) {
	orig := sampleSBD("arkivmelding", `{"hoveddokument": "a.pdf"}`)
	raw, err := WithSender(orig, "0192:987654321")
	require.NoError(t, err)
	h, err := ParseHeader(raw)
	require.NoError(t, err)
	assert.Equal(t, "0192:987654321", h.Sender)
	assert.Equal(t, testMessageID, h.MessageID)
	assert.Contains(t, string(raw), `"hoveddokument":"a.pdf"`)
}

// parseHeaderTwoPass is ParseHeader as it was before issue 18, the oracle of
// FuzzParseHeader: the whole document into sbdWire, then again into a map.
func parseHeaderTwoPass(sbd []byte) (Header, error) {
	var w sbdWire
	if err := json.Unmarshal(sbd, &w); err != nil {
		return Header{}, fmt.Errorf("%w: sbd json: %v", ErrMalformed, err)
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
	var top map[string]json.RawMessage
	if err := json.Unmarshal(sbd, &top); err != nil {
		return Header{}, fmt.Errorf("%w: sbd json: %v", ErrMalformed, err)
	}
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

package transport

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// ResponseProcess is the process a status or receipt answering a message of
// process p travels under (local-api.md §12.10).
func ResponseProcess(p string) string {
	switch {
	case strings.Contains(p, ":einnsyn:"):
		return ProcessEinnsynResponse
	case strings.Contains(p, ":avtalt:"):
		return ProcessAvtaltResponse
	default:
		return ProcessArkivmeldingResponse
	}
}

// StatusReply builds the status message a receiving integration point sends
// back for the message orig (local-api.md §12.10): same messageId and
// conversationId, sender and receiver swapped, the response process, every
// scope (so a MessageChannel scope) kept, business message {"status": status}.
func StatusReply(orig []byte, status string, now time.Time) ([]byte, error) {
	h, err := ParseHeader(orig)
	if err != nil {
		return nil, fmt.Errorf("reading message to answer: %w", err)
	}
	return StatusReplyTo(orig, h, status, now)
}

// StatusReplyTo is StatusReply for a caller that has read orig's header
// already (h is ParseHeader(orig)): a simulated peer answers every message
// twice, and reading the SBD again was half the cost of each answer.
func StatusReplyTo(orig []byte, h Header, status string, now time.Time) ([]byte, error) {
	return reply(orig, h, h.MessageID, "2.0", StandardStatus, TypeStatus, h.Process,
		map[string]any{"status": status}, now)
}

// ArkivmeldingReceipt builds the arkivmelding_kvittering a receiving archive
// sends for orig: a new messageId, same conversation, receiptType as given.
func ArkivmeldingReceipt(orig []byte, receiptType string, now time.Time) ([]byte, error) {
	h, err := ParseHeader(orig)
	if err != nil {
		return nil, fmt.Errorf("reading message to answer: %w", err)
	}
	body := map[string]any{
		"receiptType":        receiptType,
		"relatedToMessageId": h.MessageID,
		"messages":           []any{},
	}
	return reply(orig, h, uuid.NewString(), "2.0", StandardArkivmeldingKvittering,
		TypeArkivmeldingKvittering, h.Process, body, now)
}

// EinnsynReceipt builds the einnsyn_kvittering eInnsyn sends for a
// publisering (local-api.md §12.9); its status is JSON encoded as a string.
func EinnsynReceipt(orig []byte, now time.Time) ([]byte, error) {
	h, err := ParseHeader(orig)
	if err != nil {
		return nil, fmt.Errorf("reading message to answer: %w", err)
	}
	status, err := json.Marshal(map[string]any{"type": "OK", "messageId": h.MessageID})
	if err != nil {
		return nil, fmt.Errorf("encoding einnsyn status: %w", err)
	}
	body := map[string]any{
		"dokumentId":    h.MessageID,
		"status":        string(status),
		"referanseType": "publisering",
	}
	return reply(orig, h, uuid.NewString(), "1.0", StandardEinnsynKvittering,
		TypeEinnsynKvittering, h.Process, body, now)
}

func reply(orig []byte, h Header, messageID, typeVersion, standard, typ, process string,
	body map[string]any, now time.Time) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(orig, &top); err != nil {
		return nil, fmt.Errorf("decoding sbd: %w", err)
	}
	// encoding/json matched the header's keys case-insensitively when
	// ParseHeader read them, so the reply must find the same members.
	var hdr map[string]any
	if err := json.Unmarshal(takeFold(top, "standardBusinessDocumentHeader"), &hdr); err != nil {
		return nil, fmt.Errorf("decoding sbd header: %w", err)
	}
	sender, receiver := takeFold(hdr, "sender"), takeFold(hdr, "receiver")
	if sender == nil {
		sender = []any{map[string]any{"identifier": map[string]any{"value": h.Sender, "authority": authorityOrg}}}
	}
	hdr["sender"], hdr["receiver"] = receiver, sender
	takeFold(hdr, "documentIdentification")
	hdr["documentIdentification"] = map[string]any{
		"standard":            standard,
		"typeVersion":         typeVersion,
		"instanceIdentifier":  messageID,
		"type":                typ,
		"creationDateAndTime": now.UTC().Format(time.RFC3339Nano),
	}
	bs, _ := takeFold(hdr, "businessScope").(map[string]any)
	hdr["businessScope"] = bs
	if scopes, ok := takeFold(bs, "scope").([]any); ok {
		bs["scope"] = scopes
		for _, s := range scopes {
			if m, ok := s.(map[string]any); ok {
				if typ := takeFold(m, "type"); typ != nil {
					m["type"] = typ
				}
				if m["type"] == "ConversationId" {
					takeFold(m, "identifier")
					m["identifier"] = ResponseProcess(process)
				}
			}
		}
	}
	takeFold(hdr, "manifest")
	return json.Marshal(map[string]any{"standardBusinessDocumentHeader": hdr, typ: body})
}

// takeFold removes every member of m whose name matches key without regard
// to case and returns the one encoding/json would have bound: the exact name
// if present, else the last case-insensitive match.
func takeFold[V any](m map[string]V, key string) V {
	var v V
	exact := false
	for k, x := range m {
		if k == key {
			v, exact = x, true
		} else if strings.EqualFold(k, key) && !exact {
			v = x
		}
		if strings.EqualFold(k, key) {
			delete(m, k)
		}
	}
	return v
}

// WithSender returns sbd with sender[0].identifier.value set to value, all
// else unchanged in meaning. DPO uses it to rewrite an on-behalf-of sender
// 0192:A:B to B before sending (spec channels.md §2.3).
func WithSender(sbd []byte, value string) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(sbd, &top); err != nil {
		return nil, fmt.Errorf("decoding sbd: %w", err)
	}
	var hdr map[string]any
	if err := json.Unmarshal(takeFold(top, "standardBusinessDocumentHeader"), &hdr); err != nil {
		return nil, fmt.Errorf("decoding sbd header: %w", err)
	}
	senders, _ := takeFold(hdr, "sender").([]any)
	first := map[string]any{}
	if len(senders) > 0 {
		if m, ok := senders[0].(map[string]any); ok {
			first = m
		}
	}
	id, _ := takeFold(first, "identifier").(map[string]any)
	if id == nil {
		id = map[string]any{"authority": authorityOrg}
	}
	takeFold(id, "value")
	id["value"] = value
	first["identifier"] = id
	if len(senders) == 0 {
		senders = []any{first}
	} else {
		senders[0] = first
	}
	hdr["sender"] = senders
	raw, err := json.Marshal(hdr)
	if err != nil {
		return nil, fmt.Errorf("encoding sbd header: %w", err)
	}
	top["standardBusinessDocumentHeader"] = raw
	return json.Marshal(top)
}

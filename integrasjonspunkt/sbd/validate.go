package sbd

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/efm-go/efm/addressing/ident"
)

// Violation is one violated constraint (local-api.md §2.7 errors[]).
type Violation struct {
	Path     string // dotted property path
	Code     string // constraint name: NotNull, MessageType, UUID, Future, ...
	Message  string
	Rejected any // the offending value; nil when absent
}

// Violations is a non-empty list of violations; as an error it is the
// ConstraintViolation of the contract.
type Violations []Violation

func (vs Violations) Error() string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.Path + ": " + v.Message
	}
	return strings.Join(parts, ", ")
}

const hdr = "standardBusinessDocumentHeader"

// ValidateHeader applies the header constraints of §15.1. now is the time the
// Future constraint compares with.
func ValidateHeader(d *Document, now time.Time) Violations {
	var vs Violations
	add := func(path, code, msg string, rejected any) {
		vs = append(vs, Violation{Path: path, Code: code, Message: msg, Rejected: rejected})
	}
	h := d.Header
	if h == nil {
		add(hdr, "NotNull", "must not be null", nil)
		return vs
	}
	if h.HeaderVersion == "" {
		add(hdr+".headerVersion", "NotNull", "must not be null", nil)
	}
	for _, side := range []struct {
		name string
		ps   []Partner
	}{{"sender", h.Sender}, {"receiver", h.Receiver}} {
		p := hdr + "." + side.name
		if len(side.ps) > 1 {
			add(p, "Size", "size must be between 0 and 1", nil)
			continue
		}
		for _, pt := range side.ps {
			if pt.Identifier == nil {
				add(p+"[0].identifier", "NotNull", "must not be null", nil)
				continue
			}
			if pt.Identifier.Value == "" {
				add(p+"[0].identifier.value", "NotNull", "must not be null", nil)
			} else if side.name == "sender" && !validParty(pt.Identifier.Value) {
				add(p+"[0].identifier.value", "SenderValue", "must be a valid party identifier", maskIfPerson(pt.Identifier.Value))
			}
			switch pt.Identifier.Authority {
			case "":
				add(p+"[0].identifier.authority", "NotNull", "must not be null", nil)
			case AuthorityISO6523, AuthorityNHN:
			default:
				add(p+"[0].identifier.authority", "OneOf", "must be one of iso6523-actorid-upis, nhn-actorid", pt.Identifier.Authority)
			}
		}
	}
	di := h.DocumentIdentification
	if di == nil {
		add(hdr+".documentIdentification", "NotNull", "must not be null", nil)
	} else {
		p := hdr + ".documentIdentification"
		if di.Standard == "" {
			add(p+".standard", "NotNull", "must not be null", nil)
		}
		if di.TypeVersion == "" {
			add(p+".typeVersion", "NotNull", "must not be null", nil)
		}
		if di.Type == "" {
			add(p+".type", "NotNull", "must not be null", nil)
		} else if _, ok := LookupType(di.Type); !ok && !strings.EqualFold(di.Type, "feil") {
			add(p+".type", "MessageType", "Must be a known business message type", di.Type)
		}
		if di.InstanceIdentifier != "" && !IsUUID(di.InstanceIdentifier) {
			add(p+".instanceIdentifier", "UUID", "Must be a valid UUID", di.InstanceIdentifier)
		}
	}
	bs := h.BusinessScope
	switch {
	case bs == nil:
		add(hdr+".businessScope", "NotNull", "must not be null", nil)
	case bs.Scope == nil:
		add(hdr+".businessScope.scope", "NotNull", "must not be null", nil)
	case len(bs.Scope) == 0:
		add(hdr+".businessScope.scope", "Size", "size must be between 1 and 2147483647", nil)
	default:
		convScopes := 0
		for i, s := range bs.Scope {
			p := fmt.Sprintf("%s.businessScope.scope[%d]", hdr, i)
			switch {
			case s.Type == "":
				add(p+".type", "NotNull", "must not be null", nil)
			case !slices.Contains(ScopeTypes, s.Type):
				add(p+".type", "OneOf", "must be one of "+strings.Join(ScopeTypes, ", "), s.Type)
			}
			for j, si := range s.ScopeInformation {
				if si.ExpectedResponseDateTime == "" {
					continue
				}
				ip := fmt.Sprintf("%s.scopeInformation[%d].expectedResponseDateTime", p, j)
				t, err := ParseTime(si.ExpectedResponseDateTime)
				if err != nil {
					add(ip, "DateTime", "must be an ISO-8601 date-time", si.ExpectedResponseDateTime)
				} else if !t.After(now) {
					add(ip, "Future", "must be a future date", si.ExpectedResponseDateTime)
				}
			}
			if s.Type != ScopeConversationID {
				continue
			}
			convScopes++
			if s.InstanceIdentifier != "" && !IsUUID(s.InstanceIdentifier) {
				add(p+".instanceIdentifier", "SbdScopeConditionalInstanceIdentifierUuid", "Must be a valid UUID", s.InstanceIdentifier)
			}
		}
		cs := d.ConversationScope()
		switch {
		case convScopes == 0 || cs.Identifier == "":
			add(hdr+".businessScope.scope[ConversationId].identifier", "NotNull", "must not be null", nil)
		case convScopes > 1:
			add(hdr+".businessScope.scope", "ConversationIdScope", "must hold exactly one ConversationId scope", nil)
		}
	}
	return vs
}

// ValidateBusiness reports required business message fields that are absent
// or null (§12, D8). An empty string is a value, as for the reference's
// NotNull: Digdir's own clients send publisering.orgnr and innsynskrav.epost
// empty.
func ValidateBusiness(d *Document) Violations {
	var vs Violations
	for _, f := range schemas[d.Type] {
		if !f.required {
			continue
		}
		if lookup(d.Business, f.path) == nil {
			vs = append(vs, Violation{Path: d.Type + "." + f.path, Code: "NotNull", Message: "must not be null"})
		}
	}
	return vs
}

// IsUUID reports whether s is a UUID in the canonical 36-character form.
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

func validParty(v string) bool {
	_, err := ident.ParseID(v)
	return err == nil
}

// maskIfPerson keeps a person number out of an error body's rejectedValue,
// which can reach logs and proxies.
func maskIfPerson(v string) string {
	if ident.LooksLikePersonNumber(v) {
		return ident.Mask
	}
	return v
}

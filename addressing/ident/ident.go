// Package ident validates the party identifiers of eFormidling offline, before any registry
// lookup (spec/addressing.md §2): organisation numbers (mod 11), fødselsnummer, D-number,
// H-number and synthetic test numbers, and the ISO 6523 forms of local-api.md §2.5.
//
// A typo therefore costs a precise 400 instead of a registry round trip and a vague "not found".
// Every rejection wraps ErrInvalid, so an HTTP layer maps errors.Is(err, ErrInvalid) to 400 and
// uses the more specific sentinel for its message.
//
// A person number is held in a PersonID, which formats itself masked in every fmt verb, in slog
// and in JSON: only Reveal returns the digits. Error strings of this package never contain the
// number being validated.
//
// This package is a leaf: it imports only the standard library.
package ident

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is wrapped by every validation error of this package: the identifier was rejected
// offline and no registry was asked (HTTP 400 in the local API).
var ErrInvalid = errors.New("invalid identifier")

// The error catalogue of spec/addressing.md §2.3, offline rows. Each wraps ErrInvalid.
var (
	// ErrUnrecognised: the identifier matches no accepted form (local-api.md §2.5).
	ErrUnrecognised = fmt.Errorf("%w: matches no accepted form (9-digit organisation number, 0192:<orgnr>, 11-digit person number, FIKS IO UUID, her-id:<n>, fastlege-for:<person number>)", ErrInvalid)
	// ErrUnsupportedICD: an ISO 6523 identifier with an ICD other than 0192; it parses but only
	// 0192 (NO:ORG) is routable.
	ErrUnsupportedICD = fmt.Errorf("%w: only ICD 0192 (Norwegian organisation numbers) is supported", ErrInvalid)
	// ErrOrgCheckDigit: a 9-digit organisation number whose mod-11 check digit is wrong
	// (project rule; the reference lets the SR answer 404).
	ErrOrgCheckDigit = fmt.Errorf("%w: organisation number check digit is wrong", ErrInvalid)
	// ErrPersonCheckDigits: an 11-digit person number whose mod-11 check digits are wrong.
	ErrPersonCheckDigits = fmt.Errorf("%w: person number check digits are wrong", ErrInvalid)
	// ErrPersonDate: the check digits are right but the date part is no day and month, even after
	// removing the D-number, H-number and synthetic offsets.
	ErrPersonDate = fmt.Errorf("%w: person number has no valid birth date part", ErrInvalid)
	// ErrSyntheticNotAllowed: a synthetic test number while difi.move.identifier.synthetic.allow
	// is false (its default).
	ErrSyntheticNotAllowed = fmt.Errorf("%w: synthetic person numbers are not allowed (set difi.move.identifier.synthetic.allow=true)", ErrInvalid)
)

// Kind says what an ID names.
type Kind int

// The kinds of identifier, in the reference's parsing order.
const (
	KindUnknown      Kind = iota
	KindOrganisation      // 9-digit organisation number, possibly with an on-behalf-of part
	KindPerson            // 11-digit fødselsnummer, D-number, H-number or synthetic number
	KindFiksIO            // FIKS IO account UUID (legacy DPFIO)
	KindHerID             // her-id:<n>, a health actor (DPH)
	KindFastlege          // fastlege-for:<person number>, the patient's regular GP (DPH)
)

// String names the kind; it is used in logs and messages.
func (k Kind) String() string {
	switch k {
	case KindOrganisation:
		return "organisation"
	case KindPerson:
		return "person"
	case KindFiksIO:
		return "fiksio"
	case KindHerID:
		return "her-id"
	case KindFastlege:
		return "fastlege-for"
	default:
		return "unknown"
	}
}

// ICDNorwegianOrg is the ISO 6523 ICD of Norwegian organisation numbers (NO:ORG), the only one
// eFormidling routes.
const ICDNorwegianOrg = "0192"

// Policy holds the switches that change what validation accepts. The zero value is the
// production default.
type Policy struct {
	// AllowSynthetic mirrors difi.move.identifier.synthetic.allow (default false): whether the
	// synthetic test numbers of Skatteetaten/Tenor, NHN and Digdir are accepted.
	AllowSynthetic bool
}

// ID is a parsed party identifier. The zero value is KindUnknown. An ID that holds a person
// number formats itself masked, like PersonID.
type ID struct {
	kind   Kind
	org    OrgNumber // KindOrganisation: the primary (operator) organisation
	part   OrgNumber // KindOrganisation, 0192:A:B form: the represented organisation B
	person PersonID  // KindPerson, KindFastlege
	value  string    // KindFiksIO: the UUID; KindHerID: the number
}

// Kind says what the identifier names.
func (id ID) Kind() Kind { return id.kind }

// Org returns the primary organisation number for KindOrganisation.
func (id ID) Org() (OrgNumber, bool) { return id.org, id.kind == KindOrganisation }

// Part returns the represented organisation of the legacy on-behalf-of form 0192:A:B.
func (id ID) Part() (OrgNumber, bool) { return id.part, id.part != "" }

// PartOrPrimary is B for 0192:A:B, otherwise the primary organisation (local-api.md §2.5).
func (id ID) PartOrPrimary() OrgNumber {
	if id.part != "" {
		return id.part
	}
	return id.org
}

// Person returns the person number for KindPerson and KindFastlege.
func (id ID) Person() (PersonID, bool) {
	return id.person, id.kind == KindPerson || id.kind == KindFastlege
}

// IsPerson reports whether the ID names a citizen. Answers about such IDs are never cached
// (addressing.md §5.3).
func (id ID) IsPerson() bool { return id.kind == KindPerson }

// RevealPrimary returns the primary identifier exactly as the Service Registry expects it in
// its URL path (addressing.md §2): the bare organisation number, the 11-digit person number,
// the FIKS IO UUID, her-id:<n> or fastlege-for:<person number>. It reveals a person number:
// use it only to build a registry request, never in a log line or an error.
func (id ID) RevealPrimary() string {
	switch id.kind {
	case KindOrganisation:
		return string(id.org)
	case KindPerson:
		return id.person.Reveal()
	case KindFiksIO:
		return id.value
	case KindHerID:
		return "her-id:" + id.value
	case KindFastlege:
		return "fastlege-for:" + id.person.Reveal()
	default:
		return ""
	}
}

// String is the loggable form: organisation numbers in full, person numbers masked.
func (id ID) String() string {
	switch id.kind {
	case KindOrganisation:
		if id.part != "" {
			return ICDNorwegianOrg + ":" + string(id.org) + ":" + string(id.part)
		}
		return string(id.org)
	case KindPerson:
		return Mask
	case KindFastlege:
		return "fastlege-for:" + Mask
	case KindFiksIO:
		return id.value
	case KindHerID:
		return "her-id:" + id.value
	default:
		return ""
	}
}

// Format prints String for every verb, so no verb (%v, %+v, %#v, %q, %x, %d) can reveal a person
// number.
func (id ID) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(id.String())) }

// GoString is String, for %#v through interfaces that bypass Format.
func (id ID) GoString() string { return id.String() }

// MarshalText is String: an ID inside a JSON document or a log record stays masked.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// ParseID parses an identifier with the default Policy.
func ParseID(s string) (ID, error) { return Policy{}.ParseID(s) }

// ParseOrgNumber parses a 9-digit organisation number with or without the 0192: prefix.
func ParseOrgNumber(s string) (OrgNumber, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, ICDNorwegianOrg+":"); ok {
		s = rest
	}
	return parseOrg(s)
}

// ParsePersonID parses an 11-digit person number with the default Policy.
func ParsePersonID(s string) (PersonID, error) { return Policy{}.ParsePersonID(s) }

// ParseID parses an identifier in the reference's order (addressing.md §2): ISO 6523
// organisation (a bare 9-digit string meaning ICD 0192), person number, FIKS IO UUID, NHN
// identifier; the first form that matches wins. A form that matches but fails its check
// (wrong check digit, synthetic not allowed) is reported as such, not as ErrUnrecognised.
func (p Policy) ParseID(s string) (ID, error) {
	s = strings.TrimSpace(s)
	switch {
	case isDigits(s) && len(s) == 9, strings.Contains(s, ":") && isDigits(s[:strings.IndexByte(s, ':')]) && strings.IndexByte(s, ':') == 4:
		return parseISO6523(s)
	case isDigits(s) && len(s) == 11:
		pid, err := p.ParsePersonID(s)
		if err != nil {
			return ID{}, err
		}
		return ID{kind: KindPerson, person: pid}, nil
	case isUUID(s):
		return ID{kind: KindFiksIO, value: strings.ToLower(s)}, nil
	}
	if n, ok := strings.CutPrefix(s, "her-id:"); ok {
		if n == "" || len(n) > 20 || !isDigits(n) {
			return ID{}, fmt.Errorf("parsing her-id: %w", ErrUnrecognised)
		}
		return ID{kind: KindHerID, value: n}, nil
	}
	if n, ok := strings.CutPrefix(s, "fastlege-for:"); ok {
		pid, err := p.ParsePersonID(n)
		if err != nil {
			return ID{}, fmt.Errorf("parsing fastlege-for: %w", err)
		}
		return ID{kind: KindFastlege, person: pid}, nil
	}
	return ID{}, ErrUnrecognised
}

// parseISO6523 handles <4-digit ICD>:<org id>[:<part id>][:<one digit source indicator>] and a
// bare 9-digit number.
func parseISO6523(s string) (ID, error) {
	if isDigits(s) {
		org, err := parseOrg(s)
		if err != nil {
			return ID{}, err
		}
		return ID{kind: KindOrganisation, org: org}, nil
	}
	fields := strings.Split(s, ":")
	if len(fields) > 4 || len(fields) < 2 {
		return ID{}, ErrUnrecognised
	}
	if len(fields) == 4 || (len(fields) == 3 && len(fields[2]) == 1) {
		// A trailing one-digit source indicator carries no routing information.
		if len(fields[len(fields)-1]) != 1 || !isDigits(fields[len(fields)-1]) {
			return ID{}, ErrUnrecognised
		}
		fields = fields[:len(fields)-1]
	}
	if fields[0] != ICDNorwegianOrg {
		return ID{}, ErrUnsupportedICD
	}
	org, err := parseOrg(fields[1])
	if err != nil {
		return ID{}, err
	}
	id := ID{kind: KindOrganisation, org: org}
	if len(fields) == 3 {
		part, err := parseOrg(fields[2])
		if err != nil {
			return ID{}, fmt.Errorf("parsing represented organisation: %w", err)
		}
		id.part = part
	}
	return id, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isUUID accepts the canonical 36-character form, case-insensitive.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

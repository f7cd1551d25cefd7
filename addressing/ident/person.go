package ident

import (
	"fmt"
	"log/slog"
)

// Mask is what a person number prints as, everywhere: eleven asterisks, so a reader still sees
// that a person number was there.
const Mask = "***********"

// PersonID is a validated 11-digit person number: fødselsnummer, D-number, H-number or a
// synthetic test number. It prints masked in every fmt verb, in slog, in JSON and as text;
// only Reveal returns the digits.
//
// The digits live in an unexported field so that a PersonID can only come from ParsePersonID
// (never from an unchecked string conversion). The masking protects the value, not a struct that
// holds it in an unexported field: fmt prints such fields by reflection. Never log whole structs.
// The zero value is "no person" and also prints masked.
type PersonID struct {
	digits string
}

// Reveal returns the eleven digits. Call it only to build a KRR/SR request or a channel payload,
// never for a log line, metric label, error string, status description or stored event.
func (p PersonID) Reveal() string { return p.digits }

// IsZero reports whether p holds no number.
func (p PersonID) IsZero() bool { return p.digits == "" }

// String returns Mask.
func (PersonID) String() string { return Mask }

// GoString returns Mask, so %#v does not print the struct field.
func (PersonID) GoString() string { return Mask }

// Format writes Mask for every verb (%v %+v %#v %s %q %x %d ...), because fmt would otherwise
// print the struct's field for verbs that bypass String.
func (PersonID) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Mask)) }

// LogValue returns Mask, for slog.
func (PersonID) LogValue() slog.Value { return slog.StringValue(Mask) }

// MarshalText returns Mask. Reflective encoders (JSON, log handlers, error reporters) are where
// an identifier leaks by accident, so they get the mask; a wire payload that must carry the
// number takes Reveal into a plain string field, which makes that decision visible in review.
// MarshalJSON follows from this (encoding/json uses MarshalText).
func (PersonID) MarshalText() ([]byte, error) { return []byte(Mask), nil }

// IsDNumber reports a D-number (first digit 4–7: day + 40), given to people without a
// fødselsnummer.
func (p PersonID) IsDNumber() bool {
	return len(p.digits) == 11 && p.digits[0] >= '4' && p.digits[0] <= '7'
}

// IsHNumber reports an H-number (month + 40), an auxiliary number used in health care. NAV's
// synthetic numbers use the same +40 offset and cannot be told apart; they count as H-numbers
// and are accepted whatever Policy.AllowSynthetic says.
func (p PersonID) IsHNumber() bool { return len(p.digits) == 11 && monthKind(p.digits) == monthH }

// IsSynthetic reports a synthetic test number (month + 80 Skatteetaten/Tenor, + 65 NHN,
// + 20 Digdir).
func (p PersonID) IsSynthetic() bool {
	if len(p.digits) != 11 {
		return false
	}
	switch monthKind(p.digits) {
	case monthTenor, monthNHN, monthDigdir:
		return true
	}
	return false
}

var (
	personK1Weights = [9]int{3, 7, 6, 1, 8, 9, 4, 5, 2}
	personK2Weights = [10]int{5, 4, 3, 2, 7, 6, 5, 4, 3, 2}
)

// LooksLikePersonNumber reports whether s is exactly 11 ASCII digits whose two mod-11 check
// digits are right. It ignores the date part on purpose: the central-log scanner uses it as a
// backstop, and a number with an odd date is still somebody's number. About one random 11-digit
// string in 121 passes.
func LooksLikePersonNumber(s string) bool {
	return len(s) == 11 && isDigits(s) && personChecksOK(s)
}

func personChecksOK(s string) bool {
	k1, ok := personCheck(s, personK1Weights[:])
	if !ok || int(s[9]-'0') != k1 {
		return false
	}
	k2, ok := personCheck(s, personK2Weights[:])
	return ok && int(s[10]-'0') == k2
}

// personCheck computes 11 − (Σ digit·weight mod 11); 11 becomes 0, 10 has no check digit.
func personCheck(s string, weights []int) (int, bool) {
	sum := 0
	for i, w := range weights {
		sum += int(s[i]-'0') * w
	}
	switch c := 11 - sum%11; c {
	case 11:
		return 0, true
	case 10:
		return 0, false
	default:
		return c, true
	}
}

type monthClass int

const (
	monthInvalid monthClass = iota
	monthPlain
	monthDigdir // +20
	monthH      // +40: H-number (or NAV synthetic)
	monthNHN    // +65
	monthTenor  // +80
)

func monthKind(s string) monthClass {
	m := int(s[2]-'0')*10 + int(s[3]-'0')
	switch {
	case m >= 1 && m <= 12:
		return monthPlain
	case m >= 21 && m <= 32:
		return monthDigdir
	case m >= 41 && m <= 52:
		return monthH
	case m >= 66 && m <= 77:
		return monthNHN
	case m >= 81 && m <= 92:
		return monthTenor
	}
	return monthInvalid
}

func dayOK(s string) bool {
	d := int(s[0]-'0')*10 + int(s[1]-'0')
	return d >= 1 && d <= 31 || d >= 41 && d <= 71
}

// ParsePersonID validates an 11-digit person number: check digits, then the date part (day, or
// day + 40 for a D-number; month with the H-number or a synthetic offset), then whether the
// Policy allows synthetic numbers. Errors never contain the number.
func (p Policy) ParsePersonID(s string) (PersonID, error) {
	if len(s) != 11 || !isDigits(s) {
		return PersonID{}, ErrUnrecognised
	}
	if !personChecksOK(s) {
		return PersonID{}, ErrPersonCheckDigits
	}
	if !dayOK(s) || monthKind(s) == monthInvalid {
		return PersonID{}, ErrPersonDate
	}
	pid := PersonID{digits: s}
	if pid.IsSynthetic() && !p.AllowSynthetic {
		return PersonID{}, ErrSyntheticNotAllowed
	}
	return pid, nil
}

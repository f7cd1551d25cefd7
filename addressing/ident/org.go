package ident

import "fmt"

// OrgNumber is a validated 9-digit Norwegian organisation number (Enhetsregisteret) without the
// 0192: prefix. Organisation numbers are public data and print in full.
type OrgNumber string

// String returns the nine digits.
func (o OrgNumber) String() string { return string(o) }

// ISO6523 returns the participant form 0192:<orgnr>.
func (o OrgNumber) ISO6523() string { return ICDNorwegianOrg + ":" + string(o) }

// orgWeights are the mod-11 weights of digits 1–8 (addressing.md §2.1).
var orgWeights = [8]int{3, 2, 7, 6, 5, 4, 3, 2}

func parseOrg(s string) (OrgNumber, error) {
	if len(s) != 9 || !isDigits(s) {
		return "", ErrUnrecognised
	}
	want, ok := orgCheckDigit(s)
	if !ok || int(s[8]-'0') != want {
		// The number is public, so naming it helps the operator find the typo.
		return "", fmt.Errorf("organisation number %s: %w", s, ErrOrgCheckDigit)
	}
	return OrgNumber(s), nil
}

// orgCheckDigit computes the check digit of the first 8 digits of s; ok is false when the
// remainder is 1, for which no check digit exists.
func orgCheckDigit(s string) (digit int, ok bool) {
	sum := 0
	for i, w := range orgWeights {
		sum += int(s[i]-'0') * w
	}
	switch r := sum % 11; r {
	case 0:
		return 0, true
	case 1:
		return 0, false
	default:
		return 11 - r, true
	}
}

// ValidOrgNumber reports whether s is a 9-digit string with a correct check digit.
func ValidOrgNumber(s string) bool {
	_, err := parseOrg(s)
	return err == nil
}

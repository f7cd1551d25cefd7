package ident

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// changedDigits yields every string that differs from s in exactly one digit position.
func changedDigits(s string) []string {
	var out []string
	for i := 0; i < len(s); i++ {
		for d := byte('0'); d <= '9'; d++ {
			if d == s[i] {
				continue
			}
			b := []byte(s)
			b[i] = d
			out = append(out, string(b))
		}
	}
	return out
}

func FuzzParseOrgNumber(f *testing.F) {
	for _, s := range []string{"910075918", "910077473", "0192:810074582", "987654321", "", "12345678", "91007591x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		org, err := ParseOrgNumber(s)
		if err != nil {
			if ValidOrgNumber(s) {
				t.Fatalf("ParseOrgNumber rejected what ValidOrgNumber accepts: %v", err)
			}
			return
		}
		digits := org.String()
		if len(digits) != 9 || !isDigits(digits) {
			t.Fatalf("accepted a number that is not 9 digits: %q", digits)
		}
		if !strings.HasSuffix(strings.TrimSpace(s), digits) {
			t.Fatalf("parsed %q from %q", digits, s)
		}
		if org.ISO6523() != "0192:"+digits {
			t.Fatalf("ISO6523 = %q", org.ISO6523())
		}
		for _, c := range changedDigits(digits) {
			if ValidOrgNumber(c) {
				t.Fatalf("%s valid and %s (one digit changed) also valid", digits, c)
			}
		}
	})
}

func FuzzParsePersonID(f *testing.F) {
	for _, s := range []string{"06068700602", "09118532322", "17912099997", "41018510187", "01418510095", "10068700602", "00000000000", "0606870060", ""} {
		f.Add(s, false)
	}
	f.Add("17912099997", true)
	f.Fuzz(func(t *testing.T, s string, allowSynthetic bool) {
		pid, err := Policy{AllowSynthetic: allowSynthetic}.ParsePersonID(s)
		if err != nil {
			if len(s) >= 4 && strings.Contains(err.Error(), s) {
				t.Fatalf("error %q carries the input", err)
			}
			if err == ErrSyntheticNotAllowed && allowSynthetic {
				t.Fatal("synthetic refused although allowed")
			}
		} else {
			if pid.Reveal() != s || !LooksLikePersonNumber(s) {
				t.Fatalf("accepted %q without passing checksums", s)
			}
			if pid.IsSynthetic() && !allowSynthetic {
				t.Fatal("synthetic accepted although not allowed")
			}
			assertMasked(t, pid, s)
		}
		if LooksLikePersonNumber(s) {
			for _, c := range changedDigits(s) {
				if LooksLikePersonNumber(c) {
					t.Fatalf("one digit changed still passes the checksums")
				}
			}
		}
	})
}

func FuzzParseID(f *testing.F) {
	for _, s := range []string{"910075918", "0192:910075918", "0192:910077473:910075918", "0192:910077473:910075918:1", "9908:910075918",
		"06068700602", "3f0c6b1e-1234-4abc-8def-0123456789ab", "her-id:8143154", "fastlege-for:06068700602", ":", "0192:", "0192::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			if id.Kind() != KindUnknown {
				t.Fatal("error with a known kind")
			}
			return
		}
		if id.Kind() == KindUnknown {
			t.Fatal("no error and no kind")
		}
		// The primary identifier is what the SR receives; it must parse back to the same thing.
		again, err := Policy{AllowSynthetic: true}.ParseID(id.RevealPrimary())
		if err != nil {
			t.Fatalf("primary %q of %q does not parse: %v", id.RevealPrimary(), s, err)
		}
		if again.Kind() != id.Kind() || again.RevealPrimary() != id.RevealPrimary() {
			t.Fatalf("round trip changed %v to %v", id, again)
		}
		if p, ok := id.Person(); ok {
			assertMasked(t, id, p.Reveal())
		}
	})
}

func assertMasked(t *testing.T, v any, secret string) {
	t.Helper()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		if out := fmt.Sprintf(verb, v); strings.Contains(out, secret) {
			t.Fatalf("%s revealed the number: %q", verb, out)
		}
	}
	js, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(js), secret) {
		t.Fatalf("json revealed the number: %s", js)
	}
}

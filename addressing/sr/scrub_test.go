package sr

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/efm-go/efm/addressing/ident"
)

func TestDecodeError_Scrubs(t *testing.T) {
	err := decodeError(404, []byte(`{"message":"No service record found for citizen: 06068700602"}`))
	assert.ErrorIs(t, err, ErrNotFound)
	assert.NotContains(t, err.Error(), "06068700602")
	assert.Contains(t, err.Error(), ident.Mask)

	err = decodeError(404, []byte(`{"error_code":"not_found","error_description":"Entity with identifier '910075918' not found."}`))
	assert.Contains(t, err.Error(), "910075918", "organisation numbers stay")

	err = decodeError(503, []byte(`<html>down</html>`))
	assert.ErrorIs(t, err, ErrUnavailable)
	assert.NotErrorIs(t, err, ErrNotFound)
}

var run11 = regexp.MustCompile(`\d+`)

// FuzzScrub: no maximal 11-digit run that passes the person-number checksums survives, and
// nothing else changes length-wise except masked runs.
func FuzzScrub(f *testing.F) {
	f.Add("No service record found for citizen: 06068700602")
	f.Add("06068700602,09118532322 and 910075918")
	f.Add("123456789012345")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		out := Scrub(s)
		for _, r := range run11.FindAllString(out, -1) {
			if ident.LooksLikePersonNumber(r) {
				t.Fatalf("scrubbed output still carries a person number: %q", out)
			}
		}
		if len(out) != len(s) {
			t.Fatalf("length changed: %d → %d", len(s), len(out))
		}
		if Scrub(out) != out {
			t.Fatal("not idempotent")
		}
	})
}

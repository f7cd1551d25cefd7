package ident

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMaskDigitRuns(t *testing.T) {
	for in, want := range map[string]string{
		"05050910077":               "***********",
		"0192:910077473":            "0192:910077473",
		"svar til 05050910077 nå":   "svar til *********** nå",
		"1234567890":                "1234567890",
		"serial 123456789012345678": "serial ******************",
		"":                          "",
	} {
		assert.Equal(t, want, MaskDigitRuns(in), in)
	}
}

// FuzzMaskDigitRuns: the masked text has the same length, keeps every
// non-digit, and holds no run of eleven digits.
func FuzzMaskDigitRuns(f *testing.F) {
	for _, s := range []string{"05050910077", "a12345678901b", "0192:910077473", "1234567890 12345678901"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m := MaskDigitRuns(s)
		require.Equal(t, len(s), len(m))
		run := 0
		for i := 0; i < len(m); i++ {
			if m[i] >= '0' && m[i] <= '9' {
				run++
				require.Less(t, run, 11, "a digit run of 11 survived in %q", m)
				continue
			}
			run = 0
			if s[i] < '0' || s[i] > '9' {
				require.Equal(t, s[i], m[i])
			}
		}
	})
}

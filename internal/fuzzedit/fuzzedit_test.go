package fuzzedit

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestApply(t *testing.T) {
	bases := [][]byte{[]byte("abcdef"), []byte("XYZ")}
	for _, c := range []struct {
		which       uint8
		at          uint32
		cut         uint16
		insert, out string
	}{
		{0, 3, 2, "raw", "raw"},
		{1, 0, 0, "", "abcdef"},
		{1, 2, 1, "--", "ab--def"},
		{1, 6, 0, "!", "abcdef!"},
		{1, 7, 9, "", ""},       // 7 mod 7 = 0, and the cut stops at the end
		{1, 100, 100, "", "ab"}, // 100 mod 7 = 2
		{2, 1, 1, "", "XZ"},
		{3, 0, 6, "", ""},
	} {
		assert.Equal(t, c.out, string(Apply(bases, c.which, c.at, c.cut, []byte(c.insert))), "%+v", c)
	}
	// The bases are never changed.
	assert.Equal(t, "abcdef", string(bases[0]))
}

package baseurl

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCheck(t *testing.T) {
	for in, want := range map[string]string{
		"https://data.brreg.no/enhetsregisteret/api/": "https://data.brreg.no/enhetsregisteret/api",
		"http://127.0.0.1:8080":                       "http://127.0.0.1:8080",
	} {
		got, err := Check("brreg", in)
		assert.NoError(t, err, in)
		assert.Equal(t, want, got)
	}
	for _, in := range []string{"", "data.brreg.no", "ftp://x", "http://", "https:///path"} {
		_, err := Check("brreg", in)
		assert.ErrorContains(t, err, "brreg url", in)
	}
}

package transport

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBaseURL(t *testing.T) {
	u, err := BaseURL("dpi", "difi.move.dpi.uri", "https://sandbox1.ediex.no/api/v2/dpi/")
	require.NoError(t, err)
	assert.Equal(t, "https://sandbox1.ediex.no/api/v2/dpi", u.String())
	for _, raw := range []string{"", "not a url", "/relative", "https://"} {
		_, err := BaseURL("dpi", "difi.move.dpi.uri", raw)
		assert.ErrorContains(t, err, "(difi.move.dpi.uri)", raw)
	}
}

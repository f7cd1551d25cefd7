package api_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestMultipartErrorsAreNamedAsSuch: a body that is not well-formed
// multipart is a MultipartException, not a "JSON parse error"; a bad SBD
// inside good multipart still is one (issue 14, point 15).
func TestMultipartErrorsAreNamedAsSuch(t *testing.T) {
	d := startDaemon(t, nil)
	for name, c := range map[string]struct{ ct, body string }{
		"truncated":   {"multipart/form-data; boundary=XyZ", "--XyZ\r\nContent-Disposition: form-data; name=\"sbd\"\r\n\r\n{\"standardBusinessDocumentHeader\""},
		"no boundary": {"multipart/form-data", "--XyZ--\r\n"},
		"bad header":  {"multipart/form-data; boundary=XyZ", "--XyZ\r\nno colon here\r\n\r\nabc\r\n--XyZ--\r\n"},
	} {
		t.Run(name, func(t *testing.T) {
			r := d.do("POST", "/api/messages/out/multipart", strings.NewReader(c.body), "Content-Type", c.ct)
			m := requireError(t, r, 400, "org.springframework.web.multipart.MultipartException")
			assert.NotContains(t, m["message"], "JSON")
			assert.Contains(t, m["message"], "Multipart parse error")
		})
	}
	body := "--XyZ\r\nContent-Disposition: form-data; name=\"sbd\"\r\nContent-Type: application/json\r\n\r\n{\r\n--XyZ--\r\n"
	r := d.do("POST", "/api/messages/out/multipart", strings.NewReader(body), "Content-Type", "multipart/form-data; boundary=XyZ")
	m := requireError(t, r, 400, "org.springframework.http.converter.HttpMessageNotReadableException")
	assert.Contains(t, m["message"], "JSON parse error")
}

package api_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCrossSiteBrowserRequestsAreRefused: a page on another site must not
// make a browser on the agency's host send, delete or subscribe through the
// loopback API (issue 14, point 2). Client systems send no Origin and no
// Sec-Fetch-Site, and keep working.
func TestCrossSiteBrowserRequestsAreRefused(t *testing.T) {
	d := startDaemon(t, nil)
	evil := []string{"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"}

	body, ct := multipartBody(t, avtaltSBD(dpoOrg), part{"Vedlegg", "vedlegg.pdf", "application/pdf", []byte("x")})
	r := d.do("POST", "/api/messages/out/multipart", body, append([]string{"Content-Type", ct}, evil...)...)
	m := requireError(t, r, 403, "")
	assert.Contains(t, m["message"], "cross-site request refused")

	// Each signal alone is enough: old browsers send only Origin, and a
	// same-site page on another port of this host counts as another origin.
	for name, hdr := range map[string][]string{
		"origin only":    {"Origin", "http://evil.example"},
		"fetch only":     {"Sec-Fetch-Site", "cross-site"},
		"same-site":      {"Sec-Fetch-Site", "same-site"},
		"null origin":    {"Origin", "null"},
		"other loopback": {"Origin", "http://127.0.0.1:1"},
	} {
		t.Run(name, func(t *testing.T) {
			body, _ := jsonMarshal(avtaltSBD(dpoOrg))
			requireError(t, d.do("POST", "/api/messages/out", bytes.NewReader(body), append([]string{"Content-Type", "application/json"}, hdr...)...), 403, "")
		})
	}
	for _, mr := range [][2]string{{"PUT", "/api/messages/out/6f1a4a0e-0000-4000-8000-000000000000"}, {"DELETE", "/api/messages/out/6f1a4a0e-0000-4000-8000-000000000000"},
		{"DELETE", "/api/subscriptions"}, {"POST", "/api/subscriptions"}, {"DELETE", "/api/conversations/1"}} {
		requireError(t, d.do(mr[0], mr[1], bytes.NewReader(nil), evil...), 403, "")
	}
	assert.Contains(t, string(d.get("/manage/prometheus").Body), `efm_api_requests_total{api_version="v1",client="Go-http-client",code="403",route="refused"} `)
	list := d.get("/api/messages/out")
	require.Equal(t, 200, list.Code)
	assert.Empty(t, list.JSON(t)["content"], "a refused request created a message")

	// Reading stays possible (no state changes), and so do client systems
	// and same-origin pages.
	assert.Equal(t, 200, d.do("GET", "/api/conversations", nil, evil...).Code)
	_, id := d.create(avtaltSBD(dpoOrg))
	require.NotEmpty(t, id)
	b, _ := jsonMarshal(avtaltSBD(dpoOrg))
	r = d.do("POST", "/api/messages/out", bytes.NewReader(b), "Content-Type", "application/json", "Sec-Fetch-Site", "same-origin", "Origin", d.base)
	assert.Equal(t, 200, r.Code, "body: %s", r.Body)
}

package api_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestExposedAPIServesTLSAndAuth binds beyond loopback as operations.md §1.7
// allows: the API must then really speak TLS with the difi.ssl keystore, and
// /api and /manage (but for the public health probe) require basic auth.
func TestExposedAPIServesTLSAndAuth(t *testing.T) {
	id := businessCertificate(t)
	d := startDaemon(t, map[string]string{
		"server.address":              "0.0.0.0",
		"difi.ssl.enabled":            "true",
		"difi.ssl.key-store":          id.KeystorePath,
		"difi.ssl.key-alias":          id.Alias,
		"difi.ssl.key-store-password": id.KeystorePassword,
		"difi.security.enable":        "true",
		"difi.security.user.name":     "efm",
		"difi.security.user.password": "hemmelig",
		"efm.manage.public-health":    "true",
	})
	u, err := url.Parse(d.base)
	require.NoError(t, err)
	base := "https://127.0.0.1:" + u.Port()

	plain, err := http.Get("http://127.0.0.1:" + u.Port() + "/api/conversations")
	if err == nil {
		b, _ := io.ReadAll(plain.Body)
		plain.Body.Close()
		assert.NotEqual(t, 200, plain.StatusCode, "plain HTTP answered: %s", b)
	}

	// The business certificate names no loopback host; the test checks the
	// served certificate itself instead.
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	get := func(path string, auth bool) *http.Response {
		req, err := http.NewRequest("GET", base+path, nil)
		require.NoError(t, err)
		if auth {
			req.SetBasicAuth("efm", "hemmelig")
		}
		res, err := c.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res
	}
	res := get("/api/conversations", false)
	assert.Equal(t, 401, res.StatusCode)
	require.NotNil(t, res.TLS)
	assert.True(t, res.TLS.PeerCertificates[0].Equal(id.Cert), "served certificate is not the difi.ssl keystore's")
	assert.Equal(t, 200, get("/api/conversations", true).StatusCode)
	for _, p := range []string{"/manage/info", "/manage/prometheus", "/manage/metrics"} {
		assert.Equal(t, 401, get(p, false).StatusCode, p)
		assert.Equal(t, 200, get(p, true).StatusCode, p)
	}
	assert.NotEqual(t, 401, get("/manage/health", false).StatusCode, "efm.manage.public-health keeps health open")
}

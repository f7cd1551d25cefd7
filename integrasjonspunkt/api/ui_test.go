package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func uiServer(t *testing.T, auth *BasicAuth, last *CheckReport) *httptest.Server {
	t.Helper()
	s := New(Deps{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Health: func(context.Context) Health {
			return Health{Status: Degraded, Components: map[string]Component{
				"certificate": {Status: Degraded, Details: map[string]any{"daysLeft": 12}},
				"queue":       {Status: Up, Details: map[string]any{"pending": 3}},
			}}
		},
		Info: func() any {
			return map[string]any{"orgnr": "910077473", "channels": []string{"DPO"}, "build": map[string]any{"version": "1.2.3"}}
		},
		Ready:     func(context.Context) error { return nil },
		BasicAuth: auth,
		LastCheck: func() *CheckReport { return last },
	})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv
}

func getPage(t *testing.T, url, user, pass string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// The pages follow the API's auth: exposed beyond loopback they need the
// same user; and nothing a check or a remote said can become markup.
func TestStatusPage_AuthEscapingAndFix(t *testing.T) {
	last := &CheckReport{At: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Lines: []CheckLine{
		{Part: "maskinporten", Result: "FAIL", Error: `<script>alert(1)</script>`, Fix: "set difi.move.oidc.clientId"},
	}}
	srv := uiServer(t, &BasicAuth{User: "drift", Password: "hemmelig"}, last)

	resp, _ := getPage(t, srv.URL+"/", "", "")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, _ = getPage(t, srv.URL+"/", "drift", "feil")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	resp, body := getPage(t, srv.URL+"/", "drift", "hemmelig")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'none'")
	assert.Contains(t, body, `id="health" class="state DEGRADED"`)
	assert.Contains(t, body, `<b id="version">1.2.3</b>`)
	assert.Contains(t, body, "Renew the business certificate", "a component not UP carries its fix")
	assert.Contains(t, body, `<tr data-part="maskinporten">`)
	assert.NotContains(t, body, "<script>")
	assert.Contains(t, body, "&lt;script&gt;")
	assert.NotContains(t, body, "http://", "no asset from elsewhere")
	assert.NotContains(t, body, "https://")

	resp, css := getPage(t, srv.URL+"/ui/style.css", "", "")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, css, "body{")
}

func TestMaskPersonNumbers(t *testing.T) {
	for in, want := range map[string]string{
		"05050910077":               "***********",
		"0192:910077473":            "0192:910077473",
		"svar til 05050910077 nå":   "svar til *********** nå",
		"1234567890":                "1234567890",
		"serial 123456789012345678": "serial ******************",
		"":                          "",
	} {
		assert.Equal(t, want, maskPersonNumbers(in), in)
	}
}

// FuzzMaskPersonNumbers: the masked text has the same length, keeps every
// non-digit, and holds no run of eleven digits.
func FuzzMaskPersonNumbers(f *testing.F) {
	for _, s := range []string{"05050910077", "a12345678901b", "0192:910077473", "1234567890 12345678901"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m := maskPersonNumbers(s)
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

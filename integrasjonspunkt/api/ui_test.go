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

func uiServer(t *testing.T, auth *BasicAuth, last *CheckReport, run ...func(context.Context) error) *httptest.Server {
	t.Helper()
	d := Deps{
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
	}
	if len(run) > 0 {
		d.RunCheck = run[0]
	}
	s := New(d)
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
	last := &CheckReport{At: time.Now().Add(-time.Hour), Lines: []CheckLine{
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

// The status page's button runs the check in the daemon and shows the
// result; a form on another site cannot start it.
func TestStatusPage_RunCheckButton(t *testing.T) {
	last := &CheckReport{}
	runs := 0
	srv := uiServer(t, nil, nil, func(context.Context) error {
		runs++
		last.At = time.Now()
		return nil
	})
	_, body := getPage(t, srv.URL+"/", "", "")
	assert.Contains(t, body, `<form method="post" action="/ui/check">`)

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/ui/check", nil)
	req.Header.Set("Origin", srv.URL)
	resp, err := client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/#check", resp.Header.Get("Location"))
	assert.Equal(t, 1, runs)

	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/ui/check", nil)
	req.Header.Set("Origin", "https://evil.example")
	resp, err = client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, 1, runs, "a cross-site form did not start the check")
}

package dpvsim_test

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/efm-go/efm/transport/altinn/altinnsim"
	"github.com/efm-go/efm/transport/dpv/dpvsim"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type fixture struct {
	srv   *httptest.Server
	token string
}

func newFixture(t *testing.T) *fixture {
	iss, err := altinnsim.NewIssuer()
	require.NoError(t, err)
	auth, err := altinnsim.New(altinnsim.Options{MaskinportenKeys: iss.Keys()})
	require.NoError(t, err)
	corr, err := dpvsim.New(dpvsim.Options{Auth: auth})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/authentication/", auth)
	mux.Handle("/", corr)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	mp, err := iss.Token(altinnsim.Grant{ConsumerOrg: "910077473", Scopes: []string{"eformidling:dpv"}})
	require.NoError(t, err)
	return &fixture{srv: srv, token: exchange(t, srv.URL, mp)}
}

func exchange(t *testing.T, base, mp string) string {
	req, _ := http.NewRequest(http.MethodGet, base+altinnsim.ExchangePath, nil)
	req.Header.Set("Authorization", "Bearer "+mp)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	buf := new(bytes.Buffer)
	_, _ = buf.ReadFrom(resp.Body)
	return buf.String()
}

// upload posts fields with mixed-case names, as Altinn binds them
// case-insensitively.
func (f *fixture) upload(t *testing.T, fields map[string]string) (int, map[string]any) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range fields {
		require.NoError(t, mw.WriteField(k, v))
	}
	require.NoError(t, mw.Close())
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+dpvsim.BasePath+"/correspondence/upload", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+f.token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func validFields() map[string]string {
	id := uuid.NewString()
	return map[string]string{
		"Recipients[0]":                                    "urn:altinn:organization:identifier-no:910075918",
		"IdempotentKey":                                    id,
		"Correspondence.ResourceId":                        "eformidling-dpv-meldingsutveksling",
		"Correspondence.SendersReference":                  id,
		"Correspondence.Content.Language":                  "nb",
		"Correspondence.Content.MessageTitle":              "t",
		"Correspondence.Content.MessageSummary":            "s",
		"Correspondence.Content.MessageBody":               "b",
		"Correspondence.Notification.NotificationTemplate": "CustomMessage",
	}
}

func TestSim_Validation(t *testing.T) {
	f := newFixture(t)
	fields := validFields()
	status, out := f.upload(t, fields)
	require.Equal(t, http.StatusOK, status, "%v", out)
	status, _ = f.upload(t, fields)
	assert.Equal(t, http.StatusConflict, status, "same idempotentKey twice")

	for name, mutate := range map[string]func(map[string]string){
		"missing title":  func(m map[string]string) { delete(m, "Correspondence.Content.MessageTitle") },
		"long email":     func(m map[string]string) { m["correspondence.notification.emailBody"] = strings.Repeat("x", 1025) },
		"bad recipient":  func(m map[string]string) { m["Recipients[0]"] = "urn:altinn:organization:identifier-no:12" },
		"key not a uuid": func(m map[string]string) { m["IdempotentKey"] = "abc" },
		"file missing":   func(m map[string]string) { m["correspondence.content.attachments[0].fileName"] = "a.pdf" },
	} {
		t.Run(name, func(t *testing.T) {
			fields := validFields()
			mutate(fields)
			status, out := f.upload(t, fields)
			assert.Equal(t, http.StatusBadRequest, status)
			assert.Equal(t, float64(400), out["status"], "ProblemDetails body")
		})
	}
}

// Package apitest is what tests that run the real daemon as a child process
// need of its local API and of the sandbox's simulators: send the README's
// DPO example, read statuses, inject a simulator fault. Only tests import it.
package apitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// readmeDir holds the README's example message (sbd.json, arkivmelding.xml,
// vedtak.pdf): a DPO archive message to 910075918.
func readmeDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "integrasjonspunkt", "e2e", "testdata", "readme")
}

// SendReadmeMessage sends the README's DPO example with the one-step
// multipart send (E5) and returns its message id.
func SendReadmeMessage(t testing.TB, base string) string {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for _, f := range []struct{ name, file, typ string }{
		{"sbd", "sbd.json", "application/json"},
		{"arkivmelding", "arkivmelding.xml", "application/xml"},
		{"Vedtak", "vedtak.pdf", "application/pdf"},
	} {
		b, err := os.ReadFile(filepath.Join(readmeDir(), f.file))
		require.NoError(t, err)
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, f.name, f.file))
		h.Set("Content-Type", f.typ)
		pw, err := w.CreatePart(h)
		require.NoError(t, err)
		_, _ = pw.Write(b)
	}
	require.NoError(t, w.Close())
	resp, err := http.Post(base+"/api/messages/out/multipart", w.FormDataContentType(), &body)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, "send: %s", b)
	var out struct {
		H struct {
			D struct {
				ID string `json:"instanceIdentifier"`
			} `json:"documentIdentification"`
		} `json:"standardBusinessDocumentHeader"`
	}
	require.NoError(t, json.Unmarshal(b, &out))
	require.NotEmpty(t, out.H.D.ID)
	return out.H.D.ID
}

// Statuses lists a message's statuses in order; nil when the daemon does not answer.
func Statuses(base, id string) []string {
	resp, err := http.Get(base + "/api/statuses/" + id)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var page struct {
		Content []struct{ Status string } `json:"content"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&page)
	var out []string
	for _, s := range page.Content {
		out = append(out, s.Status)
	}
	return out
}

// HasStatus reports whether the message has reached status want.
func HasStatus(base, id, want string) bool {
	for _, s := range Statuses(base, id) {
		if s == want {
			return true
		}
	}
	return false
}

// SimFault injects a fault (JSON, as the simulators' /_sim/faults takes it)
// into the sandbox simulator named service, found through /manage/sandbox.
func SimFault(t testing.TB, base, service, fault string) {
	t.Helper()
	resp, err := http.Get(base + "/manage/sandbox")
	require.NoError(t, err)
	defer resp.Body.Close()
	var sb struct {
		Services []struct {
			Name    string `json:"name"`
			BaseURL string `json:"baseUrl"`
		} `json:"services"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&sb))
	for _, s := range sb.Services {
		if s.Name == service {
			r, err := http.Post(s.BaseURL+"/_sim/faults", "application/json", bytes.NewBufferString(fault))
			require.NoError(t, err)
			r.Body.Close()
			require.Less(t, r.StatusCode, 300, "injecting a fault into %s", service)
			return
		}
	}
	t.Fatalf("the sandbox runs no %s", service)
}

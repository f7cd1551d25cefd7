package dposim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/efm-go/efm/internal/apitest"
	"github.com/efm-go/efm/transport/altinn"
	"github.com/efm-go/efm/transport/altinn/altinnsim"
	"github.com/efm-go/efm/transport/dpo"
	"github.com/efm-go/efm/transport/dpo/dposim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func (f *fixture) token(t testing.TB, org string, scopes ...string) string {
	t.Helper()
	ex, err := altinn.New(altinn.Config{URL: f.srv.URL + altinnsim.ExchangePath, Maskinporten: systemUser{f.iss, org}})
	require.NoError(t, err)
	tok, err := ex.Token(context.Background(), scopes...)
	require.NoError(t, err)
	return tok
}

// call sends a broker request and returns the status and the decoded
// ProblemDetails (or answer) body.
func (f *fixture) call(t *testing.T, method, path, token string, body io.Reader, length int64, expect bool) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+dposim.BasePath+path, body)
	require.NoError(t, err)
	req.ContentLength = length
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/octet-stream")
	tr := &http.Transport{}
	if expect {
		req.Header.Set("Expect", "100-continue")
		tr.ExpectContinueTimeout = 30 * time.Second
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if len(b) > 0 {
		require.NoError(t, json.Unmarshal(b, &out), "%s", b)
	}
	return resp.StatusCode, out
}

func (f *fixture) initialize(t *testing.T, token string) string {
	t.Helper()
	b, _ := json.Marshal(dpo.InitializeRequest{FileName: dpo.FileName, ResourceID: dpo.DefaultResourceID,
		SendersFileTransferReference: "ref", Sender: "0192:" + orgDaemon, Recipients: []string{"0192:" + orgOther}})
	req, _ := http.NewRequest("POST", f.srv.URL+dposim.BasePath+"/filetransfer", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	var ir dpo.InitializeResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&ir))
	return ir.FileTransferID
}

// TestSim_UploadOverTheResourceCap: the broker judges an upload by its
// Content-Length, before reading it: over the resource's
// maxFileTransferSize (by default the virus scan's 2 GiB) it answers 400
// "File size exceeds maximum" as ProblemDetails, and the transfer stays
// Initialized, so a smaller upload still goes through.
func TestSim_UploadOverTheResourceCap(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.token(t, orgDaemon, dpo.ScopeWrite)
	id := f.initialize(t, tok)

	body := &apitest.Zeros{Size: dposim.DefaultMaxFileTransferSize + 1}
	code, p := f.call(t, "POST", "/filetransfer/"+id+"/upload", tok, body, body.Size, true)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, "File size exceeds maximum", p["detail"])
	assert.EqualValues(t, 400, p["status"])
	assert.Zero(t, body.ReadSoFar(), "not one byte of the body was read")

	// Without a Content-Length the broker refuses (ASP.NET's default 500).
	code, p = f.call(t, "POST", "/filetransfer/"+id+"/upload", tok, io.NopCloser(strings.NewReader("x")), -1, false)
	assert.Equal(t, http.StatusInternalServerError, code)
	assert.Equal(t, "Content-length header is required", p["detail"])

	code, p = f.call(t, "POST", "/filetransfer/"+id+"/upload", tok, strings.NewReader("tiny"), 4, false)
	assert.Equal(t, http.StatusOK, code, "%v", p)
	assert.EqualValues(t, 4, p["fileTransferSize"])
}

// TestSim_ResourceConfiguration: PUT /resource/{id} sets the resource's
// maxFileTransferSize under the broker's rules, and uploads are judged by it.
func TestSim_ResourceConfiguration(t *testing.T) {
	f := newFixture(t, nil)
	owner := f.token(t, orgDaemon, dposim.ScopeServiceOwner)
	put := func(tok string, body string) (int, map[string]any) {
		return f.call(t, "PUT", "/resource/"+dpo.DefaultResourceID, tok, strings.NewReader(body), int64(len(body)), false)
	}
	for body, detail := range map[string]string{
		`{"maxFileTransferSize": 0}`:            "Max file transfer size cannot be zero",
		`{"maxFileTransferSize": -1}`:           "Max file transfer size cannot be negative",
		`{"maxFileTransferSize": 3221225472}`:   "Max file transfer size cannot be set higher than the 2GB",
		`{"maxFileTransferSize": 214748364800}`: "higher than 100GB",
	} {
		code, p := put(owner, body)
		assert.Equal(t, http.StatusBadRequest, code, body)
		assert.Contains(t, p["detail"], detail, body)
	}
	code, _ := put(f.token(t, orgDaemon, dpo.ScopeWrite), `{"maxFileTransferSize": 10}`)
	assert.Equal(t, http.StatusForbidden, code, "the broker scope does not configure resources")

	code, _ = put(owner, `{"maxFileTransferSize": 10}`)
	require.Equal(t, http.StatusOK, code)
	code, p := f.call(t, "GET", "/resource/"+dpo.DefaultResourceID, owner, nil, 0, false)
	require.Equal(t, http.StatusOK, code)
	assert.EqualValues(t, 10, p["maxFileTransferSize"])

	tok := f.token(t, orgDaemon, dpo.ScopeWrite)
	id := f.initialize(t, tok)
	code, p = f.call(t, "POST", "/filetransfer/"+id+"/upload", tok, strings.NewReader("eleven byte"), 11, false)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, "File size exceeds maximum", p["detail"])
	code, _ = f.call(t, "POST", "/filetransfer/"+id+"/upload", tok, strings.NewReader("ten bytes!"), 10, false)
	assert.Equal(t, http.StatusOK, code)
}

// TestSim_LargeTransferOnDisk: a transfer over a few MiB is kept in
// Options.Dir, not in memory, comes back byte for byte and is removed when
// every recipient confirmed it.
func TestSim_LargeTransferOnDisk(t *testing.T) {
	f := newFixture(t, nil)
	dir := f.dir

	pkg := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	msg, id := sbd("avtalt", orgDaemon, orgOther)
	ref, err := f.client(t, orgDaemon).Send(context.Background(), dpo.Outgoing{SBD: msg,
		Payload: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(pkg)), nil }})
	require.NoError(t, err)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "the upload is spooled to Dir")

	c := f.client(t, orgOther)
	var pending []dpo.Overview
	require.Eventually(t, func() bool {
		pending, err = c.Pending(context.Background())
		return err == nil && len(pending) == 1
	}, 5*time.Second, 10*time.Millisecond)
	file, err := c.Download(context.Background(), ref)
	require.NoError(t, err)
	defer file.Close()
	assert.Equal(t, id, file.Header.MessageID)
	rc, err := file.OpenPayload()
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(pkg, got), "the package comes back byte for byte")
	require.NoError(t, c.Confirm(context.Background(), ref))
	entries, err = os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "purged after every recipient confirmed")
}

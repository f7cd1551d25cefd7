package updatesim

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"
	"github.com/efm-go/efm/update/manifest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func get(t *testing.T, url string, hdr ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

func post(t *testing.T, url string, body []byte, method ...string) int {
	t.Helper()
	m := http.MethodPost
	if len(method) > 0 {
		m = method[0]
	}
	req, err := http.NewRequest(m, url, bytes.NewReader(body))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func TestServer_PublishOverHTTPAndVerify(t *testing.T) {
	s, err := New(Options{})
	require.NoError(t, err)
	srv := httptest.NewServer(s)
	defer srv.Close()
	bin := bytes.Repeat([]byte("daemon"), 1000)

	require.Equal(t, http.StatusNoContent, post(t, srv.URL+"/_sim/releases?version=1.4.2&os=linux&arch=amd64&channel=stable", bin))
	_, keyText := get(t, srv.URL+"/_sim/key")
	key, err := manifest.ParsePublicKey(string(keyText))
	require.NoError(t, err)
	keys := []minisign.PublicKey{key}

	_, data := get(t, srv.URL+"/manifest.json")
	_, sig := get(t, srv.URL+"/manifest.json.minisig")
	m, err := manifest.Verify(keys, data, sig, manifest.Freshness{Now: time.Now()})
	require.NoError(t, err)
	assert.Equal(t, "1.4.2", m.Environments["production"].Stable)
	r, ok := m.Release("1.4.2")
	require.True(t, ok)
	a, ok := r.Artifact("linux", "amd64")
	require.True(t, ok)
	sum := sha256.Sum256(bin)
	assert.Equal(t, hex.EncodeToString(sum[:]), a.SHA256)

	code, art := get(t, srv.URL+"/"+a.URL)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, bin, art)
	_, asig := get(t, srv.URL+"/"+a.Minisig)
	require.NoError(t, manifest.VerifyBytes(keys, art, asig))

	code, part := get(t, srv.URL+"/"+a.URL, "Range", "bytes=10-")
	assert.Equal(t, http.StatusPartialContent, code)
	assert.Equal(t, bin[10:], part)
	// The §4.3 layout under /releases/ works too.
	code, _ = get(t, srv.URL+"/releases/manifest.json")
	assert.Equal(t, http.StatusOK, code)

	// A second publish moves the serial on.
	require.NoError(t, s.Publish("1.4.3", map[string][]byte{"linux/amd64": bin}, ReleaseOptions{Channels: []string{"stable"}}))
	_, data2 := get(t, srv.URL+"/manifest.json")
	_, sig2 := get(t, srv.URL+"/manifest.json.minisig")
	m2, err := manifest.Verify(keys, data2, sig2, manifest.Freshness{Now: time.Now(), MinSerial: m.Serial})
	require.NoError(t, err)
	assert.Greater(t, m2.Serial, m.Serial)

	var counts map[string]int
	_, b := get(t, srv.URL+"/_sim/requests")
	require.NoError(t, json.Unmarshal(b, &counts))
	assert.Equal(t, 3, counts["manifest"])
	assert.Equal(t, 1, counts["range"])
}

func TestServer_Faults(t *testing.T) {
	s, err := New(Options{})
	require.NoError(t, err)
	srv := httptest.NewServer(s)
	defer srv.Close()
	require.NoError(t, s.Publish("1.0.0", map[string][]byte{"linux/amd64": []byte("bin")}, ReleaseOptions{Channels: []string{"stable"}}))
	keys := []minisign.PublicKey{s.PublicKey()}
	verify := func() error {
		_, data := get(t, srv.URL+"/manifest.json")
		_, sig := get(t, srv.URL+"/manifest.json.minisig")
		_, err := manifest.Verify(keys, data, sig, manifest.Freshness{Now: time.Now(), MinSerial: s.opts.SerialBase + 1})
		return err
	}
	require.NoError(t, verify())

	for _, tt := range []struct {
		fault string
		want  error
	}{
		{`{"bad_signature":true}`, manifest.ErrSignature},
		{`{"expired":true}`, manifest.ErrExpired},
		{`{"replay_serial":true}`, manifest.ErrSerialReplay},
	} {
		require.Equal(t, http.StatusNoContent, post(t, srv.URL+"/_sim/fault", []byte(tt.fault), http.MethodPut))
		require.ErrorIs(t, verify(), tt.want, tt.fault)
	}
	require.Equal(t, http.StatusNoContent, post(t, srv.URL+"/_sim/fault", nil, http.MethodDelete))
	require.NoError(t, verify())

	s.SetFault(Fault{FailNext: 2})
	c1, _ := get(t, srv.URL+"/manifest.json")
	c2, _ := get(t, srv.URL+"/manifest.json")
	c3, _ := get(t, srv.URL+"/manifest.json")
	assert.Equal(t, []int{503, 503, 200}, []int{c1, c2, c3})

	s.SetFault(Fault{TruncateAt: 1})
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/1.0.0/"+ArtifactName("1.0.0", "linux", "amd64"), nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Error(t, err, "a truncated body ends early")

	s.SetFault(Fault{})
	code, _ := get(t, srv.URL+"/nothing/here")
	assert.Equal(t, http.StatusNotFound, code)
	assert.Equal(t, http.StatusBadRequest, post(t, srv.URL+"/_sim/channel?env=production&channel=stable&version=9.9.9", nil))
	assert.Equal(t, http.StatusBadRequest, post(t, srv.URL+"/_sim/releases?version=1.0.1&os=linux", []byte("x")))
	assert.True(t, strings.HasSuffix(ArtifactName("1.0.0", "windows", "amd64"), ".exe"))
}

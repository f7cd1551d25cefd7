package update

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCheckURL: the manifest and artifacts come over HTTPS; plain HTTP only
// from a loopback release server (the sandbox and the tests).
func TestCheckURL(t *testing.T) {
	for _, ok := range []string{"https://releases.example/efm/manifest.json", "HTTPS://r.example/m.json",
		"http://127.0.0.1:8080/manifest.json", "http://[::1]:1/m.json", "http://localhost/m.json"} {
		assert.NoError(t, CheckURL(ok), ok)
	}
	for _, bad := range []string{"http://releases.example/manifest.json", "http://10.0.0.1/m.json", "ftp://r.example/m.json",
		"file:///etc/m.json", "releases.example/m.json", "http://user:secret@evil.example/m.json", ""} {
		err := CheckURL(bad)
		assert.ErrorIs(t, err, ErrInsecureURL, bad)
		if err != nil {
			assert.NotContains(t, err.Error(), "secret")
		}
	}
}

func TestSettings_RefusesPlainHTTPManifest(t *testing.T) {
	var c Config
	err := Settings(&c, func(k string) (string, bool) {
		if k == "efm.update.url" {
			return "http://releases.example/manifest.json", true
		}
		return "", false
	})
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrConfig))
	assert.Contains(t, err.Error(), "efm.update.url")
	assert.Empty(t, c.ManifestURL)

	_, err = New(Config{DataDir: t.TempDir(), CurrentVersion: "1.0.0", ManifestURL: "http://releases.example/manifest.json"})
	assert.ErrorIs(t, err, ErrInsecureURL)
}

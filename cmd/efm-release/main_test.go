package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"
	"github.com/efm-go/efm/update"
	"github.com/efm-go/efm/update/manifest"
	"github.com/efm-go/efm/update/release"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRelease_BuildSignVerifyAndServe(t *testing.T) {
	dir := t.TempDir()
	rel := filepath.Join(dir, "releases")
	require.NoError(t, os.MkdirAll(rel, 0o755))
	key, pub := filepath.Join(dir, "efm.key"), filepath.Join(dir, "efm.pub")
	clock := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	exec := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), args, &out, &errb, now)
		return out.String() + errb.String(), err
	}

	out, err := exec("keygen", "-key", key, "-pub", pub)
	require.NoError(t, err, out)
	_, err = exec("keygen", "-key", key, "-pub", pub)
	require.Error(t, err, "keygen never overwrites a key")

	art := func(name, content string) string {
		p := filepath.Join(dir, "build", name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o755))
		return p
	}
	out, err = exec("add", "-dir", rel, "-key", key, "-version", "1.4.2", "-channel", "stable,earlybird", "-api-majors", "1",
		art("integrasjonspunkt-1.4.2-linux-amd64", "linux binary"), art("integrasjonspunkt-1.4.2-windows-amd64.exe", "windows binary"))
	require.NoError(t, err, out)
	assert.Contains(t, out, "serial 2026112100")

	out, err = exec("verify", "-dir", rel, "-pub", pub)
	require.NoError(t, err, out)
	assert.Contains(t, out, "1 releases")

	clock = clock.Add(time.Hour)
	out, err = exec("resign", "-dir", rel, "-key", key)
	require.NoError(t, err, out)
	assert.Contains(t, out, "serial 2026112101", "re-signing moves the serial on")

	_, err = exec("add", "-dir", rel, "-key", key, "-version", "1.4.3", art("integrasjonspunkt-1.4.2-linux-amd64", "x"))
	require.ErrorIs(t, err, release.ErrArtifactName, "an artifact of another version is refused")
	_, err = exec("add", "-dir", rel, "-key", key, "-version", "1.4.2", art("integrasjonspunkt-1.4.2-linux-arm64", "x"))
	require.ErrorIs(t, err, release.ErrExists)
	_, err = exec("revoke", "-dir", rel, "-key", key, "-version", "1.4.0")
	require.NoError(t, err)
	_, err = exec("frobnicate")
	require.ErrorIs(t, err, errUsage)

	// What the tool publishes is what the daemon's updater accepts.
	pubText, err := os.ReadFile(pub)
	require.NoError(t, err)
	pk, err := manifest.ParsePublicKey(string(pubText))
	require.NoError(t, err)
	srv := httptest.NewServer(http.FileServer(http.Dir(rel)))
	defer srv.Close()
	u, err := update.New(update.Config{
		DataDir: t.TempDir(), ExecutablePath: filepath.Join(dir, "bin"), CurrentVersion: "1.4.1",
		ManifestURL: srv.URL + "/manifest.json", PublicKeys: []minisign.PublicKey{pk},
		GOOS: "linux", GOARCH: "amd64", Now: now,
	})
	require.NoError(t, err)
	rep, err := u.Check(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "1.4.2", rep.Target)
	assert.Equal(t, uint64(2026112102), rep.Serial)

	// A tampered artifact fails verification.
	require.NoError(t, os.WriteFile(filepath.Join(rel, "1.4.2", "integrasjonspunkt-1.4.2-linux-amd64"), []byte("linux binarz"), 0o644))
	out, err = exec("verify", "-dir", rel, "-pub", pub)
	require.ErrorIs(t, err, release.ErrTree)
	assert.True(t, strings.Contains(err.Error(), "sha256"), err.Error())
}

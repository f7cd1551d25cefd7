package release

import (
	"os"
	"path/filepath"
	"testing"

	"aead.dev/minisign"
	"github.com/efm-go/efm/update/manifest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseArtifactName(t *testing.T) {
	tests := []struct {
		name, ver, goos, goarch string
		wantErr                 bool
	}{
		{name: "integrasjonspunkt-1.4.2-linux-amd64", ver: "1.4.2", goos: "linux", goarch: "amd64"},
		{name: "integrasjonspunkt-1.5.0-rc.1-linux-arm64", ver: "1.5.0-rc.1", goos: "linux", goarch: "arm64"},
		{name: "integrasjonspunkt-1.4.2-windows-amd64.exe", ver: "1.4.2", goos: "windows", goarch: "amd64"},
		{name: "/some/dir/integrasjonspunkt-2.0.0-darwin-arm64", ver: "2.0.0", goos: "darwin", goarch: "arm64"},
		{name: "integrasjonspunkt-1.4.2-linux-amd64.exe", wantErr: true},
		{name: "integrasjonspunkt-1.4.2-windows-amd64", wantErr: true},
		{name: "kosmos-1.4.2-linux-amd64", wantErr: true},
		{name: "integrasjonspunkt-1.4.2.jar", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, o, a, err := ParseArtifactName(tt.name)
			if tt.wantErr {
				require.ErrorIs(t, err, ErrArtifactName)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, []string{tt.ver, tt.goos, tt.goarch}, []string{v, o, a})
		})
	}
}

// FuzzParseArtifactName: an accepted name is rebuilt exactly from its parts.
func FuzzParseArtifactName(f *testing.F) {
	for _, s := range []string{"integrasjonspunkt-1.4.2-linux-amd64", "integrasjonspunkt-1.5.0-rc.1-windows-amd64.exe", "integrasjonspunkt--a-b", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		v, o, a, err := ParseArtifactName(name)
		if err != nil {
			return
		}
		if v == "" || o == "" || a == "" {
			t.Fatalf("empty part from %q", name)
		}
		rebuilt := "integrasjonspunkt-" + v + "-" + o + "-" + a
		if o == "windows" {
			rebuilt += ".exe"
		}
		if base := filepath.Base(name); base != rebuilt {
			t.Fatalf("%q parsed to %q %q %q", name, v, o, a)
		}
	})
}

func TestAdd_SchemaRiseMustBeRolledBackByAnOperator(t *testing.T) {
	dir := t.TempDir()
	_, key, err := minisign.GenerateKey(nil)
	require.NoError(t, err)
	art := func(ver string) []string {
		p := filepath.Join(t.TempDir(), "integrasjonspunkt-"+ver+"-linux-amd64")
		require.NoError(t, os.WriteFile(p, []byte(ver), 0o755))
		return []string{p}
	}
	m := &manifest.Manifest{}
	require.NoError(t, Add(m, dir, manifest.Release{Version: "1.4.0", SchemaVersion: 5}, art("1.4.0"), key))
	require.NoError(t, Add(m, dir, manifest.Release{Version: "1.4.1", SchemaVersion: 5}, art("1.4.1"), key), "same schema")

	err = Add(m, dir, manifest.Release{Version: "1.5.0", SchemaVersion: 6}, art("1.5.0"), key)
	require.ErrorIs(t, err, ErrRollbackUnsafe)
	assert.ErrorContains(t, err, "-rollback-safe-to 1.5.0")
	require.NoError(t, Add(m, dir, manifest.Release{Version: "1.5.0", SchemaVersion: 6, RollbackSafeTo: "1.5.0"}, art("1.5.0"), key))
	err = Add(m, dir, manifest.Release{Version: "1.5.1", SchemaVersion: 6}, art("1.5.1"), key)
	require.ErrorIs(t, err, ErrRollbackUnsafe, "1.4.1 may update to 1.5.1 directly and cannot roll back to itself")
	require.NoError(t, Add(m, dir, manifest.Release{Version: "1.5.1", SchemaVersion: 6, MinUpgradeFrom: "1.5.0"}, art("1.5.1"), key),
		"only releases on its own schema update to it, and they open its store")
	require.NoError(t, Add(m, dir, manifest.Release{Version: "1.4.2", SchemaVersion: 5}, art("1.4.2"), key), "a fix of an older line")
}

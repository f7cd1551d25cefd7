package release

import (
	"path/filepath"
	"testing"

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

// Package distpkg tests the .deb/.rpm definition in this folder: the
// package manager owns the binary there, so self-update must default to
// notify (operations.md §1.2).
package distpkg

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/efm-go/efm/integrasjonspunkt/config"
)

func updateMode(t *testing.T, file string) string {
	t.Helper()
	c, _, _ := config.Load(config.Source{File: file})
	require.NotNil(t, c, "the file must parse")
	return c.Value("efm.update.mode")
}

func TestPackagedConfig_DefaultsToNotify(t *testing.T) {
	assert.Equal(t, "notify", updateMode(t, "integrasjonspunkt-local.properties"))
	b, err := os.ReadFile("nfpm.yaml")
	require.NoError(t, err)
	assert.Contains(t, string(b), "type: config|noreplace", "an upgrade must never overwrite the operator's configuration")
}

func postinstall(t *testing.T, config string) {
	t.Helper()
	cmd := exec.Command("sh", "postinstall.sh", "configure")
	cmd.Env = append(os.Environ(), "EFM_PACKAGE_CONFIG="+config, "EFM_PACKAGE_NO_SERVICE=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "postinstall: %s", out)
}

func TestPostinstall_AddsNotifyToAMigratedFile(t *testing.T) {
	dir := t.TempDir()
	migrated := filepath.Join(dir, "migrated.properties")
	require.NoError(t, os.WriteFile(migrated, []byte("difi.move.org.number=910077473\n"), 0o640))
	postinstall(t, migrated)
	postinstall(t, migrated)
	assert.Equal(t, "notify", updateMode(t, migrated))
	b, _ := os.ReadFile(migrated)
	assert.Equal(t, 1, strings.Count(string(b), "efm.update.mode"), "running twice must add it once:\n%s", b)

	chosen := filepath.Join(dir, "chosen.properties")
	require.NoError(t, os.WriteFile(chosen, []byte("efm.update.mode = auto\n"), 0o640))
	postinstall(t, chosen)
	assert.Equal(t, "auto", updateMode(t, chosen), "an operator's explicit choice stays")
}

// nfpmFile is the part of nfpm.yaml the package's first hour depends on.
type nfpmFile struct {
	Section   string `yaml:"section"`
	Overrides map[string]struct {
		Depends []string `yaml:"depends"`
	} `yaml:"overrides"`
	Contents []struct {
		Dst      string `yaml:"dst"`
		Type     string `yaml:"type"`
		FileInfo struct {
			Mode  int    `yaml:"mode"`
			Owner string `yaml:"owner"`
			Group string `yaml:"group"`
		} `yaml:"file_info"`
	} `yaml:"contents"`
	Scripts map[string]string `yaml:"scripts"`
	Deb     struct {
		Predepends []string `yaml:"predepends"`
	} `yaml:"deb"`
}

// The service runs as integrasjonspunkt and must read its configuration,
// which holds the keystore password: root:integrasjonspunkt 0640, with the
// group made before the files are unpacked. The package names what it needs.
func TestPackage_ConfigReadableByTheServiceOnly(t *testing.T) {
	b, err := os.ReadFile("nfpm.yaml")
	require.NoError(t, err)
	var f nfpmFile
	require.NoError(t, yaml.Unmarshal(b, &f))
	assert.NotEmpty(t, f.Section)
	assert.Contains(t, strings.Join(f.Overrides["deb"].Depends, ","), "libc6")
	assert.Contains(t, strings.Join(f.Overrides["rpm"].Depends, ","), "glibc")
	assert.Contains(t, f.Deb.Predepends, "passwd", "the preinst's useradd")
	found := false
	for _, c := range f.Contents {
		if c.Dst != "/etc/integrasjonspunkt/integrasjonspunkt-local.properties" {
			continue
		}
		found = true
		assert.Equal(t, "root", c.FileInfo.Owner)
		assert.Equal(t, "integrasjonspunkt", c.FileInfo.Group)
		assert.Equal(t, 0o640, c.FileInfo.Mode)
	}
	require.True(t, found, "the configuration is in the package")
	require.Equal(t, "./preinstall.sh", f.Scripts["preinstall"])
	pre, err := os.ReadFile("preinstall.sh")
	require.NoError(t, err)
	assert.Contains(t, string(pre), "groupadd --system")
	out, err := exec.Command("sh", "-n", "preinstall.sh").CombinedOutput()
	require.NoError(t, err, "%s", out)
	cmd := exec.Command("sh", "preinstall.sh", "install")
	cmd.Env = append(os.Environ(), "EFM_PACKAGE_NO_ACCOUNT=1")
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
}

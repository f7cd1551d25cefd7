package wintest

import (
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/internal/testtool"
)

const (
	msiExeWin    = `C:\Program Files\integrasjonspunkt\bin\integrasjonspunkt.exe`
	msiConfigWin = `C:\ProgramData\integrasjonspunkt\config\integrasjonspunkt-local.properties`
	msiDataWin   = `C:\ProgramData\integrasjonspunkt\data`
	serviceKey   = `HKLM\System\CurrentControlSet\Services\integrasjonspunkt`
)

func needMSITools(t *testing.T) {
	t.Helper()
	testtool.Need(t, "wixl", "wixl")
	testtool.Need(t, "msitools", "msiinfo")
	testtool.Need(t, "msitools", "msibuild")
}

// buildMSI runs msi.sh, the script behind `make msi`.
func buildMSI(t *testing.T, exe, version string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "integrasjonspunkt-"+version+".msi")
	b, err := exec.Command("sh", "msi.sh", exe, version, out).CombinedOutput()
	require.NoError(t, err, "msi.sh: %s", b)
	return out
}

// msiTable reads a table with msiinfo: a row per map, by column name.
func msiTable(t *testing.T, msi, table string) map[string]map[string]string {
	t.Helper()
	b, err := exec.Command("msiinfo", "export", msi, table).Output()
	require.NoError(t, err, "msiinfo export %s", table)
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n"), "\n")
	require.GreaterOrEqual(t, len(lines), 3, "table %s: %q", table, b)
	cols := strings.Split(lines[0], "\t")
	rows := map[string]map[string]string{}
	for _, l := range lines[3:] {
		f := strings.Split(l, "\t")
		row := map[string]string{}
		for i, c := range cols {
			if i < len(f) {
				row[c] = f[i]
			}
		}
		rows[f[0]] = row
	}
	return rows
}

// TestMSI_Tables checks what the installer will do, table by table, without
// running it: the binary under Program Files, the configuration template and
// the data dir kept on upgrade and uninstall, the service under the virtual
// account with delayed start and restart on failure (operations.md §1.2-1.4).
func TestMSI_Tables(t *testing.T) {
	needMSITools(t)
	exe := filepath.Join(t.TempDir(), "placeholder.exe")
	require.NoError(t, os.WriteFile(exe, []byte("MZ placeholder: the tables do not depend on the binary"), 0o644))
	msi := buildMSI(t, exe, "1.4.2-rc.1")

	prop := msiTable(t, msi, "Property")
	assert.Equal(t, "1.4.2", prop["ProductVersion"]["Value"], "MSI versions are numeric")
	assert.Equal(t, "{ec328213-e12a-4046-82b9-ba7c134a3646}", strings.ToLower(prop["UpgradeCode"]["Value"]), "the upgrade code never changes, or upgrades install side by side")

	dirs := msiTable(t, msi, "Directory")
	path := func(id string) string {
		var parts []string
		for id != "TARGETDIR" && id != "" {
			d := dirs[id]
			if name := d["DefaultDir"]; name != "." {
				parts = append([]string{name}, parts...)
			} else {
				parts = append([]string{id}, parts...)
			}
			id = d["Directory_Parent"]
		}
		return strings.Join(parts, `\`)
	}
	comps := msiTable(t, msi, "Component")
	files := msiTable(t, msi, "File")
	exeRow := files["IntegrasjonspunktExe"]
	assert.Equal(t, "integrasjonspunkt.exe", exeRow["FileName"])
	assert.Equal(t, `ProgramFiles64Folder\integrasjonspunkt\bin`, path(comps[exeRow["Component_"]]["Directory_"]))
	cfgRow := files["ConfigProperties"]
	assert.Equal(t, "integrasjonspunkt-local.properties", cfgRow["FileName"])
	assert.Equal(t, `CommonAppDataFolder\integrasjonspunkt\config`, path(comps[cfgRow["Component_"]]["Directory_"]))
	assert.Equal(t, `CommonAppDataFolder\integrasjonspunkt\data`, path(comps["DataDir"]["Directory_"]))

	const win64, permanent, neverOverwrite = 256, 16, 128
	assert.Equal(t, itoa(win64|permanent|neverOverwrite), comps["ConfigTemplate"]["Attributes"], "the configuration outlives upgrade and uninstall and is never overwritten")
	assert.Equal(t, itoa(win64|permanent), comps["DataDir"]["Attributes"], "the data dir outlives uninstall")
	assert.Equal(t, itoa(win64), comps["ServiceExe"]["Attributes"], "the binary goes with the product")
	assert.Equal(t, `WIX_UPGRADE_DETECTED AND START_SERVICE = "1"`, comps["ServiceStartOnUpgrade"]["Condition"])
	assert.Equal(t, "1", prop["START_SERVICE"]["Value"], "an upgrade starts the service again unless told not to")

	svc := msiTable(t, msi, "ServiceInstall")["Service"]
	assert.Equal(t, "integrasjonspunkt", svc["Name"])
	assert.Equal(t, `NT SERVICE\integrasjonspunkt`, svc["StartName"], "the virtual account (operations.md §1.3)")
	assert.Empty(t, svc["Password"], "a virtual account has no password")
	assert.Equal(t, "16", svc["ServiceType"], "SERVICE_WIN32_OWN_PROCESS")
	assert.Equal(t, "2", svc["StartType"], "SERVICE_AUTO_START")
	assert.Equal(t, `run --config "[CommonAppDataFolder]integrasjonspunkt\config\integrasjonspunkt-local.properties" --data "[CommonAppDataFolder]integrasjonspunkt\data"`, svc["Arguments"])

	ctl := msiTable(t, msi, "ServiceControl")
	const startInstall, stopInstall, stopUninstall, deleteUninstall = 1, 2, 32, 128
	assert.Equal(t, itoa(stopInstall|stopUninstall|deleteUninstall), ctl["ServiceStopRemove"]["Event"], "stopped before its files change, removed on uninstall")
	assert.Equal(t, "1", ctl["ServiceStopRemove"]["Wait"])
	assert.Equal(t, itoa(startInstall), ctl["ServiceStartOnUpgrade"]["Event"], "started again after an upgrade")

	delayed := msiTable(t, msi, "MsiServiceConfig")["DelayedStart"]
	assert.Equal(t, "3", delayed["ConfigType"], "SERVICE_CONFIG_DELAYED_AUTO_START_INFO")
	assert.Equal(t, "1", delayed["Argument"])
	fail := msiTable(t, msi, "MsiServiceConfigFailureActions")["RestartOnFailure"]
	assert.Equal(t, "integrasjonspunkt", fail["Name"])
	assert.Equal(t, "86400", fail["ResetPeriod"], "failure count reset after a day")
	assert.Equal(t, "1[~]1[~]1", fail["Actions"], "SC_ACTION_RESTART each time")
	assert.Equal(t, "5000[~]5000[~]5000", fail["DelayActions"], "after 5 s")

	seq := msiTable(t, msi, "InstallExecuteSequence")
	require.Contains(t, seq, "MsiConfigureServices", "without it the two tables above do nothing")
	assert.Greater(t, atoi(seq["MsiConfigureServices"]["Sequence"]), atoi(seq["InstallServices"]["Sequence"]))
	assert.Less(t, atoi(seq["MsiConfigureServices"]["Sequence"]), atoi(seq["StartServices"]["Sequence"]))
	assert.Less(t, atoi(seq["RemoveExistingProducts"]["Sequence"]), atoi(seq["InstallFiles"]["Sequence"]))

	var eventlog []string
	for _, r := range msiTable(t, msi, "Registry") {
		if r["Root"] == "2" && strings.TrimSuffix(r["Key"], `\`) == `SYSTEM\CurrentControlSet\Services\EventLog\Application\integrasjonspunkt` {
			eventlog = append(eventlog, r["Name"]+"="+r["Value"])
		}
	}
	assert.ElementsMatch(t, []string{`EventMessageFile=[System64Folder]EventCreate.exe`, "TypesSupported=#7"}, eventlog,
		"the event log source `install` would register, so `uninstall` finds it")

	up := msiTable(t, msi, "Upgrade")
	assert.NotEmpty(t, up, "a major upgrade replaces older versions")
}

// TestMSI_InstallUpgradeUninstall_Wine installs the MSI with Wine's
// msiexec, runs the service commands on its registration, upgrades it with a
// newer binary and uninstalls it: the binary is replaced and removed, the
// operator's configuration and the data stay, the service registration
// follows the product.
func TestMSI_InstallUpgradeUninstall_Wine(t *testing.T) {
	needMSITools(t)
	p := wine(t)
	v1 := buildMSI(t, p.exe, "0.9.0")
	// A different binary for the upgrade, without a second build: a PE file
	// runs with bytes appended.
	exe2 := filepath.Join(t.TempDir(), "integrasjonspunkt.exe")
	b, err := os.ReadFile(p.exe)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(exe2, append(b, "upgrade 0.9.1"...), 0o755))
	v2 := buildMSI(t, exe2, "0.9.1")

	msiexec := func(args ...string) {
		t.Helper()
		out, code := p.run(t, nil, "msiexec", args...)
		require.Equal(t, 0, code, "msiexec %v: %s", args, out)
	}
	serviceInstall(t, p)
	msiexec("/i", winPath(v1), "/qn")
	assert.Equal(t, sum(t, p.exe), sum(t, p.path(msiExeWin)), "the binary under Program Files")
	out, code := p.run(t, nil, msiExeWin, "version")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, testVersion)
	tmpl, err := os.ReadFile(p.path(msiConfigWin))
	require.NoError(t, err)
	assert.Contains(t, string(tmpl), "efm.update.mode=notify", "the installer owns the binary")
	assert.DirExists(t, p.path(msiDataWin))

	reg := p.regQuery(t, serviceKey)
	assert.Contains(t, reg, `NT SERVICE\integrasjonspunkt`)
	assert.Contains(t, reg, `--config "C:\ProgramData\integrasjonspunkt\config\integrasjonspunkt-local.properties" --data "C:\ProgramData\integrasjonspunkt\data"`)
	assert.Regexp(t, `Start\s+REG_DWORD\s+0x2`, reg)

	serviceControl(t, p)
	// The upgrade below registers the service again.

	// The operator configures it and the service writes data.
	configured := "difi.move.org.number=910077473\r\n"
	writeFile(t, p.path(msiConfigWin), configured)
	writeFile(t, p.path(msiDataWin+`\store.db`), "the operator's messages")

	// START_SERVICE=0: Wine's service manager cannot start the daemon as a
	// service (service_wine_test.go says why), so the start after the upgrade
	// would fail and roll the upgrade back.
	msiexec("/i", winPath(v2), "/qn", "START_SERVICE=0")
	assert.Equal(t, sum(t, exe2), sum(t, p.path(msiExeWin)), "the upgrade replaced the binary")
	assert.NoFileExists(t, p.path(`C:\Program Files\integrasjonspunkt\bin\integrasjonspunkt.previous.exe`))
	assertFile(t, p.path(msiConfigWin), configured, "an upgrade keeps the configuration")
	assertFile(t, p.path(msiDataWin+`\store.db`), "the operator's messages", "an upgrade keeps the data")
	assert.Contains(t, p.regQuery(t, serviceKey), `NT SERVICE\integrasjonspunkt`, "registered after the upgrade")

	msiexec("/x", winPath(v2), "/qn")
	assert.NoFileExists(t, p.path(msiExeWin), "uninstall removes the binary")
	assertFile(t, p.path(msiConfigWin), configured, "uninstall keeps the configuration")
	assertFile(t, p.path(msiDataWin+`\store.db`), "the operator's messages", "uninstall keeps the data")
	_, code = p.run(t, nil, "reg", "query", serviceKey)
	assert.NotEqual(t, 0, code, "uninstall removes the service")
}

func (p *prefix) regQuery(t *testing.T, key string) string {
	t.Helper()
	out, code := p.run(t, nil, "reg", "query", key)
	require.Equal(t, 0, code, "reg query %s: %s", key, out)
	return out
}

// winPath names a Linux file the way Wine's programs see it (drive Z:).
func winPath(linux string) string { return `Z:` + strings.ReplaceAll(linux, "/", `\`) }

func sum(t *testing.T, name string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return sha256.Sum256(b)
}

func assertFile(t *testing.T, name, want, msg string) {
	t.Helper()
	b, err := os.ReadFile(name)
	if assert.NoError(t, err, msg) {
		assert.Equal(t, want, string(b), msg)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func atoi(s string) int {
	i, _ := strconv.Atoi(s)
	return i
}

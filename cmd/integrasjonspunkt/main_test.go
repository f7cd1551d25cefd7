package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func runCLI(t *testing.T, args ...string) (stdout string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	code = exitOK
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
	case err != nil:
		code = exitFailure
	}
	if err != nil {
		errb.WriteString(err.Error())
	}
	return out.String() + errb.String(), code
}

// goodKeystore is a data dir holding the keystore.p12 good.properties names
// (relative paths resolve against the data dir), valid at the test clock.
func goodKeystore(t *testing.T) string {
	t.Helper()
	now = func() time.Time { return checkNow }
	t.Cleanup(func() { now = time.Now })
	data := t.TempDir()
	writeP12(t, filepath.Join(data, "keystore.p12"), businessCert(t, "910077473", checkNow.Add(-time.Hour), checkNow.Add(time.Hour)), "hemmelig")
	return data
}

func TestConfigCheck_PrintsEveryErrorWithItsKey(t *testing.T) {
	out, code := runCLI(t, "config", "check", "--config", "testdata/java-mistakes.properties")
	assert.Equal(t, exitFailure, code)
	for _, key := range []string{
		"difi.move.org.number", "difi.move.org.keystore.type", "difi.move.feature.enableDPO",
		"server.port", "difi.move.fiks.inn.username", "difi.move.fiks.inn.password",
		"difi.move.fiks.ut.username", "difi.move.fiks.ut.password",
	} {
		assert.Contains(t, out, "error: "+key, "no error line for %s in:\n%s", key, out)
	}
	assert.Contains(t, out, "warning: difi.move.org.keystore.alias: trailing whitespace trimmed (line 4)")
	assert.NotContains(t, out, "hemmelig", "a secret reached the output")
}

func TestConfigCheck_GoodFilePrintsEffectiveConfigMasked(t *testing.T) {
	t.Setenv("EFM_TEST_KEYSTORE_PASSWORD", "hemmelig")
	data := goodKeystore(t)
	out, code := runCLI(t, "config", "check", "--config", "../../integrasjonspunkt/config/testdata/good.properties", "--data", data)
	require.Equal(t, exitOK, code, out)
	assert.Contains(t, out, "configuration OK: organisation 910077473")
	assert.Contains(t, out, "difi.move.org.keystore.password")
	assert.NotContains(t, out, "hemmelig")
}

func TestConfigCheck_EmptyAddressIsReportedAsLoopback(t *testing.T) {
	t.Setenv("EFM_TEST_KEYSTORE_PASSWORD", "hemmelig")
	t.Setenv("SERVER_ADDRESS", "")
	out, code := runCLI(t, "config", "check", "--config", "../../integrasjonspunkt/config/testdata/good.properties", "--data", goodKeystore(t))
	require.Equal(t, exitOK, code, out)
	assert.Contains(t, out, "warning: server.address: empty: the API binds loopback 127.0.0.1 only")
	assert.Contains(t, out, "local API: 127.0.0.1:9093 (loopback only)")
}

func TestConfigCheck_PlainHTTPUpdateURLIsAnError(t *testing.T) {
	t.Setenv("EFM_TEST_KEYSTORE_PASSWORD", "hemmelig")
	good, err := os.ReadFile("../../integrasjonspunkt/config/testdata/good.properties")
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "integrasjonspunkt-local.properties")
	require.NoError(t, os.WriteFile(file, append(good, "efm.update.url=http://releases.example/manifest.json\n"...), 0o600))
	out, code := runCLI(t, "config", "check", "--config", file, "--data", goodKeystore(t))
	assert.Equal(t, exitFailure, code, out)
	assert.Contains(t, out, "efm.update.url")
	assert.Contains(t, out, "https://")
}

func TestRun_UnknownCommandIsUsageError(t *testing.T) {
	out, code := runCLI(t, "frobnicate")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, out, "usage: integrasjonspunkt")
}

func TestSystemdUnit_HasTheHardeningOfOperations12(t *testing.T) {
	unit := systemdUnit(unitParams{
		Exe:   "/opt/integrasjonspunkt/bin/integrasjonspunkt",
		Args:  []string{"run", "--data", "/var/lib/integrasjonspunkt", "--config", "/etc/integrasjonspunkt/my config.properties"},
		User:  "integrasjonspunkt",
		Data:  "/var/lib/integrasjonspunkt",
		Drain: 30 * time.Second,
	})
	lines := map[string]bool{}
	for _, l := range strings.Split(unit, "\n") {
		lines[l] = true
	}
	for _, want := range []string{
		"[Unit]", "[Service]", "[Install]",
		`ExecStart=/opt/integrasjonspunkt/bin/integrasjonspunkt run --data /var/lib/integrasjonspunkt --config "/etc/integrasjonspunkt/my config.properties"`,
		"User=integrasjonspunkt",
		"Restart=always",
		"RestartSec=5",
		"NoNewPrivileges=yes",
		"ProtectSystem=strict",
		"ReadWritePaths=/var/lib/integrasjonspunkt /opt/integrasjonspunkt/bin",
		"PrivateTmp=yes",
		"TimeoutStopSec=45",
		"WorkingDirectory=/var/lib/integrasjonspunkt",
		"WantedBy=multi-user.target",
	} {
		assert.True(t, lines[want], "unit lacks %q:\n%s", want, unit)
	}
	assert.NotContains(t, unit, "{{", "the unit is passed to kardianos pre-rendered")
	again := systemdUnit(unitParams{Exe: "/opt/integrasjonspunkt/bin/integrasjonspunkt",
		Args: []string{"run", "--data", "/var/lib/integrasjonspunkt", "--config", "/etc/integrasjonspunkt/my config.properties"},
		User: "integrasjonspunkt", Data: "/var/lib/integrasjonspunkt", Drain: 30 * time.Second})
	assert.Equal(t, unit, again, "rendering must be deterministic for idempotent install")
}

func TestSystemdQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/plain/path": "/plain/path",
		"/a b":        `"/a b"`,
		`/a"b`:        `"/a\"b"`,
		"/100%":       `"/100%%"`,
		"$HOME":       `"$$HOME"`,
	} {
		assert.Equal(t, want, systemdQuote(in), in)
	}
}

func TestPseudonym_RefusesToInventAKey(t *testing.T) {
	out, code := runCLI(t, "pseudonym", "--data", t.TempDir())
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, out, "no pseudonym key")
}

// The first hour: what a newcomer types before reading anything.
func TestRun_VersionFlagIsTheVersionCommand(t *testing.T) {
	for _, arg := range []string{"--version", "-version", "version"} {
		out, code := runCLI(t, arg)
		assert.Equal(t, exitOK, code, arg)
		assert.Contains(t, out, "integrasjonspunkt ", arg)
		assert.Contains(t, out, "api majors:", arg)
	}
}

// -h prints the flags and does nothing else: `run -h` must not start a daemon
// and `install -h` must not register a service.
func TestRun_HelpFlagDoesNotRunTheCommand(t *testing.T) {
	for _, cmd := range []string{"run", "install", "uninstall", "status", "config check", "pseudonym", "update status", "check"} {
		t.Run(cmd, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			args := append(strings.Fields(cmd), "--data", data, "-h")
			if cmd == "config check" || cmd == "run" || cmd == "check" {
				args = append(strings.Fields(cmd), "--data", data, "--config", filepath.Join(t.TempDir(), "none.properties"), "-h")
			}
			out, code := runCLI(t, args...)
			assert.Equal(t, exitOK, code, out)
			assert.Contains(t, out, "-data", "the flags were printed")
			_, err := os.Stat(data)
			assert.ErrorIs(t, err, os.ErrNotExist, "the command ran after -h:\n%s", out)
		})
	}
}

func TestStatus_NoServiceIsNotInstalled(t *testing.T) {
	serviceFiles = []string{filepath.Join(t.TempDir(), "integrasjonspunkt.service")}
	out, code := runCLI(t, "status", "--data", t.TempDir())
	assert.Equal(t, exitNotInstalled, code, out)
	assert.Contains(t, out, "not installed")
	assert.Contains(t, out, "integrasjonspunkt install")
}

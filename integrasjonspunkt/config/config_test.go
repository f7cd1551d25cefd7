package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func problems(t *testing.T, err error) map[string]*Problem {
	t.Helper()
	out := map[string]*Problem{}
	var joined interface{ Unwrap() []error }
	if err == nil {
		return out
	}
	require.True(t, errors.As(err, &joined), "want joined problems, got %v", err)
	for _, e := range joined.Unwrap() {
		var p *Problem
		require.True(t, errors.As(e, &p), "want *Problem, got %T %v", e, e)
		out[p.Key] = p
	}
	return out
}

func TestLoad_ReportsEveryMistakeAtOnce(t *testing.T) {
	_, warns, err := Load(Source{File: "testdata/mistakes.properties"})
	require.Error(t, err)
	ps := problems(t, err)
	for key, want := range map[string]string{
		"difi.move.org.number":        "mod-11",
		"difi.move.org.keystore.type": "PKCS12, JKS",
		"difi.move.feature.enableDPO": "true or false",
		"server.port":                 "1 to 65535",
		"difi.move.fiks.inn.username": "DPF is enabled",
		"difi.move.fiks.ut.password":  "DPF is enabled",
	} {
		p, ok := ps[key]
		if assert.True(t, ok, "no problem reported for %s; got %v", key, err) {
			assert.Contains(t, p.Expected, want, key)
		}
	}
	assert.Equal(t, "910077474", ps["difi.move.org.number"].Value)

	var ws []string
	for _, w := range warns {
		ws = append(ws, w.String())
	}
	all := strings.Join(ws, "\n")
	assert.Contains(t, all, "difi.move.org.keystore.alias: trailing whitespace trimmed (line 4)")
	assert.Contains(t, all, "difi.move.orgnumber: unknown key; did you mean difi.move.org.number?")
	assert.Contains(t, all, "difi.datasource.url: ignored")
}

func TestLoad_DisabledChannelKeysNotRequired(t *testing.T) {
	t.Setenv("EFM_TEST_KEYSTORE_PASSWORD", "s3cret")
	c, _, err := Load(Source{File: "testdata/good.properties", DataDir: "/var/lib/ip"})
	require.NoError(t, err)
	assert.Equal(t, []string{"DPO"}, c.Enabled)
	assert.Equal(t, "s3cret", c.Keystore.Password)
	assert.Equal(t, "s3cret", c.Keystore.KeyPassword)
	assert.Equal(t, filepath.Join("/var/lib/ip", "keystore.p12"), c.Keystore.Path)
	assert.Equal(t, "24", c.Value("difi.move.dpo.default-ttl-hours"))
	assert.Equal(t, "127.0.0.1:9093", c.Server.Addr())
	assert.Equal(t, 30*time.Second, c.ShutdownDrain)
	for _, e := range c.Effective() {
		if e[0] == "difi.move.org.keystore.password" {
			assert.Equal(t, "********", e[1], "secret printed unmasked")
		}
	}
}

func TestLoad_EnvironmentOverridesWithRelaxedNames(t *testing.T) {
	t.Setenv("EFM_TEST_KEYSTORE_PASSWORD", "x")
	c, _, err := Load(Source{
		File: "testdata/good.properties",
		Env:  []string{"SERVER_PORT=8181", "DIFI_MOVE_ORG_NUMBER=910075918", "DIFI_MOVE_FEATURE_ENABLEDPV=true ", "PATH=/bin"},
	})
	require.NoError(t, err)
	assert.Equal(t, 8181, c.Server.Port)
	assert.Equal(t, "910075918", c.OrgNumber)
	assert.Equal(t, []string{"DPO", "DPV"}, c.Enabled)
}

func TestLoad_ProductionProfileEnablesDPE(t *testing.T) {
	base := map[string]string{
		"difi.move.org.number": "910077473", "difi.move.org.keystore.path": "k.p12",
		"difi.move.org.keystore.alias": "a", "difi.move.org.keystore.password": "p",
	}
	c, _, err := Load(Source{Overrides: base})
	require.NoError(t, err)
	assert.Equal(t, []string{"DPE"}, c.Enabled)

	c, _, err = Load(Source{Overrides: base, Env: []string{"SPRING_PROFILES_ACTIVE=staging"}})
	require.NoError(t, err)
	assert.Empty(t, c.Enabled)
	assert.Equal(t, "staging", c.Environment)
}

func TestLoad_NonLoopbackNeedsTLSAndAuth(t *testing.T) {
	ov := map[string]string{
		"difi.move.org.number": "910077473", "difi.move.org.keystore.path": "k.p12",
		"difi.move.org.keystore.alias": "a", "difi.move.org.keystore.password": "p",
		"server.address": "0.0.0.0",
	}
	_, _, err := Load(Source{Overrides: ov})
	ps := problems(t, err)
	assert.Contains(t, ps, "difi.ssl.enabled")
	assert.Contains(t, ps, "difi.security.enable")
}

func TestLoad_MissingFile(t *testing.T) {
	_, _, err := Load(Source{File: filepath.Join(t.TempDir(), "nope.properties")})
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func FuzzLoadProperties(f *testing.F) {
	for _, s := range []string{"a=b\n", "difi.move.org.number = 910077473  \n", "k=${env:NOPE}\n", "x=${y}\ny=${x}\n", "\\u00e6=\\\n  continued\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, content string) {
		path := filepath.Join(t.TempDir(), "f.properties")
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		c, _, err := Load(Source{File: path})
		if err != nil {
			var joined interface{ Unwrap() []error }
			if errors.As(err, &joined) {
				for _, e := range joined.Unwrap() {
					var p *Problem
					require.True(t, errors.As(e, &p), "every validation error names its key: %v", e)
					require.NotEmpty(t, p.Key)
				}
			}
			return
		}
		// A config that loads has every value trimmed on the right.
		for _, e := range c.Effective() {
			require.Equal(t, strings.TrimRight(e[1], " \t"), e[1], e[0])
		}
	})
}

// An empty server.address (file, environment or override) must not bind
// every interface: Go reads "" as all of them (issue 14, point 1).
func TestLoad_EmptyAddressMeansLoopback(t *testing.T) {
	base := map[string]string{
		"difi.move.org.number": "910077473", "difi.move.org.keystore.path": "k.p12",
		"difi.move.org.keystore.alias": "a", "difi.move.org.keystore.password": "p",
	}
	for name, src := range map[string]Source{
		"override": {Overrides: map[string]string{"server.address": "", "difi.move.org.number": "910077473", "difi.move.org.keystore.path": "k.p12", "difi.move.org.keystore.alias": "a", "difi.move.org.keystore.password": "p"}},
		"env":      {Overrides: base, Env: []string{"SERVER_ADDRESS="}},
	} {
		t.Run(name, func(t *testing.T) {
			c, warns, err := Load(src)
			require.NoError(t, err)
			assert.True(t, c.Server.Loopback())
			assert.Equal(t, "127.0.0.1:9093", c.Server.Addr())
			var all []string
			for _, w := range warns {
				all = append(all, w.String())
			}
			assert.Contains(t, strings.Join(all, "\n"), "server.address: empty: the API binds loopback 127.0.0.1 only")
		})
	}
}

func TestLoad_UnspecifiedAndPublicAddressesNeedTLSAndAuth(t *testing.T) {
	for _, addr := range []string{"::", "0.0.0.0", "10.0.0.5", "128.0.0.1"} {
		_, _, err := Load(Source{Overrides: map[string]string{
			"difi.move.org.number": "910077473", "difi.move.org.keystore.path": "k.p12",
			"difi.move.org.keystore.alias": "a", "difi.move.org.keystore.password": "p",
			"server.address": addr,
		}})
		ps := problems(t, err)
		assert.Contains(t, ps, "difi.ssl.enabled", addr)
		assert.Contains(t, ps, "difi.security.enable", addr)
	}
	for _, addr := range []string{"127.0.0.2", "::1", "localhost"} {
		c, _, err := Load(Source{Overrides: map[string]string{
			"difi.move.org.number": "910077473", "difi.move.org.keystore.path": "k.p12",
			"difi.move.org.keystore.alias": "a", "difi.move.org.keystore.password": "p",
			"server.address": addr,
		}})
		require.NoError(t, err, addr)
		assert.True(t, c.Server.Loopback(), addr)
	}
}

// SvarUt's account user and password are SOAP's Basic auth, SvarInn's only
// matter when SvarInn is on: an agency on REST without SvarInn is not asked
// for them.
func TestLoad_DPFCredentialsOnlyForThePartsInUse(t *testing.T) {
	t.Setenv("EFM_TEST_KEYSTORE_PASSWORD", "s3cret")
	fiks := []string{"difi.move.fiks.ut.username", "difi.move.fiks.ut.password", "difi.move.fiks.inn.username", "difi.move.fiks.inn.password"}
	load := func(ov map[string]string) map[string]*Problem {
		ov["difi.move.feature.enableDPF"] = "true"
		_, _, err := Load(Source{File: "testdata/good.properties", DataDir: "/var/lib/ip", Overrides: ov})
		if err == nil {
			return nil
		}
		return problems(t, err)
	}
	got := load(map[string]string{"difi.move.fiks.ut.type": "rest", "difi.move.fiks.inn.enable": "false"})
	for _, k := range fiks {
		assert.NotContains(t, got, k)
	}
	got = load(map[string]string{})
	for _, k := range fiks {
		assert.Contains(t, got, k, "SOAP (the reference's default) with SvarInn on needs %s", k)
	}
}

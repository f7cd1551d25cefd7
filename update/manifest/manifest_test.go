package manifest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func sample() *Manifest {
	sum := sha256.Sum256([]byte("binary"))
	return &Manifest{
		Schema:    Schema,
		Product:   Product,
		Serial:    2026112101,
		IssuedAt:  t0,
		ExpiresAt: t0.Add(14 * 24 * time.Hour),
		Environments: map[string]Channels{
			"production": {Stable: "1.4.2", Earlybird: "1.5.0-rc.1"},
		},
		Releases: []Release{
			{Version: "1.4.2", ReleasedAt: t0, Urgency: UrgencyNormal, Artifacts: []Artifact{{
				OS: "linux", Arch: "amd64", URL: "1.4.2/integrasjonspunkt-1.4.2-linux-amd64", Size: 6,
				SHA256: hex.EncodeToString(sum[:]), Minisig: "1.4.2/integrasjonspunkt-1.4.2-linux-amd64.minisig",
			}}},
			{Version: "1.5.0-rc.1", ReleasedAt: t0},
		},
		Revoked:        []string{"1.4.0"},
		ConfigDefaults: map[string]string{"difi.move.serviceregistryEndpoint": "https://eformidling.no/adressetjeneste"},
	}
}

func keypair(t testing.TB) (minisign.PublicKey, minisign.PrivateKey) {
	t.Helper()
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return pub, priv
}

func TestParse_SpecExample(t *testing.T) {
	b, err := sample().Marshal()
	require.NoError(t, err)
	m, err := Parse(b)
	require.NoError(t, err)
	assert.Equal(t, uint64(2026112101), m.Serial)
	r, ok := m.Release("1.4.2")
	require.True(t, ok)
	a, ok := r.Artifact("linux", "amd64")
	require.True(t, ok)
	assert.Equal(t, int64(6), a.Size)
	_, ok = r.Artifact("windows", "amd64")
	assert.False(t, ok)
	assert.True(t, m.IsRevoked("1.4.0"))
	assert.Equal(t, "1.5.0-rc.1", m.Environments["production"].Get(ChannelEarlybird))
}

func TestParse_Rejects(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Manifest)
		raw     string
		wantErr error
		wantMsg string
	}{
		{name: "schema 2", mutate: func(m *Manifest) { m.Schema = 2 }, wantErr: ErrSchema},
		{name: "other product", mutate: func(m *Manifest) { m.Product = "kosmos" }, wantErr: ErrProduct},
		{name: "zero serial", mutate: func(m *Manifest) { m.Serial = 0 }, wantErr: ErrMalformed, wantMsg: "serial"},
		{name: "validity too long", mutate: func(m *Manifest) { m.ExpiresAt = m.IssuedAt.Add(15 * 24 * time.Hour) }, wantErr: ErrMalformed, wantMsg: "more than"},
		{name: "expires before issued", mutate: func(m *Manifest) { m.ExpiresAt = m.IssuedAt.Add(-time.Hour) }, wantErr: ErrMalformed, wantMsg: "not after"},
		{name: "bad sha256", mutate: func(m *Manifest) { m.Releases[0].Artifacts[0].SHA256 = "abc" }, wantErr: ErrMalformed, wantMsg: "sha256"},
		{name: "zero size", mutate: func(m *Manifest) { m.Releases[0].Artifacts[0].Size = 0 }, wantErr: ErrMalformed, wantMsg: "size"},
		{name: "url escapes folder", mutate: func(m *Manifest) { m.Releases[0].Artifacts[0].URL = "../../etc/passwd" }, wantErr: ErrMalformed, wantMsg: "leaves"},
		{name: "absolute path url", mutate: func(m *Manifest) { m.Releases[0].Artifacts[0].URL = "/etc/passwd" }, wantErr: ErrMalformed, wantMsg: "neither"},
		{name: "channel names unknown release", mutate: func(m *Manifest) { m.Environments["staging"] = Channels{Stable: "9.9.9"} }, wantErr: ErrMalformed, wantMsg: "no release entry"},
		{name: "secret in config defaults", mutate: func(m *Manifest) { m.ConfigDefaults["difi.move.org.keystore.password"] = "x" }, wantErr: ErrMalformed, wantMsg: "not centrally managed"},
		{name: "update url in config defaults", mutate: func(m *Manifest) { m.ConfigDefaults["efm.update.url"] = "https://evil" }, wantErr: ErrMalformed, wantMsg: "not centrally managed"},
		{name: "duplicate version", mutate: func(m *Manifest) { m.Releases = append(m.Releases, m.Releases[0]) }, wantErr: ErrMalformed, wantMsg: "twice"},
		{name: "unknown urgency", mutate: func(m *Manifest) { m.Releases[0].Urgency = "critical" }, wantErr: ErrMalformed, wantMsg: "urgency"},
		{name: "unknown field", raw: `{"schema":1,"product":"integrasjonspunkt","serial":1,"bogus":true}`, wantErr: ErrMalformed},
		{name: "trailing data", raw: `{"schema":1}{}`, wantErr: ErrMalformed},
		{name: "not json", raw: `schema: 1`, wantErr: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.raw)
			if tt.mutate != nil {
				m := sample()
				tt.mutate(m)
				var err error
				data, err = json.Marshal(m)
				require.NoError(t, err)
			}
			_, err := Parse(data)
			require.ErrorIs(t, err, tt.wantErr)
			assert.Contains(t, err.Error(), tt.wantMsg)
		})
	}
}

func TestVerify(t *testing.T) {
	pub, priv := keypair(t)
	next, nextPriv := keypair(t)
	_, otherPriv := keypair(t)
	data, err := sample().Marshal()
	require.NoError(t, err)
	sig := Sign(priv, data, "file:manifest.json")
	now := t0.Add(time.Hour)
	keys := []minisign.PublicKey{pub, next}

	t.Run("good", func(t *testing.T) {
		m, err := Verify(keys, data, sig, Freshness{Now: now, MinSerial: 2026112101})
		require.NoError(t, err)
		assert.Equal(t, uint64(2026112101), m.Serial)
	})
	t.Run("next key verifies after rollover", func(t *testing.T) {
		_, err := Verify(keys, data, Sign(nextPriv, data, ""), Freshness{Now: now})
		require.NoError(t, err)
	})
	t.Run("untrusted key", func(t *testing.T) {
		_, err := Verify(keys, data, Sign(otherPriv, data, ""), Freshness{Now: now})
		require.ErrorIs(t, err, ErrSignature)
		assert.Contains(t, err.Error(), "not trusted")
	})
	t.Run("tampered manifest", func(t *testing.T) {
		bad := []byte(strings.Replace(string(data), "1.4.2", "1.4.3", 1))
		_, err := Verify(keys, bad, sig, Freshness{Now: now})
		require.ErrorIs(t, err, ErrSignature)
	})
	t.Run("garbage signature", func(t *testing.T) {
		_, err := Verify(keys, data, []byte("untrusted comment: x\nAAAA\n"), Freshness{Now: now})
		require.ErrorIs(t, err, ErrSignature)
	})
	t.Run("no keys", func(t *testing.T) {
		_, err := Verify(nil, data, sig, Freshness{Now: now})
		require.ErrorIs(t, err, ErrNoTrustedKeys)
	})
	t.Run("expired", func(t *testing.T) {
		_, err := Verify(keys, data, sig, Freshness{Now: t0.Add(14 * 24 * time.Hour)})
		require.ErrorIs(t, err, ErrExpired)
	})
	t.Run("issued in the future", func(t *testing.T) {
		_, err := Verify(keys, data, sig, Freshness{Now: t0.Add(-2 * time.Hour)})
		require.ErrorIs(t, err, ErrNotYetValid)
	})
	t.Run("replayed older serial", func(t *testing.T) {
		_, err := Verify(keys, data, sig, Freshness{Now: now, MinSerial: 2026112102})
		require.ErrorIs(t, err, ErrSerialReplay)
	})
}

func TestVerifyFile(t *testing.T) {
	pub, priv := keypair(t)
	name := filepath.Join(t.TempDir(), "artifact")
	require.NoError(t, os.WriteFile(name, []byte("some binary bytes"), 0o600))
	sig, err := SignFile(priv, name, "file:artifact")
	require.NoError(t, err)
	keys := []minisign.PublicKey{pub}
	require.NoError(t, VerifyFile(keys, name, sig))
	// Bytes signed by SignFile verify in memory too, as selfupdate's Verifier does.
	require.NoError(t, VerifyBytes(keys, []byte("some binary bytes"), sig))

	require.NoError(t, os.WriteFile(name, []byte("some binary bytez"), 0o600))
	require.ErrorIs(t, VerifyFile(keys, name, sig), ErrSignature)
}

func TestParsePublicKey(t *testing.T) {
	pub, _ := keypair(t)
	text, err := pub.MarshalText()
	require.NoError(t, err)
	for _, in := range []string{string(text), "untrusted comment: minisign public key\n" + string(text) + "\n"} {
		k, err := ParsePublicKey(in)
		require.NoError(t, err)
		assert.True(t, k.Equal(pub))
	}
	_, err = ParsePublicKey("not a key")
	require.Error(t, err)
}

// FuzzParse checks that whatever Parse accepts is valid, re-encodes, and
// parses back to the same manifest.
func FuzzParse(f *testing.F) {
	b, _ := sample().Marshal()
	f.Add(b)
	f.Add([]byte(`{"schema":1,"product":"integrasjonspunkt","serial":1,"issued_at":"2026-11-21T10:00:00Z","expires_at":"2026-11-22T10:00:00Z","environments":{},"releases":[]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			if m != nil {
				t.Fatal("manifest returned with an error")
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("accepted manifest fails Validate: %v", err)
		}
		for _, r := range m.Releases {
			for _, a := range r.Artifacts {
				if a.Size <= 0 || len(a.SHA256) != 64 || checkRef(a.URL) != nil {
					t.Fatalf("accepted artifact %+v", a)
				}
			}
		}
		for k := range m.ConfigDefaults {
			if !ConfigKeyAllowed(k) {
				t.Fatalf("accepted config key %q", k)
			}
		}
		again, err := m.Marshal()
		if err != nil {
			t.Fatalf("re-encoding accepted manifest: %v", err)
		}
		m2, err := Parse(again)
		if err != nil {
			t.Fatalf("re-parsing: %v", err)
		}
		if m2.Serial != m.Serial || len(m2.Releases) != len(m.Releases) || !m2.ExpiresAt.Equal(m.ExpiresAt) {
			t.Fatal("round trip changed the manifest")
		}
	})
}

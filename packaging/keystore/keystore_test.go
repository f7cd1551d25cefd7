package keystore

import (
	"bytes"
	"crypto/rand"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"crypto/x509"
	"github.com/efm-go/efm/packaging/testpki"
	jks "github.com/pavlo-v-chernykh/keystore-go/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"software.sslmate.com/src/go-pkcs12"
)

var pki *testpki.PKI

const orgA = "910075918"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keystore-test-pki")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pki, err = testpki.Ensure(dir, []string{orgA})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// writeJKS writes the org's identity as a JKS keystore, with separate store and key passwords.
func writeJKS(t testing.TB, path, alias, storePass, keyPass string) {
	id := pki.Orgs[orgA]
	keyDER, err := x509.MarshalPKCS8PrivateKey(id.Key)
	require.NoError(t, err)
	ks := jks.New()
	require.NoError(t, ks.SetPrivateKeyEntry(alias, jks.PrivateKeyEntry{
		CreationTime: time.Now(),
		PrivateKey:   keyDER,
		CertificateChain: []jks.Certificate{
			{Type: "X509", Content: id.Cert.Raw},
			{Type: "X509", Content: pki.CACert.Raw},
		},
	}, []byte(keyPass)))
	var buf bytes.Buffer
	require.NoError(t, ks.Store(&buf, []byte(storePass)))
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o600))
}

// opensslP12 writes a PKCS#12 the way operators make them, with a friendly name.
func opensslP12(t testing.TB, path, alias, pass string) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if testing.Short() {
			t.Skip("openssl not installed (Debian package openssl)")
		}
		t.Fatal("openssl not installed: apt-get install openssl")
	}
	id := pki.Orgs[orgA]
	out, err := exec.Command(openssl, "pkcs12", "-export", "-name", alias, "-inkey", id.KeyPEMPath, "-in", id.CertPEMPath,
		"-certfile", pki.CAPath(), "-passout", "pass:"+pass, "-out", path).CombinedOutput()
	require.NoError(t, err, "%s", out)
}

func TestLoad(t *testing.T) {
	id := pki.Orgs[orgA]
	dir := t.TempDir()
	jksPath := filepath.Join(dir, "keystore.jks")
	writeJKS(t, jksPath, "Virksomhet", "storepass", "keypass")
	namedP12 := filepath.Join(dir, "named.p12")
	opensslP12(t, namedP12, "virksomhet", "secret")

	tests := []struct {
		name     string
		cfg      Config
		wantType Type
		wantErr  error
		warnings int
	}{
		{"testpki pkcs12", Config{Path: id.KeystorePath, Alias: id.Alias, Password: id.KeystorePassword}, PKCS12, nil, 0},
		{"file: prefix", Config{Path: "file:" + id.KeystorePath, Alias: id.Alias, Password: id.KeystorePassword, Type: PKCS12}, PKCS12, nil, 0},
		{"openssl pkcs12 with alias", Config{Path: namedP12, Alias: "virksomhet", Password: "secret"}, PKCS12, nil, 0},
		{"pkcs12 alias is case sensitive", Config{Path: namedP12, Alias: "Virksomhet", Password: "secret"}, "", ErrAliasNotFound, 0},
		{"pkcs12 wrong password", Config{Path: namedP12, Alias: "virksomhet", Password: "nope"}, "", ErrWrongPassword, 0},
		{"pkcs12 declared JKS", Config{Path: namedP12, Alias: "virksomhet", Password: "secret", Type: JKS}, PKCS12, nil, 1},
		{"jks with key password", Config{Path: jksPath, Alias: "virksomhet", Password: "storepass", KeyPassword: "keypass", Type: JKS}, JKS, nil, 0},
		{"jks alias case insensitive", Config{Path: jksPath, Alias: "VIRKSOMHET", Password: "storepass", KeyPassword: "keypass", Type: JKS}, JKS, nil, 0},
		{"jks declared default type", Config{Path: jksPath, Alias: "virksomhet", Password: "storepass", KeyPassword: "keypass"}, JKS, nil, 1},
		{"jks wrong store password", Config{Path: jksPath, Alias: "virksomhet", Password: "x", KeyPassword: "keypass"}, "", ErrWrongPassword, 0},
		{"jks wrong key password", Config{Path: jksPath, Alias: "virksomhet", Password: "storepass"}, "", ErrWrongPassword, 0},
		{"jks unknown alias", Config{Path: jksPath, Alias: "other", Password: "storepass", KeyPassword: "keypass"}, "", ErrAliasNotFound, 0},
		{"missing file", Config{Path: filepath.Join(dir, "nope.p12")}, "", ErrNotFound, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks, err := Load(tt.cfg)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				if tt.cfg.Password != "" {
					assert.NotContains(t, err.Error(), tt.cfg.Password, "passwords never appear in errors")
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantType, ks.Type)
			assert.True(t, ks.Cert.Equal(id.Cert))
			assert.True(t, ks.Key.Equal(id.Key))
			require.Len(t, ks.Chain, 1)
			assert.True(t, ks.Chain[0].Equal(pki.CACert))
			assert.Len(t, ks.Warnings, tt.warnings, "%v", ks.Warnings)
			if tt.cfg.Path != namedP12 && tt.wantType == PKCS12 {
				assert.Len(t, ks.Notes, 1, "testpki's files name no alias: config check says so")
			} else {
				assert.Empty(t, ks.Notes)
			}
		})
	}
}

func TestLoad_ListsAliasesOnMiss(t *testing.T) {
	p := filepath.Join(t.TempDir(), "named.p12")
	opensslP12(t, p, "virksomhet", "secret")
	_, err := Load(Config{Path: p, Alias: "feil", Password: "secret"})
	require.ErrorIs(t, err, ErrAliasNotFound)
	assert.ErrorContains(t, err, "key entries virksomhet")
}

func TestParse_RefusesHostileFiles(t *testing.T) {
	id := pki.Orgs[orgA]
	slow, err := pkcs12.Modern2023.WithIterations(maxIterations+1).Encode(id.Key, id.Cert, nil, "x")
	require.NoError(t, err)
	tests := []struct {
		name    string
		data    []byte
		wantErr error
	}{
		{"jceks", []byte{0xce, 0xce, 0xce, 0xce, 0, 0, 0, 2}, ErrUnknownFormat},
		{"text", []byte("hello"), ErrUnknownFormat},
		{"jks with a 4 GiB field", []byte{0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, ErrMalformed},
		{"jks with 4 G certificates", append([]byte{0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, make([]byte, 100)...), ErrMalformed},
		{"pkcs12 demanding too many iterations", slow, ErrMalformed},
		{"oversized", append([]byte{0x30}, make([]byte, MaxSize)...), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.data, Config{Alias: "a", Password: "x"})
			assert.ErrorIs(t, err, tt.wantErr)
		})
	}
}

func TestCheckCertificate(t *testing.T) {
	cert := pki.Orgs[orgA].Cert
	other, err := testpki.Ensure(t.TempDir(), nil)
	require.NoError(t, err)
	tests := []struct {
		name     string
		opts     CheckOptions
		status   Health
		severity Severity
		reason   string
	}{
		{"valid", CheckOptions{Now: time.Now(), Roots: pki.Pool(), OrgNumber: orgA}, Up, SeverityNone, ""},
		{"expires in 20 days", CheckOptions{Now: cert.NotAfter.Add(-20 * 24 * time.Hour)}, Degraded, SeverityWarn, "in 20 days"},
		{"expires in 3 days", CheckOptions{Now: cert.NotAfter.Add(-3 * 24 * time.Hour)}, Degraded, SeverityCritical, "in 3 days"},
		{"expired", CheckOptions{Now: cert.NotAfter.Add(time.Hour)}, Down, SeverityCritical, "certificate expired " + cert.NotAfter.Format(time.DateOnly)},
		{"not yet valid", CheckOptions{Now: cert.NotBefore.Add(-time.Hour)}, Down, SeverityCritical, "not valid before"},
		{"other organisation", CheckOptions{OrgNumber: "910077473"}, Down, SeverityCritical, "not 910077473"},
		{"untrusted", CheckOptions{Roots: other.Pool()}, Down, SeverityCritical, "chain not trusted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := CheckCertificate(cert, tt.opts)
			assert.Equal(t, tt.status, c.Status)
			assert.Equal(t, tt.severity, c.Severity)
			assert.Equal(t, orgA, c.OrgNumber)
			if tt.reason != "" {
				require.NotEmpty(t, c.Reasons)
				assert.Contains(t, c.Reasons[0], tt.reason)
			} else {
				assert.Empty(t, c.Reasons)
			}
		})
	}
}

func TestCheckCertificate_KeyUsage(t *testing.T) {
	key := pki.Orgs[orgA].Key
	mk := func(usage x509.KeyUsage) *x509.Certificate {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(7), Subject: pkix.Name{SerialNumber: orgA},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0), KeyUsage: usage,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		require.NoError(t, err)
		c, err := x509.ParseCertificate(der)
		require.NoError(t, err)
		return c
	}
	c := CheckCertificate(mk(x509.KeyUsageDigitalSignature), CheckOptions{})
	assert.Equal(t, Degraded, c.Status)
	assert.Equal(t, SeverityWarn, c.Severity)
	assert.Contains(t, c.Reasons[0], "key encipherment")

	c = CheckCertificate(mk(x509.KeyUsageKeyEncipherment), CheckOptions{})
	assert.Equal(t, Down, c.Status)
	assert.Contains(t, c.Reasons[0], "signing")
}

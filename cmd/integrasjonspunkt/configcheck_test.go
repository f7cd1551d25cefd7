package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jks "github.com/pavlo-v-chernykh/keystore-go/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"software.sslmate.com/src/go-pkcs12"
)

// checkNow is the clock of the keystore cases; every validity window is
// derived from it.
var checkNow = time.Now().UTC().Truncate(time.Second)

var checkKey = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}()

// businessCert is a self-signed SEID v1-style certificate for org.
func businessCert(t *testing.T, org string, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "TEST " + org, SerialNumber: org, Organization: []string{"TEST"}},
		NotBefore:    notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &checkKey.PublicKey, checkKey)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return c
}

func writeP12(t *testing.T, path string, c *x509.Certificate, pass string) {
	t.Helper()
	pfx, err := pkcs12.Modern2023.Encode(checkKey, c, nil, pass)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, pfx, 0o600))
}

func writeNamedJKS(t *testing.T, path, alias string, c *x509.Certificate, pass string) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(checkKey)
	require.NoError(t, err)
	ks := jks.New()
	require.NoError(t, ks.SetPrivateKeyEntry(alias, jks.PrivateKeyEntry{CreationTime: checkNow, PrivateKey: der,
		CertificateChain: []jks.Certificate{{Type: "X509", Content: c.Raw}}}, []byte(pass)))
	var buf bytes.Buffer
	require.NoError(t, ks.Store(&buf, []byte(pass)))
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o600))
}

// Before this check every case below passed as "configuration OK".
func TestConfigCheck_OpensTheKeystoreAndNamesWhatIsWrong(t *testing.T) {
	now = func() time.Time { return checkNow }
	t.Cleanup(func() { now = time.Now })
	const org, pass = "910077473", "hemmelig-passord"
	dir := t.TempDir()
	day := 24 * time.Hour
	writeP12(t, filepath.Join(dir, "good.p12"), businessCert(t, org, checkNow.Add(-day), checkNow.Add(300*day)), pass)
	writeP12(t, filepath.Join(dir, "expired.p12"), businessCert(t, org, checkNow.Add(-400*day), checkNow.Add(-10*day)), pass)
	writeP12(t, filepath.Join(dir, "future.p12"), businessCert(t, org, checkNow.Add(5*day), checkNow.Add(400*day)), pass)
	writeP12(t, filepath.Join(dir, "other.p12"), businessCert(t, "910076787", checkNow.Add(-day), checkNow.Add(300*day)), pass)
	writeNamedJKS(t, filepath.Join(dir, "named.jks"), "virksomhet", businessCert(t, org, checkNow.Add(-day), checkNow.Add(300*day)), pass)

	tests := []struct {
		name, keystore, password, alias, extra string
		wantCode                               int
		want                                   string
	}{
		{"good", "good.p12", pass, org, "", exitOK, "O=TEST, serial "},
		{"good, its validity", "good.p12", pass, org, "", exitOK, "valid until " + checkNow.Add(300*day).Format(time.DateOnly)},
		{"missing file", "nope.p12", pass, org, "", exitFailure, "error: difi.move.org.keystore.path: no file at " + filepath.Join(dir, "nope.p12")},
		{"wrong password", "good.p12", "feil", org, "", exitFailure, "error: difi.move.org.keystore.password: the password does not open"},
		{"wrong alias", "named.jks", pass, org, "", exitFailure, `error: difi.move.org.keystore.alias: keystore: alias not found: "910077473" (the file has key entries virksomhet)`},
		{"expired", "expired.p12", pass, org, "", exitFailure, "error: difi.move.org.keystore.path: certificate expired " + checkNow.Add(-10*day).Format(time.DateOnly)},
		{"not yet valid", "future.p12", pass, org, "", exitFailure, "error: difi.move.org.keystore.path: certificate not valid before " + checkNow.Add(5*day).Format(time.DateOnly)},
		{"another organisation", "other.p12", pass, org, "", exitFailure, `error: difi.move.org.keystore.path: certificate is for organisation "910076787", not 910077473`},
		{"tls keystore missing", "good.p12", pass, org, "difi.ssl.enabled=true\ndifi.ssl.key-store=tls.p12\ndifi.ssl.key-store-password=x\ndifi.ssl.key-alias=tls\n",
			exitFailure, "error: difi.ssl.key-store: no file at " + filepath.Join(dir, "tls.p12")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			props := filepath.Join(t.TempDir(), "integrasjonspunkt-local.properties")
			require.NoError(t, os.WriteFile(props, []byte("difi.move.org.number="+org+"\n"+
				"difi.move.org.keystore.path=file:"+tt.keystore+"\n"+
				"difi.move.org.keystore.alias="+tt.alias+"\n"+
				"difi.move.org.keystore.password="+tt.password+"\n"+
				"difi.move.feature.enableDPE=false\n"+tt.extra), 0o600))
			out, code := runCLI(t, "config", "check", "--config", props, "--data", dir)
			assert.Equal(t, tt.wantCode, code, out)
			assert.Contains(t, out, tt.want)
			assert.NotContains(t, out, pass, "a secret reached the output")
			if tt.wantCode == exitOK {
				assert.Contains(t, out, "configuration OK")
			} else {
				assert.NotContains(t, out, "configuration OK")
			}
			assert.Equal(t, 1, strings.Count(out, "error: ")+boolInt(tt.wantCode == exitOK), "one problem, named once:\n%s", out)
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

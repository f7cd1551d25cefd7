package testpki

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"software.sslmate.com/src/go-pkcs12"
)

func TestEnsure_CreatesChainedIdentities(t *testing.T) {
	dir := t.TempDir()
	p, err := Ensure(dir, []string{"910075918", "910077473"})
	require.NoError(t, err)

	require.Len(t, p.Orgs, 2)
	for org, id := range p.Orgs {
		assert.Equal(t, org, id.OrgNumber)
		assert.Equal(t, org, id.Cert.Subject.SerialNumber, "SEID v1 puts the org number in serialNumber")
		assert.True(t, hasOrgIdentifier(id.Cert.Subject, "NTRNO-"+org), "SEID v2 organizationIdentifier")
		_, err := id.Cert.Verify(x509.VerifyOptions{Roots: p.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		assert.NoError(t, err)
		assert.NotZero(t, id.Cert.KeyUsage&x509.KeyUsageKeyEncipherment)
		assert.NotZero(t, id.Cert.KeyUsage&x509.KeyUsageDigitalSignature)

		data, err := os.ReadFile(id.KeystorePath)
		require.NoError(t, err)
		key, cert, chain, err := pkcs12.DecodeChain(data, id.KeystorePassword)
		require.NoError(t, err)
		assert.True(t, id.Cert.Equal(cert))
		assert.True(t, id.Key.Equal(key))
		require.Len(t, chain, 1)
		assert.True(t, p.CACert.Equal(chain[0]))
		assert.FileExists(t, id.CertPEMPath)
		assert.FileExists(t, id.KeyPEMPath)
	}
	require.NotNil(t, p.Print)
	assert.Equal(t, PrintOrgNumber, p.Print.Cert.Subject.SerialNumber)
	assert.FileExists(t, p.CAPath())
}

func TestEnsure_IsIdempotent(t *testing.T) {
	dir := t.TempDir()
	first, err := Ensure(dir, []string{"910075918"})
	require.NoError(t, err)
	keystore, err := os.ReadFile(first.Orgs["910075918"].KeystorePath)
	require.NoError(t, err)

	second, err := Ensure(dir, []string{"910075918", "910077473"})
	require.NoError(t, err)
	assert.True(t, first.CACert.Equal(second.CACert))
	assert.True(t, first.Orgs["910075918"].Cert.Equal(second.Orgs["910075918"].Cert))
	assert.True(t, first.Print.Cert.Equal(second.Print.Cert))
	again, err := os.ReadFile(second.Orgs["910075918"].KeystorePath)
	require.NoError(t, err)
	assert.Equal(t, keystore, again, "an existing keystore is not rewritten")
	assert.Contains(t, second.Orgs, "910077473")
}

func TestEnsure_ConcurrentCallersAgreeOnCA(t *testing.T) {
	dir := t.TempDir()
	const n = 3
	var wg sync.WaitGroup
	results := make([]*PKI, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { results[i], errs[i] = Ensure(dir, nil) })
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		assert.True(t, results[0].CACert.Equal(results[i].CACert))
	}
	final, err := Ensure(dir, nil)
	require.NoError(t, err)
	_, err = final.Print.Cert.Verify(x509.VerifyOptions{Roots: final.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	assert.NoError(t, err, "whichever writer won, the print keystore chains to the CA on disk")
}

func TestEnsure_ReplacesForeignOrExpiringCertificate(t *testing.T) {
	dir := t.TempDir()
	p, err := Ensure(dir, []string{"910075918"})
	require.NoError(t, err)
	old := p.Orgs["910075918"]

	// A certificate from this CA that expires in a week must be renewed.
	tmpl := *old.Cert
	tmpl.NotAfter = time.Now().Add(7 * 24 * time.Hour)
	tmpl.SerialNumber = randomSerial()
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, p.CACert, &old.Key.PublicKey, p.caKey)
	require.NoError(t, err)
	short, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pfx, err := pkcs12.Modern2023.Encode(old.Key, short, nil, KeystorePassword)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(old.KeystorePath, pfx, 0o600))

	renewed, err := Ensure(dir, []string{"910075918"})
	require.NoError(t, err)
	got := renewed.Orgs["910075918"].Cert
	assert.False(t, got.Equal(short))
	assert.True(t, got.NotAfter.After(time.Now().Add(renewBefore)))

	// A keystore for another organisation under this name is replaced too.
	require.NoError(t, os.Rename(filepath.Join(dir, "print.p12"), old.KeystorePath))
	fixed, err := Ensure(dir, []string{"910075918"})
	require.NoError(t, err)
	assert.Equal(t, "910075918", fixed.Orgs["910075918"].Cert.Subject.SerialNumber)
}

func TestEnsure_RejectsBadOrgNumber(t *testing.T) {
	for _, in := range []string{"", "12345678", "1234567890", "91007591x", "../../etc"} {
		_, err := Ensure(t.TempDir(), []string{in})
		assert.ErrorIs(t, err, ErrInvalidOrgNumber, in)
	}
}

func hasOrgIdentifier(n pkix.Name, want string) bool {
	for _, a := range n.Names {
		if a.Type.Equal(oidOrganizationIdentifier) && a.Value == want {
			return true
		}
	}
	return false
}

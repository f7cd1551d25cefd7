package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/pakkesporing/pakkesporingtest"
)

func writePEM(t *testing.T, dir string) (ca, cert, key, token string) {
	t.Helper()
	c := pakkesporingtest.NewCA(t)
	srv := c.ServerCert(t)
	ca, cert, key, token = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"),
		filepath.Join(dir, "server.key"), filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw}), 0o600))
	require.NoError(t, os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate[0]}), 0o600))
	der, err := x509.MarshalPKCS8PrivateKey(srv.PrivateKey)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(token, []byte("a-long-enough-query-token\n"), 0o600))
	return ca, cert, key, token
}

func TestRun_RetentionAndServe(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key, token := writePEM(t, dir)
	db := filepath.Join(dir, "events.db")
	contacts := filepath.Join(dir, "contacts.csv")
	require.NoError(t, os.WriteFile(contacts, []byte("# orgnr,e-mail\n991825827, arkiv@digdir.test\n"), 0o600))
	var out, errOut bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"retention", "--db", db, "--client-ca", ca,
		"--query-token-file", token, "--contacts", contacts}, &out, &errOut))
	assert.Contains(t, out.String(), "retention: cutoff")

	c := pakkesporingtest.NewCA(t)
	crl := filepath.Join(dir, "ca.crl")
	require.NoError(t, os.WriteFile(crl, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: c.RevocationList(t).Raw}), 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := run(ctx, []string{"run", "--addr", "127.0.0.1:0", "--db", db, "--client-ca", ca, "--crl", crl,
		"--query-token-file", token, "--tls-cert", cert, "--tls-key", key}, &out, &errOut)
	require.NoError(t, err)
	assert.Contains(t, errOut.String(), "pakkesporing starting")
}

func TestRun_Errors(t *testing.T) {
	var out, errOut bytes.Buffer
	assert.ErrorIs(t, run(context.Background(), nil, &out, &errOut), errUsage)
	assert.ErrorIs(t, run(context.Background(), []string{"serve"}, &out, &errOut), errUsage)
	err := run(context.Background(), []string{"run", "--client-ca", "/nonexistent", "--crl", "/nonexistent.crl"}, &out, &errOut)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--client-ca")
	assert.Contains(t, err.Error(), "--crl")
	assert.Contains(t, err.Error(), "--tls-cert and --tls-key")
	require.NoError(t, run(context.Background(), []string{"version"}, &out, &errOut))
	assert.Contains(t, out.String(), "pakkesporing ")
}

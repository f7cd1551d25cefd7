package cms

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/efm-go/efm/packaging/testpki"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var manifest = []byte(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?><ASiCManifest xmlns="http://uri.etsi.org/02918/v1.2.1#"/>`)

func TestSignDetached_Verify(t *testing.T) {
	id := pki.Orgs[orgA]
	for _, h := range []crypto.Hash{0, crypto.SHA256} {
		t.Run(h.String(), func(t *testing.T) {
			when := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
			sig, err := SignDetached(bytes.NewReader(manifest), id.Cert, id.Key, SignOptions{Hash: h, Chain: []*x509.Certificate{pki.CACert}, SigningTime: when})
			require.NoError(t, err)
			s, err := VerifyDetached(sig, bytes.NewReader(manifest), VerifyOptions{Roots: pki.Pool()})
			require.NoError(t, err)
			assert.True(t, s.Cert.Equal(id.Cert))
			assert.True(t, when.Equal(s.SigningTime))
			want := h
			if want == 0 {
				want = crypto.SHA1
			}
			assert.Equal(t, want, s.Hash)
		})
	}
}

func TestVerifyDetached_Refusals(t *testing.T) {
	id := pki.Orgs[orgA]
	sig, err := SignDetached(bytes.NewReader(manifest), id.Cert, id.Key, SignOptions{Hash: crypto.SHA256})
	require.NoError(t, err)

	t.Run("tampered content", func(t *testing.T) {
		bad := bytes.Replace(manifest, []byte("02918"), []byte("02919"), 1)
		_, err := VerifyDetached(sig, bytes.NewReader(bad), VerifyOptions{Roots: pki.Pool()})
		assert.ErrorIs(t, err, ErrDigestMismatch)
	})
	t.Run("tampered signature", func(t *testing.T) {
		bad := bytes.Clone(sig)
		bad[len(bad)-5] ^= 0x01
		_, err := VerifyDetached(bad, bytes.NewReader(manifest), VerifyOptions{Roots: pki.Pool()})
		assert.ErrorIs(t, err, ErrSignatureInvalid)
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		other, err := testpki.Ensure(t.TempDir(), nil)
		require.NoError(t, err)
		sig, err := SignDetached(bytes.NewReader(manifest), other.Print.Cert, other.Print.Key, SignOptions{})
		require.NoError(t, err)
		_, err = VerifyDetached(sig, bytes.NewReader(manifest), VerifyOptions{Roots: pki.Pool()})
		assert.ErrorIs(t, err, ErrUntrustedSigner)
		assert.ErrorContains(t, err, "certificate signed by unknown authority")
	})
	t.Run("expired at verification time", func(t *testing.T) {
		_, err := VerifyDetached(sig, bytes.NewReader(manifest), VerifyOptions{Roots: pki.Pool(), CurrentTime: time.Now().AddDate(10, 0, 0)})
		assert.ErrorIs(t, err, ErrUntrustedSigner)
	})
	t.Run("not a signature", func(t *testing.T) {
		_, err := VerifyDetached([]byte{0x30, 0x03, 0x02, 0x01, 0x00}, bytes.NewReader(manifest), VerifyOptions{Roots: pki.Pool()})
		assert.ErrorIs(t, err, ErrMalformed)
	})
}

// TestSignDetached_OpenSSLVerifies: openssl cms -verify accepts our detached CAdES
// signature, with the SHA-1 the reference writes and with SHA-256.
func TestSignDetached_OpenSSLVerifies(t *testing.T) {
	openssl := requireTool(t, "openssl", "openssl")
	id := pki.Orgs[orgA]
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		t.Run(h.String(), func(t *testing.T) {
			dir := t.TempDir()
			sig, err := SignDetached(bytes.NewReader(manifest), id.Cert, id.Key, SignOptions{Hash: h})
			require.NoError(t, err)
			sigPath := filepath.Join(dir, "signature.p7s")
			contentPath := filepath.Join(dir, "ASiCManifest.xml")
			require.NoError(t, os.WriteFile(sigPath, sig, 0o600))
			require.NoError(t, os.WriteFile(contentPath, manifest, 0o600))
			out, err := exec.Command(openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", sigPath,
				"-content", contentPath, "-CAfile", pki.CAPath(), "-purpose", "any", "-out", os.DevNull).CombinedOutput()
			require.NoError(t, err, "openssl: %s", out)
			assert.Contains(t, string(out), "Verification successful")

			require.NoError(t, os.WriteFile(contentPath, append(bytes.Clone(manifest), ' '), 0o600))
			out, err = exec.Command(openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", sigPath,
				"-content", contentPath, "-CAfile", pki.CAPath(), "-purpose", "any", "-out", os.DevNull).CombinedOutput()
			assert.Error(t, err, "openssl must refuse altered content: %s", out)
		})
	}
}

// TestVerifyDetached_OpenSSLSigned: we verify what openssl cms -sign writes, DER and streamed.
func TestVerifyDetached_OpenSSLSigned(t *testing.T) {
	openssl := requireTool(t, "openssl", "openssl")
	id := pki.Orgs[orgB]
	dir := t.TempDir()
	contentPath := filepath.Join(dir, "ASiCManifest.xml")
	require.NoError(t, os.WriteFile(contentPath, manifest, 0o600))
	for _, stream := range []bool{false, true} {
		sigPath := filepath.Join(dir, "sig.p7s")
		args := []string{"cms", "-sign", "-binary", "-outform", "DER", "-in", contentPath, "-signer", id.CertPEMPath,
			"-inkey", id.KeyPEMPath, "-certfile", pki.CAPath(), "-out", sigPath}
		if stream {
			args = append(args, "-stream")
		}
		out, err := exec.Command(openssl, args...).CombinedOutput()
		require.NoError(t, err, "openssl: %s", out)
		sig, err := os.ReadFile(sigPath)
		require.NoError(t, err)
		s, err := VerifyDetached(sig, bytes.NewReader(manifest), VerifyOptions{Roots: pki.Pool()})
		require.NoError(t, err, "stream=%v", stream)
		assert.True(t, s.Cert.Equal(id.Cert))
	}
}

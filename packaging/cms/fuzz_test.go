package cms

import (
	"bytes"
	"crypto"
	"errors"
	"testing"

	"github.com/efm-go/efm/internal/fuzzedit"
	"github.com/efm-go/efm/packaging/testpki"
)

// fuzzIdentity is a fixed identity committed under testdata/pki, so that the committed
// corpus entries stay decryptable and verifiable from one run to the next. testpki.Ensure
// reuses the files; it renews them only when they near expiry.
func fuzzIdentity(f *testing.F) (*testpki.PKI, *testpki.Identity) {
	p, err := testpki.Ensure("testdata/pki", []string{orgA})
	if err != nil {
		f.Fatal(err)
	}
	return p, p.Orgs[orgA]
}

var decryptErrors = []error{ErrMalformed, ErrUnsupported, ErrDecrypt, ErrAuthentication, ErrNoRecipient, ErrTooLarge}

func classified(err error, known []error) bool {
	for _, k := range known {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}

// FuzzDecrypt feeds arbitrary bytes to the streaming parser and decrypter. Invariants: no
// panic; every error is one of the package's sentinels; the plaintext is never longer
// than the input; the size cap holds.
func FuzzDecrypt(f *testing.F) {
	_, id := fuzzIdentity(f)
	for _, c := range combos {
		for _, msg := range []string{"", "x", "eFormidling ASiC-E container bytes, more than one block"} {
			var ct bytes.Buffer
			if _, err := Encrypt(&ct, bytes.NewReader([]byte(msg)), id.Cert, EncryptOptions{KeyTransport: c.kt, Cipher: c.cipher, AuthEnveloped: c.auth}); err != nil {
				f.Fatal(err)
			}
			f.Add(ct.Bytes())
		}
	}
	const maxSize = 1 << 16
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		info, err := Decrypt(&out, bytes.NewReader(data), id.Key, DecryptOptions{Cert: id.Cert, FirstRecipient: true, MaxSize: maxSize})
		if out.Len() > len(data) || out.Len() > maxSize {
			t.Fatalf("wrote %d octets from %d octets of input", out.Len(), len(data))
		}
		if err != nil {
			if !classified(err, decryptErrors) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if info.Size != int64(out.Len()) {
			t.Fatalf("info.Size %d, wrote %d", info.Size, out.Len())
		}
	})
}

// FuzzVerifyDetached feeds edited signatures (fuzzedit: one edit to a valid SHA-1 or
// SHA-256 signature, or short arbitrary bytes) over a fixed content. Invariants: no panic;
// errors are classified; a signature that verifies names the one trusted signer.
func FuzzVerifyDetached(f *testing.F) {
	p, id := fuzzIdentity(f)
	var bases [][]byte
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		sig, err := SignDetached(bytes.NewReader(manifest), id.Cert, id.Key, SignOptions{Hash: h, Chain: nil})
		if err != nil {
			f.Fatal(err)
		}
		bases = append(bases, sig)
		f.Add(uint8(len(bases)), uint32(0), uint16(0), []byte(nil))
	}
	known := []error{ErrMalformed, ErrUnsupported, ErrSignatureInvalid, ErrDigestMismatch, ErrUntrustedSigner, ErrTooLarge}
	f.Fuzz(func(t *testing.T, which uint8, at uint32, cut uint16, insert []byte) {
		sig := fuzzedit.Apply(bases, which, at, cut, insert)
		s, err := VerifyDetached(sig, bytes.NewReader(manifest), VerifyOptions{Roots: p.Pool()})
		if err != nil {
			if !classified(err, known) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if !s.Cert.Equal(id.Cert) {
			t.Fatalf("verified with an unexpected signer %s", s.Cert.Subject)
		}
	})
}

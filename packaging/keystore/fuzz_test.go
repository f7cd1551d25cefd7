package keystore

import (
	"bytes"
	"crypto/x509"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/efm-go/efm/internal/fuzzedit"
	"github.com/efm-go/efm/packaging/testpki"
	jks "github.com/pavlo-v-chernykh/keystore-go/v4"
)

// FuzzParse feeds edited files (fuzzedit: one edit to a valid PKCS#12 or JKS keystore, or
// short arbitrary bytes) to the loaders. Invariants: no panic, no unbounded allocation (the
// bounds pre-check runs first), every error is one of the package's sentinels, and an
// accepted keystore holds a key matching its certificate.
func FuzzParse(f *testing.F) {
	p, err := testpki.Ensure("testdata/pki", []string{orgA})
	if err != nil {
		f.Fatal(err)
	}
	id := p.Orgs[orgA]
	p12, err := os.ReadFile(id.KeystorePath)
	if err != nil {
		f.Fatal(err)
	}
	bases := [][]byte{p12}
	keyDER, err := x509.MarshalPKCS8PrivateKey(id.Key)
	if err != nil {
		f.Fatal(err)
	}
	ks := jks.New()
	if err := ks.SetPrivateKeyEntry(id.Alias, jks.PrivateKeyEntry{
		CreationTime: time.Unix(1700000000, 0), PrivateKey: keyDER,
		CertificateChain: []jks.Certificate{{Type: "X509", Content: id.Cert.Raw}},
	}, []byte(id.KeystorePassword)); err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	if err := ks.Store(&buf, []byte(id.KeystorePassword)); err != nil {
		f.Fatal(err)
	}
	bases = append(bases, buf.Bytes())
	for i := range bases {
		f.Add(uint8(i+1), uint32(0), uint16(0), []byte(nil))
	}
	known := []error{ErrMalformed, ErrUnknownFormat, ErrWrongPassword, ErrAliasNotFound, ErrUnsupportedKey}
	cfg := Config{Alias: id.Alias, Password: id.KeystorePassword}
	iterationCap = 4096 // the seeds use 2 048; higher counts only slow the fuzzer down
	f.Cleanup(func() { iterationCap = maxIterations })
	f.Fuzz(func(t *testing.T, which uint8, at uint32, cut uint16, insert []byte) {
		k, err := Parse(fuzzedit.Apply(bases, which, at, cut, insert), cfg)
		if err != nil {
			for _, e := range known {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("unclassified error: %v", err)
		}
		if !k.Key.PublicKey.Equal(k.Cert.PublicKey) {
			t.Fatal("accepted a key that does not match its certificate")
		}
	})
}

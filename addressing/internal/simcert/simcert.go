// Package simcert makes throwaway certificates for the register simulators when the caller
// passes none (the sandbox passes certificates from packaging/testpki instead). One RSA key is
// shared by every throwaway certificate so that tests do not pay for key generation repeatedly;
// nothing is ever encrypted to these certificates outside a test.
package simcert

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"sync"
	"time"
)

var (
	once   sync.Once
	shared *rsa.PrivateKey
	kerr   error
)

// Key returns the shared throwaway key.
func Key() (*rsa.PrivateKey, error) {
	once.Do(func() { shared, kerr = rsa.GenerateKey(rand.Reader, 2048) })
	return shared, kerr
}

// SelfSigned returns a PEM certificate with the given common name and, when orgnr is set, the
// organisation number as serialNumber in the subject, as Norwegian business certificates carry it.
func SelfSigned(commonName, orgnr string) ([]byte, *x509.Certificate, error) {
	key, err := Key()
	if err != nil {
		return nil, nil, fmt.Errorf("generating throwaway key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName, SerialNumber: orgnr, Organization: []string{commonName}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating throwaway certificate: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), c, nil
}

// ParsePEM returns the first certificate of a PEM block, or of bare base64 DER without armour
// (SR answers may lack it, spec/addressing.md §3.2).
func ParsePEM(b []byte) (*x509.Certificate, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		return x509.ParseCertificate(blk.Bytes)
	}
	return nil, fmt.Errorf("no pem certificate")
}

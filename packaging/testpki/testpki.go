// Package testpki is the sandbox's throwaway public key infrastructure: one test CA, a
// business certificate ("virksomhetssertifikat"-like) for every organisation the sandbox
// seeds, and the print provider's certificate (channels.md §9.1).
//
// Everything is written under one directory as PKCS#12 keystores (what the daemon's
// difi.move.org.keystore.* settings point at) plus PEM copies (what openssl, xmlsec1 and the
// simulators read). Ensure is idempotent and safe when several processes share the
// directory, so several daemons of several agencies can share one set of simulators.
//
// The keys are generated on the machine and protected by a well-known password: this is
// test material only. The daemon trusts this CA only in SANDBOX certificate mode.
//
// testpki imports nothing from the rest of the project.
package testpki

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"software.sslmate.com/src/go-pkcs12"
)

// PrintOrgNumber is the organisation number the sandbox's print provider carries. It is
// Posten Norge AS's number, the print provider KRR names in production, so that addresses in
// the sandbox look like the real ones.
const PrintOrgNumber = "984661185"

// KeystorePassword protects every keystore and private key file written here. It is public
// on purpose: the material is throwaway and the sandbox configuration has to name it.
const KeystorePassword = "sandbox-changeit"

// keyBits follows the SEID profile (RSA 2048 is the minimum Buypass and Commfides issue).
const keyBits = 2048

// renewBefore is how long before expiry Ensure replaces a certificate. It equals the
// daemon's 30-day expiry warning, so a sandbox never shows that warning for its own material.
const renewBefore = 30 * 24 * time.Hour

// oidOrganizationIdentifier is X.520 organizationIdentifier (2.5.4.97). SEID v2 certificates
// carry "NTRNO-<orgnr>" in it; SEID v1 certificates carry the bare number in serialNumber.
// We write both so readers of either generation find the organisation.
var oidOrganizationIdentifier = asn1.ObjectIdentifier{2, 5, 4, 97}

// ErrInvalidOrgNumber is returned when an organisation number is not nine digits.
var ErrInvalidOrgNumber = errors.New("testpki: organisation number must be nine digits")

// PKI is the loaded test PKI.
type PKI struct {
	// CACert is the test CA; the simulators and a SANDBOX-mode daemon trust it.
	CACert *x509.Certificate
	// CAPEM is CACert PEM-encoded, as written to ca.pem.
	CAPEM []byte
	// Orgs holds one identity per organisation number given to Ensure.
	Orgs map[string]*Identity
	// Print is the print provider's identity (org number PrintOrgNumber).
	Print *Identity

	dir   string
	caKey *rsa.PrivateKey
}

// Identity is one organisation's business certificate and key.
type Identity struct {
	OrgNumber string
	Cert      *x509.Certificate
	Key       *rsa.PrivateKey
	// CertPEM is Cert PEM-encoded, leaf only.
	CertPEM []byte
	// KeystorePath is the PKCS#12 file holding Key, Cert and the CA certificate.
	KeystorePath string
	// KeystorePassword opens KeystorePath; the key has the same password.
	KeystorePassword string
	// Alias is the name to configure as difi.move.org.keystore.alias. go-pkcs12 writes no
	// friendlyName for the key, so a PKCS#12 reader takes the single key entry; the alias is
	// the org number by convention.
	Alias string
	// KeyPEMPath and CertPEMPath are unencrypted PKCS#8 key and certificate files for tools
	// (openssl, xmlsec1) that the sandbox and the tests drive.
	KeyPEMPath  string
	CertPEMPath string
}

// Ensure creates the PKI under dir, or loads what is already there, and makes sure every
// organisation in orgNumbers (and the print provider) has a certificate issued by the CA
// that is valid for at least 30 more days. Existing files that are valid are reused
// unchanged, so repeated calls return the same certificates. dir is created if missing.
func Ensure(dir string, orgNumbers []string) (*PKI, error) {
	for _, org := range orgNumbers {
		if !validOrgNumber(org) {
			return nil, fmt.Errorf("ensuring test pki: %q: %w", org, ErrInvalidOrgNumber)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("ensuring test pki: %w", err)
	}
	p := &PKI{dir: dir, Orgs: make(map[string]*Identity, len(orgNumbers))}
	if err := p.ensureCA(); err != nil {
		return nil, fmt.Errorf("ensuring test pki: %w", err)
	}
	// RSA key generation is nearly all of a first start's time: spread it
	// over the cores. Identities are separate files, so they do not contend.
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for _, org := range slices.Compact(slices.Sorted(slices.Values(orgNumbers))) {
		g.Go(func() error {
			id, err := p.ensureIdentity(org, "EFM SANDBOX "+org, org)
			if err != nil {
				return fmt.Errorf("ensuring test pki for %s: %w", org, err)
			}
			mu.Lock()
			p.Orgs[org] = id
			mu.Unlock()
			return nil
		})
	}
	g.Go(func() error {
		print, err := p.ensureIdentity(PrintOrgNumber, "EFM SANDBOX PRINT", "print")
		if err != nil {
			return fmt.Errorf("ensuring test pki print certificate: %w", err)
		}
		p.Print = print
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return p, nil
}

// Dir is the directory the PKI lives in.
func (p *PKI) Dir() string { return p.dir }

// CAPath is the PEM file of the CA certificate (a trust anchor for openssl -CAfile and the
// daemon's SANDBOX mode).
func (p *PKI) CAPath() string { return filepath.Join(p.dir, "ca.pem") }

// Pool returns a fresh pool holding only the test CA.
func (p *PKI) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.CACert)
	return pool
}

// Issue returns an identity for orgNumber under name (the file stem), creating it when
// missing. The simulators use it for their own signing keys (SR, KRR, Maskinporten).
func (p *PKI) Issue(orgNumber, commonName, name string) (*Identity, error) {
	if !validOrgNumber(orgNumber) {
		return nil, fmt.Errorf("issuing test certificate: %q: %w", orgNumber, ErrInvalidOrgNumber)
	}
	id, err := p.ensureIdentity(orgNumber, commonName, name)
	if err != nil {
		return nil, fmt.Errorf("issuing test certificate %s: %w", name, err)
	}
	return id, nil
}

// ensureCA loads ca-key.pem/ca.pem or creates them. The key and certificate are written as
// one file first (ca-bundle.pem) and published with a hard link, which fails if another
// process won the race; the loser then loads the winner's CA, so all processes agree.
func (p *PKI) ensureCA() error {
	bundlePath := filepath.Join(p.dir, "ca-bundle.pem")
	data, err := os.ReadFile(bundlePath)
	if errors.Is(err, fs.ErrNotExist) {
		data, err = createCABundle()
		if err != nil {
			return err
		}
		if err := publishExclusive(bundlePath, data); err != nil {
			if !errors.Is(err, fs.ErrExist) {
				return err
			}
			if data, err = os.ReadFile(bundlePath); err != nil {
				return fmt.Errorf("reading ca: %w", err)
			}
		}
	} else if err != nil {
		return fmt.Errorf("reading ca: %w", err)
	}
	cert, key, err := parseBundle(data)
	if err != nil {
		return fmt.Errorf("parsing %s: %w", bundlePath, err)
	}
	p.CACert, p.caKey = cert, key
	p.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	return writeIfChanged(p.CAPath(), p.CAPEM, 0o644)
}

func createCABundle() ([]byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, fmt.Errorf("generating ca key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject: pkix.Name{
			Country:      []string{"NO"},
			Organization: []string{"EFM SANDBOX"},
			CommonName:   "EFM SANDBOX TEST CA",
		},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          keyID(&key.PublicKey),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("creating ca certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding ca key: %w", err)
	}
	var buf bytes.Buffer
	_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	_ = pem.Encode(&buf, &pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return buf.Bytes(), nil
}

func parseBundle(data []byte) (*x509.Certificate, *rsa.PrivateKey, error) {
	var cert *x509.Certificate
	var key *rsa.PrivateKey
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		switch block.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("parsing certificate: %w", err)
			}
			cert = c
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("parsing key: %w", err)
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, nil, errors.New("key is not RSA")
			}
			key = rk
		}
	}
	if cert == nil || key == nil {
		return nil, nil, errors.New("bundle needs one CERTIFICATE and one PRIVATE KEY block")
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, errors.New("key does not match certificate")
	}
	return cert, key, nil
}

// ensureIdentity loads <name>.p12 when it holds a certificate issued by this CA for org that
// is valid for at least renewBefore, and otherwise issues a new one.
func (p *PKI) ensureIdentity(org, commonName, name string) (*Identity, error) {
	p12Path := filepath.Join(p.dir, name+".p12")
	id, err := p.loadIdentity(p12Path, org)
	if err != nil {
		id, err = p.issueIdentity(p12Path, org, commonName)
		if err != nil {
			return nil, err
		}
	}
	id.Alias = name
	id.CertPEMPath = filepath.Join(p.dir, name+".pem")
	id.KeyPEMPath = filepath.Join(p.dir, name+"-key.pem")
	if err := writeIfChanged(id.CertPEMPath, id.CertPEM, 0o644); err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(id.Key)
	if err != nil {
		return nil, fmt.Errorf("encoding key: %w", err)
	}
	if err := writeIfChanged(id.KeyPEMPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	return id, nil
}

func (p *PKI) loadIdentity(path, org string) (*Identity, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, cert, _, err := pkcs12.DecodeChain(data, KeystorePassword)
	if err != nil {
		return nil, err
	}
	key, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("key is not RSA")
	}
	if cert.CheckSignatureFrom(p.CACert) != nil {
		return nil, errors.New("not issued by this ca")
	}
	if cert.Subject.SerialNumber != org {
		return nil, errors.New("issued for another organisation")
	}
	if time.Until(cert.NotAfter) < renewBefore {
		return nil, errors.New("expires soon")
	}
	return &Identity{
		OrgNumber:        org,
		Cert:             cert,
		Key:              key,
		CertPEM:          pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		KeystorePath:     path,
		KeystorePassword: KeystorePassword,
	}, nil
}

// issueIdentity creates a key and certificate and writes the PKCS#12 atomically. Another
// process may issue the same identity at the same moment; the last rename wins and both
// keystores are valid, so a reader never sees a torn file.
func (p *PKI) issueIdentity(path, org, commonName string) (*Identity, error) {
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, fmt.Errorf("generating key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject: pkix.Name{
			Country:      []string{"NO"},
			Organization: []string{commonName},
			CommonName:   commonName,
			SerialNumber: org,
			ExtraNames: []pkix.AttributeTypeAndValue{
				{Type: oidOrganizationIdentifier, Value: "NTRNO-" + org},
			},
		},
		NotBefore: now.Add(-time.Hour),
		NotAfter:  now.AddDate(3, 0, 0),
		// One certificate does everything a SEID set does with several: sign (ASiC, JWS,
		// Maskinporten grants) and receive encrypted content (CMS key transport).
		KeyUsage:       x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageEmailProtection},
		SubjectKeyId:   keyID(&key.PublicKey),
		AuthorityKeyId: p.CACert.SubjectKeyId,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.CACert, &key.PublicKey, p.caKey)
	if err != nil {
		return nil, fmt.Errorf("creating certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing new certificate: %w", err)
	}
	// Modern2023 (PBES2, AES-256-CBC, PBKDF2-SHA256) is what current JDKs write by default and
	// read since 11.0.12, so the Java integration point can open our keystores too.
	pfx, err := pkcs12.Modern2023.Encode(key, cert, []*x509.Certificate{p.CACert}, KeystorePassword)
	if err != nil {
		return nil, fmt.Errorf("encoding pkcs#12: %w", err)
	}
	if err := writeAtomic(path, pfx, 0o600); err != nil {
		return nil, err
	}
	return &Identity{
		OrgNumber:        org,
		Cert:             cert,
		Key:              key,
		CertPEM:          pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeystorePath:     path,
		KeystorePassword: KeystorePassword,
	}, nil
}

func validOrgNumber(s string) bool {
	if len(s) != 9 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func randomSerial() *big.Int {
	// 127 bits: positive, unique in practice, well under the 20-octet limit of RFC 5280.
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n.Add(n, big.NewInt(1))
}

func keyID(pub crypto.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha1.Sum(der)
	return sum[:]
}

// writeAtomic writes through a temporary file in the same directory and renames it over
// path, so readers see the old file or the new one, never half of one.
func writeAtomic(path string, data []byte, perm fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// publishExclusive writes data to path only if path does not exist yet; it returns an error
// wrapping fs.ErrExist when another writer got there first.
func publishExclusive(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("publishing %s: %w", path, err)
	}
	return nil
}

// writeIfChanged leaves an identical file alone so that Ensure does not touch mtimes (and
// wake file watchers) on every start.
func writeIfChanged(path string, data []byte, perm fs.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return writeAtomic(path, data, perm)
}

// Package keystore loads the agency's business certificate and private key from a PKCS#12 or
// JKS file configured as the Java integration point configures it
// (difi.move.org.keystore.{path,alias,password,type} and our key-password, operations.md
// §1.5), and checks certificates for the health endpoint (operations.md §1.6).
//
// The file type is sniffed from its content; a declared type that disagrees is reported, not
// fatal, because the reference's documentation and code disagree on the default. Keystore
// files are read whole under a 1 MiB cap and pre-checked so that a corrupt or hostile file
// cannot make the underlying decoders allocate gigabytes or spin on key derivation.
//
// keystore imports nothing from the rest of the project.
package keystore

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	jks "github.com/pavlo-v-chernykh/keystore-go/v4"
	"software.sslmate.com/src/go-pkcs12"
)

// Type is a keystore file format, spelled as difi.move.org.keystore.type spells it.
type Type string

const (
	PKCS12 Type = "PKCS12"
	JKS    Type = "JKS"
)

// MaxSize caps a keystore file. A PKCS#12 with a key and a chain of three certificates is
// about 6 KiB.
const MaxSize = 1 << 20

// maxIterations caps the key-derivation iteration counts a PKCS#12 may ask for. Java writes
// 10 000, OpenSSL and go-pkcs12 2 048, Windows 2 000; the cap leaves a tenfold margin and
// keeps a damaged or planted file from stalling start-up.
const maxIterations = 100_000

// iterationCap is maxIterations except under fuzzing, where each accepted count runs for
// real and a lower cap keeps executions fast.
var iterationCap = maxIterations

var (
	// ErrNotFound is returned when the keystore file does not exist.
	ErrNotFound = errors.New("keystore: file not found")
	// ErrUnknownFormat is returned for a file that is neither PKCS#12 nor JKS (JCEKS and
	// Windows stores included).
	ErrUnknownFormat = errors.New("keystore: not a PKCS#12 or JKS file")
	// ErrWrongPassword is returned when the store or key password does not open the file.
	ErrWrongPassword = errors.New("keystore: wrong password")
	// ErrAliasNotFound is returned when the alias names no private key entry; the error
	// text lists the aliases that do.
	ErrAliasNotFound = errors.New("keystore: alias not found")
	// ErrMalformed is returned for a file that is damaged or outside our bounds.
	ErrMalformed = errors.New("keystore: malformed file")
	// ErrUnsupportedKey is returned for a key that is not RSA (business certificates are
	// RSA) or that does not match its certificate.
	ErrUnsupportedKey = errors.New("keystore: unsupported key")
)

// Config is the keystore part of the configuration.
type Config struct {
	// Path is difi.move.org.keystore.path; a "file:" prefix (Spring resource syntax in
	// migrated properties files) is accepted.
	Path string
	// Alias is difi.move.org.keystore.alias. PKCS#12 aliases are case sensitive; JKS
	// aliases are case insensitive, as in Java.
	Alias string
	// Password is difi.move.org.keystore.password.
	Password string
	// KeyPassword is difi.move.org.keystore.key-password; empty means Password, which is
	// what the reference requires.
	KeyPassword string
	// Type is difi.move.org.keystore.type; empty means PKCS12, the reference's code default.
	Type Type
}

// Keystore is the loaded identity.
type Keystore struct {
	Cert  *x509.Certificate
	Key   *rsa.PrivateKey
	Chain []*x509.Certificate // certificates above Cert, as stored
	// Type is the format found in the file.
	Type Type
	// Warnings are problems that do not stop loading: a declared type that differs from
	// the file.
	Warnings []string
	// Notes are facts config check shows but the daemon does not warn about at every
	// start: an alias a PKCS#12 without friendly names cannot confirm (the sandbox's own
	// keystores are such files, and the key is still the only one in them).
	Notes []string
}

// Signer returns the key as a crypto.Signer.
func (k *Keystore) Signer() crypto.Signer { return k.Key }

// Load reads and opens the keystore cfg names.
func Load(cfg Config) (*Keystore, error) {
	path := strings.TrimPrefix(cfg.Path, "file:")
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, path)
	}
	if err != nil {
		return nil, fmt.Errorf("opening keystore: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading keystore: %w", err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: %s is over %d octets", ErrMalformed, path, MaxSize)
	}
	ks, err := Parse(data, cfg)
	if err != nil {
		return nil, fmt.Errorf("loading keystore %s: %w", path, err)
	}
	return ks, nil
}

// Sniff reports the format of a keystore file from its first octets.
func Sniff(data []byte) (Type, error) {
	switch {
	case len(data) >= 4 && binary.BigEndian.Uint32(data) == 0xfeedfeed:
		return JKS, nil
	case len(data) >= 4 && binary.BigEndian.Uint32(data) == 0xcececece:
		return "", fmt.Errorf("%w: JCEKS is not supported, convert with keytool -importkeystore -deststoretype PKCS12", ErrUnknownFormat)
	case len(data) >= 2 && data[0] == 0x30:
		return PKCS12, nil
	}
	return "", ErrUnknownFormat
}

// Parse opens a keystore held in memory (at most MaxSize octets).
func Parse(data []byte, cfg Config) (*Keystore, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: over %d octets", ErrMalformed, MaxSize)
	}
	t, err := Sniff(data)
	if err != nil {
		return nil, err
	}
	declared := cfg.Type
	if declared == "" {
		declared = PKCS12
	}
	var ks *Keystore
	switch t {
	case JKS:
		ks, err = parseJKS(data, cfg)
	default:
		ks, err = parsePKCS12(data, cfg)
	}
	if err != nil {
		return nil, err
	}
	ks.Type = t
	if !strings.EqualFold(string(declared), string(t)) {
		ks.Warnings = append(ks.Warnings, fmt.Sprintf("difi.move.org.keystore.type is %s but the file is %s", declared, t))
	}
	if !ks.Key.PublicKey.Equal(ks.Cert.PublicKey) {
		return nil, fmt.Errorf("%w: private key does not match the certificate", ErrUnsupportedKey)
	}
	return ks, nil
}

func keyPassword(cfg Config) string {
	if cfg.KeyPassword != "" {
		return cfg.KeyPassword
	}
	return cfg.Password
}

func parsePKCS12(data []byte, cfg Config) (*Keystore, error) {
	if err := checkPKCS12Bounds(data); err != nil {
		return nil, err
	}
	blocks, err := pkcs12.ToPEM(data, cfg.Password)
	if err != nil {
		// ToPEM handles exactly two safe contents, the common layout; DecodeChain handles
		// the rest (one key, any number of certificates) without friendly names.
		return parsePKCS12Chain(data, cfg, err)
	}
	type keyEntry struct {
		key        any
		name, kid  string
		certMarker string
	}
	var keys []keyEntry
	var certs []*x509.Certificate
	certKID := map[*x509.Certificate]string{}
	for _, b := range blocks {
		switch b.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(b.Bytes)
			var key any = k
			if err != nil {
				if key, err = x509.ParsePKCS8PrivateKey(b.Bytes); err != nil {
					return nil, fmt.Errorf("%w: private key: %v", ErrMalformed, err)
				}
			}
			keys = append(keys, keyEntry{key: key, name: b.Headers["friendlyName"], kid: b.Headers["localKeyId"]})
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: certificate: %v", ErrMalformed, err)
			}
			certs = append(certs, c)
			certKID[c] = b.Headers["localKeyId"]
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no private key entry in the file", ErrAliasNotFound)
	}
	ks := &Keystore{}
	chosen := -1
	var names []string
	for i, k := range keys {
		if k.name != "" {
			names = append(names, k.name)
		}
		if k.name == cfg.Alias {
			chosen = i
		}
	}
	if chosen < 0 {
		if len(keys) == 1 && keys[0].name == "" {
			chosen = 0
			ks.Notes = append(ks.Notes, unnamedNote(cfg.Alias))
		} else {
			return nil, fmt.Errorf("%w: %s (the file has %s)", ErrAliasNotFound, quote(cfg.Alias), listAliases(names))
		}
	}
	k := keys[chosen]
	rk, ok := k.key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedKey, k.key)
	}
	ks.Key = rk
	for _, c := range certs {
		if rk.PublicKey.Equal(c.PublicKey) && (k.kid == "" || certKID[c] == "" || certKID[c] == k.kid) {
			ks.Cert = c
			break
		}
	}
	if ks.Cert == nil {
		return nil, fmt.Errorf("%w: no certificate for the private key", ErrUnsupportedKey)
	}
	ks.Chain = chainFor(ks.Cert, certs)
	return ks, nil
}

func parsePKCS12Chain(data []byte, cfg Config, toPEMErr error) (*Keystore, error) {
	key, cert, cas, err := pkcs12.DecodeChain(data, cfg.Password)
	if err != nil {
		if errors.Is(err, pkcs12.ErrIncorrectPassword) || errors.Is(toPEMErr, pkcs12.ErrIncorrectPassword) {
			return nil, ErrWrongPassword
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedKey, key)
	}
	return &Keystore{Key: rk, Cert: cert, Chain: chainFor(cert, cas),
		Notes: []string{unnamedNote(cfg.Alias)}}, nil
}

func unnamedNote(alias string) string {
	return "the PKCS#12 file names no aliases; alias " + quote(alias) + " taken as its only key (the Java integration point would not find it)"
}

// chainFor orders the issuers of leaf found among certs, leaf excluded.
func chainFor(leaf *x509.Certificate, certs []*x509.Certificate) []*x509.Certificate {
	var chain []*x509.Certificate
	cur := leaf
	for range len(certs) {
		var next *x509.Certificate
		for _, c := range certs {
			if c != cur && !c.Equal(leaf) && bytes.Equal(c.RawSubject, cur.RawIssuer) && !slices.Contains(chain, c) {
				next = c
				break
			}
		}
		if next == nil {
			break
		}
		chain = append(chain, next)
		cur = next
	}
	return chain
}

func parseJKS(data []byte, cfg Config) (*Keystore, error) {
	if err := checkJKSBounds(data); err != nil {
		return nil, err
	}
	store := jks.New()
	if err := store.Load(bytes.NewReader(data), []byte(cfg.Password)); err != nil {
		if strings.Contains(err.Error(), "digest") {
			return nil, ErrWrongPassword // the library reports a password mismatch as a digest error
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	alias := strings.ToLower(cfg.Alias)
	if !store.IsPrivateKeyEntry(alias) {
		var names []string
		for _, a := range store.Aliases() {
			if store.IsPrivateKeyEntry(a) {
				names = append(names, a)
			}
		}
		return nil, fmt.Errorf("%w: %s (the file has %s)", ErrAliasNotFound, quote(cfg.Alias), listAliases(names))
	}
	entry, err := store.GetPrivateKeyEntry(alias, []byte(keyPassword(cfg)))
	if err != nil {
		return nil, fmt.Errorf("%w: key entry %s: %v", ErrWrongPassword, quote(cfg.Alias), err)
	}
	k, err := x509.ParsePKCS8PrivateKey(entry.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("%w: private key: %v", ErrMalformed, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedKey, k)
	}
	if len(entry.CertificateChain) == 0 {
		return nil, fmt.Errorf("%w: key entry has no certificate", ErrMalformed)
	}
	var chain []*x509.Certificate
	for _, c := range entry.CertificateChain {
		cert, err := x509.ParseCertificate(c.Content)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate: %v", ErrMalformed, err)
		}
		chain = append(chain, cert)
	}
	return &Keystore{Key: rk, Cert: chain[0], Chain: chain[1:]}, nil
}

func quote(s string) string { return `"` + s + `"` }

func listAliases(names []string) string {
	if len(names) == 0 {
		return "no named key entries"
	}
	return "key entries " + strings.Join(names, ", ")
}

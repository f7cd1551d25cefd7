package manifest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"aead.dev/minisign"
)

// MaxSkew is how far in the future issued_at may lie before a manifest is
// refused: enough for a daemon whose clock is a little behind (the daemon warns
// above 5 s, operations.md §1.6), not enough to pre-sign next month's manifest.
const MaxSkew = time.Hour

// ParsePublicKey reads a minisign public key: either the two-line .pub file
// ("untrusted comment: ..." then the key) or the bare base64 key line.
func ParsePublicKey(s string) (minisign.PublicKey, error) {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[i+1:])
	}
	var k minisign.PublicKey
	if err := k.UnmarshalText([]byte(s)); err != nil {
		return minisign.PublicKey{}, fmt.Errorf("parsing minisign public key: %w", err)
	}
	return k, nil
}

// KeyFor returns the key among keys whose ID the signature names. The key id in
// a signature is only a hint; verification still checks the Ed25519 signature.
func KeyFor(keys []minisign.PublicKey, sig []byte) (minisign.PublicKey, error) {
	var s minisign.Signature
	if err := s.UnmarshalText(sig); err != nil {
		return minisign.PublicKey{}, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	for _, k := range keys {
		if k.ID() == s.KeyID {
			return k, nil
		}
	}
	return minisign.PublicKey{}, fmt.Errorf("%w: signed by key %X, which is not trusted", ErrSignature, s.KeyID)
}

// VerifyBytes checks sig over data against the trusted keys.
func VerifyBytes(keys []minisign.PublicKey, data, sig []byte) error {
	if len(keys) == 0 {
		return ErrNoTrustedKeys
	}
	k, err := KeyFor(keys, sig)
	if err != nil {
		return err
	}
	if !minisign.Verify(k, data, sig) {
		return fmt.Errorf("%w: key %X does not verify these bytes", ErrSignature, k.ID())
	}
	return nil
}

// VerifyReader checks a prehashed (HashEdDSA) signature over everything r
// yields, reading it once, so an artifact of any size is checked in constant
// memory.
func VerifyReader(keys []minisign.PublicKey, r io.Reader, sig []byte) error {
	if len(keys) == 0 {
		return ErrNoTrustedKeys
	}
	k, err := KeyFor(keys, sig)
	if err != nil {
		return err
	}
	mr := minisign.NewReader(r)
	if _, err := io.Copy(io.Discard, mr); err != nil {
		return fmt.Errorf("reading signed data: %w", err)
	}
	if !mr.Verify(k, sig) {
		return fmt.Errorf("%w: key %X does not verify these bytes", ErrSignature, k.ID())
	}
	return nil
}

// VerifyFile is VerifyReader over a file.
func VerifyFile(keys []minisign.PublicKey, name string, sig []byte) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("opening signed file: %w", err)
	}
	defer f.Close()
	return VerifyReader(keys, bufio.NewReaderSize(f, 1<<16), sig)
}

// Freshness is what a verified manifest is checked against besides its
// signature.
type Freshness struct {
	Now       time.Time // must not be zero
	MinSerial uint64    // highest serial seen before; equal is accepted (the same manifest again)
}

// Verify checks the signature, decodes and validates, then checks expiry and
// serial. It is the only way the updater turns bytes into a *Manifest.
func Verify(keys []minisign.PublicKey, data, sig []byte, f Freshness) (*Manifest, error) {
	if len(data) > MaxSize || len(sig) > MaxSize {
		return nil, ErrTooLarge
	}
	if err := VerifyBytes(keys, data, sig); err != nil {
		return nil, err
	}
	m, err := Parse(data)
	if err != nil {
		return nil, err
	}
	if err := m.CheckFresh(f); err != nil {
		return nil, err
	}
	return m, nil
}

// CheckFresh refuses an expired manifest, one issued too far in the future,
// and a replayed older one.
func (m *Manifest) CheckFresh(f Freshness) error {
	if !f.Now.Before(m.ExpiresAt) {
		return fmt.Errorf("%w: expired at %s", ErrExpired, m.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if m.IssuedAt.Sub(f.Now) > MaxSkew {
		return fmt.Errorf("%w: issued at %s, this machine says %s (more than %s behind)", ErrNotYetValid,
			m.IssuedAt.UTC().Format(time.RFC3339), f.Now.UTC().Format(time.RFC3339), MaxSkew)
	}
	if m.Serial < f.MinSerial {
		return fmt.Errorf("%w: serial %d, already seen %d", ErrSerialReplay, m.Serial, f.MinSerial)
	}
	return nil
}

// Sign signs data with a prehashed minisign signature, as `minisign -S` does
// by default. trustedComment is covered by the signature.
func Sign(key minisign.PrivateKey, data []byte, trustedComment string) []byte {
	return SignReader(key, bytes.NewReader(data), trustedComment)
}

// SignReader signs everything r yields.
func SignReader(key minisign.PrivateKey, r io.Reader, trustedComment string) []byte {
	mr := minisign.NewReader(r)
	_, _ = io.Copy(io.Discard, mr) // a bytes.Reader or file read error ends the copy; the caller checks sizes
	return mr.SignWithComments(key, trustedComment, fmt.Sprintf("signature from efm-release key %X", key.ID()))
}

// ErrUnreadable is returned by SignFile when the file cannot be read in full.
var ErrUnreadable = errors.New("file to sign unreadable")

// SignFile signs a file's content.
func SignFile(key minisign.PrivateKey, name, trustedComment string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreadable, err)
	}
	defer f.Close()
	mr := minisign.NewReader(bufio.NewReaderSize(f, 1<<16))
	if _, err := io.Copy(io.Discard, mr); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreadable, err)
	}
	return mr.SignWithComments(key, trustedComment, fmt.Sprintf("signature from efm-release key %X", key.ID())), nil
}

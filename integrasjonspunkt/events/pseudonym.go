package events

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/efm-go/efm/addressing/ident"
)

// KeySize is the pseudonym key length: 32 random bytes (operations.md §5.3).
const KeySize = 32

// pseudonymLen is 128 bits in unpadded base64url.
const pseudonymLen = 22

// ErrNotPersonNumber means the input is not 11 digits after normalising. The
// error never carries the input.
var ErrNotPersonNumber = errors.New("not an 11-digit national identity number")

// ErrBadKey means the key file exists but does not hold exactly 32 bytes.
var ErrBadKey = errors.New("pseudonym key file must hold exactly 32 bytes")

// PseudonymKey is the agency's local HMAC key. It never leaves the agency and
// never prints: central cannot reverse or link pseudonyms across agencies.
type PseudonymKey struct {
	k [KeySize]byte
}

// String keeps the key out of any log line that formats the value.
func (*PseudonymKey) String() string { return "PseudonymKey(***)" }

// NewPseudonymKey wraps 32 bytes (for tests and restores); k is copied.
func NewPseudonymKey(k []byte) (*PseudonymKey, error) {
	if len(k) != KeySize {
		return nil, ErrBadKey
	}
	var pk PseudonymKey
	copy(pk.k[:], k)
	return &pk, nil
}

// LoadOrCreateKey reads the key at path, creating it with 32 random bytes,
// mode 0600 in a 0700 directory, when it does not exist. `install` calls it so
// the key exists before the first start; the daemon and the pseudonym
// subcommand call it again and get the same key. Creation is exclusive, so
// two processes racing on first use end up with one key.
func LoadOrCreateKey(path string) (*PseudonymKey, error) {
	k, err := loadKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating pseudonym key dir: %w", err)
	}
	var raw [KeySize]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fmt.Errorf("generating pseudonym key: %w", err)
	}
	// Write to a temporary name and link it into place: a crash mid-write
	// leaves no short key, and Link fails if another process won the race.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".pseudonym-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("creating pseudonym key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("creating pseudonym key: %w", err)
	}
	if _, err := tmp.Write(raw[:]); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("writing pseudonym key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("writing pseudonym key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("writing pseudonym key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("installing pseudonym key: %w", err)
	}
	return loadKey(path)
}

func loadKey(path string) (*PseudonymKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening pseudonym key: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, KeySize+1))
	if err != nil {
		return nil, fmt.Errorf("reading pseudonym key: %w", err)
	}
	return NewPseudonymKey(raw)
}

// Pseudonym returns base64url(HMAC-SHA-256(key, n)) truncated to 128 bits,
// where n is number with spaces, dots and hyphens removed and must then be
// 11 digits (operations.md §5.3). The checksum is not required: synthetic test
// numbers must map too.
func (k *PseudonymKey) Pseudonym(number string) (string, error) {
	n, ok := normalisePersonNumber(number)
	if !ok {
		return "", ErrNotPersonNumber
	}
	m := hmac.New(sha256.New, k.k[:])
	m.Write(n[:])
	sum := m.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:16]), nil
}

func normalisePersonNumber(s string) ([11]byte, bool) {
	var n [11]byte
	i := 0
	for j := 0; j < len(s); j++ {
		c := s[j]
		switch {
		case c >= '0' && c <= '9':
			if i == 11 {
				return n, false
			}
			n[i] = c
			i++
		case c == ' ' || c == '-' || c == '.' || c == '\t' || c == '\r' || c == '\n':
		default:
			return n, false
		}
	}
	return n, i == 11
}

// PseudonymCommand is `integrasjonspunkt pseudonym`: it reads one national
// identity number from in, prints its pseudonym and a newline to out, and
// never writes the input anywhere, errors included. Support asks about one
// citizen; the agency hands over only the pseudonym.
func PseudonymCommand(in io.Reader, out io.Writer, keyPath string) error {
	key, err := LoadOrCreateKey(keyPath)
	if err != nil {
		return err
	}
	// One line; 256 bytes is far more than a formatted number needs.
	line, err := bufio.NewReaderSize(io.LimitReader(in, 256), 256).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading number from stdin: %w", err)
	}
	n, ok := normalisePersonNumber(strings.TrimSpace(line))
	if !ok {
		return ErrNotPersonNumber
	}
	// A typo gives a pseudonym that matches nothing, and support would
	// conclude the citizen had no messages. Synthetic test numbers pass: they
	// carry valid check digits too. ident's errors never hold the digits.
	if _, err := (ident.Policy{AllowSynthetic: true}).ParsePersonID(string(n[:])); err != nil {
		return fmt.Errorf("not a national identity number: %w", err)
	}
	p, err := key.Pseudonym(string(n[:]))
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(out, p); err != nil {
		return fmt.Errorf("writing pseudonym: %w", err)
	}
	return nil
}

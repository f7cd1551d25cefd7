package sandbox_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/efm-go/efm/addressing/seed"
	"github.com/efm-go/efm/internal/sandbox"
	"github.com/efm-go/efm/packaging/testpki"
)

// sharedPKI is one test PKI for every daemon of this package: making RSA
// keys for every seeded party is most of a sandbox's start-up time.
var sharedPKI string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "efm-sandbox-test-pki")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sharedPKI = dir
	if err := ownKeystore(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// ownKeystore makes the shared test PKI: every seeded party and the
// daemon's own organisation.
func ownKeystore(dir string) error {
	sd, err := seed.Default()
	if err != nil {
		return err
	}
	_, err = testpki.Ensure(dir, append(sd.Organisations(), sandbox.OwnOrg))
	return err
}

// pkiLink makes dir/pki the shared test PKI.
func pkiLink(dir string) error { return os.Symlink(sharedPKI, filepath.Join(dir, "pki")) }

package dpi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/efm-go/efm/packaging/jws"
	"github.com/efm-go/efm/packaging/testpki"
	"github.com/efm-go/efm/transport/dpi"
)

const (
	senderOrg   = "910077473"
	supplierOrg = "984661185"
	mailbox     = "nora.testesen#1A2B"
)

var (
	pki                 *testpki.PKI
	citizen, mpSigner   *testpki.Identity
	sender, supplierKey *testpki.Identity
)

func TestMain(m *testing.M) {
	// A fixed dir, kept: testpki reuses valid files, so fuzz workers (each
	// runs TestMain) start in milliseconds instead of generating RSA keys.
	dir := filepath.Join(os.TempDir(), "efm-dpi-test-pki")
	var err error
	code := func() int {
		if pki, err = testpki.Ensure(dir, []string{senderOrg, supplierOrg}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if citizen, err = pki.Issue(supplierOrg, "citizen", "citizen"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if mpSigner, err = pki.Issue("991825827", "maskinporten", "maskinporten"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		sender, supplierKey = pki.Orgs[senderOrg], pki.Orgs[supplierOrg]
		return m.Run()
	}()
	os.Exit(code)
}

// mint is a Maskinporten access token as the simulator issues them.
func mint(consumer, scope string) string {
	b, _ := json.Marshal(map[string]any{"scope": scope, "exp": time.Now().Add(time.Minute).Unix(),
		"consumer": map[string]string{"authority": "iso6523-actorid-upis", "ID": "0192:" + consumer}})
	tok, err := jws.Sign(mpSigner.Key, b, map[string]any{"kid": "mp"})
	if err != nil {
		panic(err)
	}
	return string(tok)
}

func tokens(_ context.Context, consumer string) (string, error) {
	if consumer == "" {
		consumer = senderOrg
	}
	return mint(consumer, dpi.Scope), nil
}

func requireTool(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if testing.Short() {
			t.Skipf("%s not installed (Debian package %s)", name, debianPackage)
		}
		t.Fatalf("%s not installed: apt-get install %s", name, debianPackage)
	}
	return p
}

package asic

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/efm-go/efm/packaging/testpki"
)

var pki *testpki.PKI

const (
	orgA = "910075918"
	orgB = "910077473"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "asic-test-pki")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pki, err = testpki.Ensure(dir, []string{orgA})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
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

// Package wintest runs the Windows build of the daemon under Wine: the
// cross-compiled .exe, on Wine's filesystem with Windows paths, against the
// real sandbox; and builds, checks and installs the MSI. The tests skip when
// a tool is missing, except in CI (testtool.Need).
package wintest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/internal/testtool"
)

const (
	mingw = "x86_64-w64-mingw32-gcc"
	// testVersion is stamped into the test build, so `version` has something
	// of ours to print.
	testVersion = "9.8.7-wine"
	// exeWin is the binary for the tests that run it by hand, under Program
	// Files (its space is part of the test) but beside the place the MSI
	// installs to, which msi_test.go checks.
	exeWin = `C:\Program Files\efm test\bin\integrasjonspunkt.exe`
)

// wineBinary finds the 64-bit loader: Debian's wine64 package puts it
// outside PATH; the wine package adds the wrappers.
func wineBinary() string {
	return testtool.Find("wine64", "wine", "/usr/lib/wine/wine64")
}

// prefix is one Wine prefix shared by every test of the package: making
// one takes half a minute.
type prefix struct {
	wine, dir string
	env       []string
	exe       string // the test build, on the Linux side
}

var (
	setupOnce sync.Once
	shared    *prefix
	setupErr  error
	tmpRoot   string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		_ = shared.command(context.Background(), "wineserver", "-k").Run()
	}
	if tmpRoot != "" {
		os.RemoveAll(tmpRoot)
	}
	os.Exit(code)
}

// wine returns the shared prefix with the daemon installed in it, making it
// on first use: the test build of the .exe under Program Files and the
// bcryptprimitives shim in system32.
func wine(t *testing.T) *prefix {
	t.Helper()
	testtool.Need(t, "wine64", "wine64", "wine", "/usr/lib/wine/wine64")
	testtool.Need(t, "gcc-mingw-w64-x86-64", mingw)
	setupOnce.Do(func() { shared, setupErr = newPrefix() })
	require.NoError(t, setupErr)
	return shared
}

func newPrefix() (*prefix, error) {
	var err error
	if tmpRoot, err = os.MkdirTemp("", "wintest-"); err != nil {
		return nil, err
	}
	p := &prefix{wine: wineBinary(), dir: filepath.Join(tmpRoot, "prefix")}
	p.env = append(os.Environ(), "WINEPREFIX="+p.dir, "WINEDEBUG=-all",
		// No Mono or Gecko: nothing here needs them, and their installers
		// would ask for a download.
		"WINEDLLOVERRIDES=mscoree,mshtml=", "DISPLAY=")
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	// Build while Wine makes its prefix; both take a while.
	var wg sync.WaitGroup
	var buildErr error
	exe := filepath.Join(tmpRoot, "integrasjonspunkt.exe")
	wg.Add(1)
	go func() {
		defer wg.Done()
		buildErr = buildExe(root, exe, testVersion)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	boot := p.command(ctx, p.wine, "wineboot", "--init")
	out, bootErr := boot.CombinedOutput()
	wg.Wait()
	if buildErr != nil {
		return nil, buildErr
	}
	if bootErr != nil {
		return nil, fmt.Errorf("wineboot --init: %w: %s", bootErr, out)
	}
	// Wine 8 has no bcryptprimitives.dll, whose ProcessPrng the Go runtime
	// calls before main; the shim is test tooling (build/wine), never shipped.
	shim := filepath.Join(p.dir, "drive_c", "windows", "system32", "bcryptprimitives.dll")
	if _, err := os.Stat(shim); err != nil {
		src := filepath.Join(root, "build", "wine")
		cc := exec.Command(testtool.Find(mingw), "-shared", "-O2", "-s", "-o", shim,
			filepath.Join(src, "bcryptprimitives.c"), filepath.Join(src, "bcryptprimitives.def"), "-ladvapi32")
		if out, err := cc.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building the bcryptprimitives shim: %w: %s", err, out)
		}
	}
	if err := copyFile(exe, p.path(exeWin)); err != nil {
		return nil, err
	}
	p.exe = exe
	return p, nil
}

// buildExe cross-compiles the daemon for windows/amd64 with cgo through
// mingw, as `make dist` does.
func buildExe(root, out, version string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-o", out,
		"-ldflags", "-s -w -X github.com/efm-go/efm/internal/buildinfo.Version="+version,
		"./cmd/integrasjonspunkt")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=1", "CC="+mingw)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build for windows: %w: %s", err, out)
	}
	return nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

func (p *prefix) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if name == "wineserver" {
		name = testtool.Find("wineserver", filepath.Join(filepath.Dir(p.wine), "wineserver"))
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = p.env
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// path maps a C:\ path to the file in the prefix, for the test's own checks.
func (p *prefix) path(win string) string {
	rest := strings.TrimPrefix(strings.TrimPrefix(win, `C:\`), `c:\`)
	return filepath.Join(p.dir, "drive_c", filepath.FromSlash(strings.ReplaceAll(rest, `\`, "/")))
}

// run runs a program in the prefix to its end and returns its output and
// exit code.
func (p *prefix) run(t *testing.T, env []string, exe string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := p.command(ctx, p.wine, append([]string{exe}, args...)...)
	cmd.Env = append(cmd.Env, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v did not end within 3 minutes: %s", exe, args, out.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %s: %v", exe, err)
	}
	return out.String(), code
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(name), 0o755))
	require.NoError(t, os.WriteFile(name, []byte(content), 0o644))
}

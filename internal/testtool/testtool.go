// Package testtool finds the Debian tools that packaging tests drive (Wine,
// msitools, buildah, podman). A missing tool skips the test on a developer's
// machine and fails it in CI (CI set), where .ci/run installs them, so a
// lost install step cannot pass as a skip.
package testtool

import (
	"os"
	"os/exec"
	"testing"
)

// Need returns the first of names found on PATH (or as a path), or skips or
// fails t naming the Debian package that brings it.
func Need(t testing.TB, pkg string, names ...string) string {
	t.Helper()
	if p := Find(names...); p != "" {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is missing; .ci/run installs it in CI", pkg)
	}
	t.Skipf("%s is not installed (apt-get install %s): skipping", pkg, pkg)
	return ""
}

// Find returns the first of names found, or "".
func Find(names ...string) string {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// Package buildinfo holds what the build stamped into the binary. The release
// build sets the variables with
//
//	-ldflags "-X github.com/efm-go/efm/internal/buildinfo.Version=1.2.3 -X ...Commit=abc -X ...Time=2026-11-21T00:00:00Z"
//
// It imports nothing of the project, so every package may use it.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

var (
	// Version is the product's semantic version (without a leading v).
	Version = "0.0.0-dev"
	// Commit is the git commit the binary was built from.
	Commit = ""
	// Time is the build time, RFC 3339.
	Time = ""
)

// GoVersion reports the toolchain that built the binary.
func GoVersion() string { return runtime.Version() }

// CommitOrVCS returns Commit, or the VCS revision the go tool recorded when the
// build was not stamped (a plain `go build` in a checkout).
func CommitOrVCS() string {
	if Commit != "" {
		return Commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return ""
}

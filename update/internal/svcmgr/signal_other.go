//go:build !unix

package svcmgr

import "os"

// Windows has no SIGTERM for a console child; the tests kill it.
func terminate(p *os.Process) error { return p.Kill() }

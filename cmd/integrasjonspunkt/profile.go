package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// cpuProfile starts a CPU profile of the whole run into the file named by
// EFM_CPUPROFILE, for the end-to-end benchmarks: the daemon runs there as a
// child process, so a profile of the test binary would show the simulators
// and not the daemon. The returned function writes the profile out; without
// the variable it does nothing.
func cpuProfile() (stop func(), err error) {
	path := os.Getenv("EFM_CPUPROFILE")
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("EFM_CPUPROFILE: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("EFM_CPUPROFILE: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

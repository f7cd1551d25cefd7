package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"sync"
	"syscall"
)

// cpuProfile starts a CPU profile of the whole run into the file named by
// EFM_CPUPROFILE, for the end-to-end benchmarks: the daemon runs there as a
// child process, so a profile of the test binary would show the simulators
// and not the daemon. The returned function writes the profile out; without
// the variable it does nothing.
//
// The profile is also written when the stop signal arrives: a benchmark
// stops the daemon with SIGTERM and kills it if the drain outlasts its grace
// period (a paused channel holds sends for minutes), which would leave the
// file empty. The drain itself is then not in the profile.
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
	var once sync.Once
	stop = func() { once.Do(func() { pprof.StopCPUProfile(); f.Close() }) }
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		signal.Stop(sigs)
		stop()
	}()
	return stop, nil
}

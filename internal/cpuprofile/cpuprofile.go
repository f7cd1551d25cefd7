// Package cpuprofile writes a CPU profile of a whole process run into the
// file an environment variable names, for the end-to-end benchmarks: the
// daemon and the sandbox run there as child processes, so a profile of the
// benchmark binary would show neither.
package cpuprofile

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"sync"
	"syscall"
)

// Start starts a CPU profile into the file named by the environment variable
// env. The returned function writes the profile out; without the variable it
// does nothing.
//
// The profile is also written when the stop signal arrives: a benchmark
// stops its children with SIGTERM and kills them if the drain outlasts its
// grace period (a paused channel holds sends for minutes), which would leave
// the file empty. The drain itself is then not in the profile.
func Start(env string) (stop func(), err error) {
	path := os.Getenv(env)
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", env, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", env, err)
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

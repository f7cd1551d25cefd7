//go:build race

package apitest

// Race says whether the race detector is on. The 1 GiB tests skip under
// it: instrumented, they take minutes, and the detector's shadow memory
// would count as the daemon's; make test runs them again without it.
const Race = true

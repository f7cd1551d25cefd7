//go:build !race

package apitest

// Race says whether the race detector is on (see race.go).
const Race = false

//go:build race

package keystore

// raceEnabled: the race detector makes encoding a keystore about 15 times slower.
const raceEnabled = true

package update

import (
	"aead.dev/minisign"
	"github.com/efm-go/efm/update/manifest"
)

// The compiled-in release keys: the current one and the next one, so a key
// rollover needs no flag day (operations.md §4.3).
//
// PLACEHOLDERS. These two keys were generated for development and their
// private halves were thrown away, so nothing verifies against them until the
// release pipeline replaces them, either here or at link time:
//
//	-ldflags "-X github.com/efm-go/efm/update.currentKey=RW... -X github.com/efm-go/efm/update.nextKey=RW..."
//
// Tests never use them; they inject their own keys through Config.PublicKeys.
var (
	currentKey = "RWTDXIz3nYk0QRlxvLKhi9fI7iRR5A6E06N6ht7oyI0o5Iy9iFUUyRZ+" // placeholder, key id 4134899DF78C5CC3
	nextKey    = "RWSJhqJPjE8A7raULV6rWRm8jxvq1XBmHMkbduGY68AYp1nMhXMvUAzP" // placeholder, key id EE004F8C4FA28689
)

// BuiltinKeys returns the compiled-in current and next keys. A key that does
// not parse (a bad -X value) is left out rather than trusted by accident.
func BuiltinKeys() []minisign.PublicKey {
	var keys []minisign.PublicKey
	for _, s := range []string{currentKey, nextKey} {
		if k, err := manifest.ParsePublicKey(s); err == nil {
			keys = append(keys, k)
		}
	}
	return keys
}

package keystore

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"software.sslmate.com/src/go-pkcs12"
)

// TestPKCS12Bounds_ManyGeneratedKeystores: every keystore go-pkcs12 writes
// passes the bounds walk. Salts, encrypted blobs and MAC digests are random
// and one file in a hundred held bytes that parse as a DER element; the walk
// descended into them and refused valid keystores (issue 14, point 12). One
// iteration keeps the encoding cheap; the counts do not change the layout.
func TestPKCS12Bounds_ManyGeneratedKeystores(t *testing.T) {
	id := pki.Orgs[orgA]
	n := 1500 // per encoder; before the fix about 1 in 100 was refused
	if testing.Short() || raceEnabled {
		n = 250
	}
	encoders := map[string]*pkcs12.Encoder{"LegacyDES": pkcs12.LegacyDES, "LegacyRC2": pkcs12.LegacyRC2,
		"Modern2023": pkcs12.Modern2023, "Modern2026": pkcs12.Modern2026}
	for name, enc := range encoders {
		t.Run(name, func(t *testing.T) {
			enc := enc.WithIterations(1)
			refused := 0
			var first error
			for i := range n {
				data, err := enc.Encode(id.Key, id.Cert, nil, fmt.Sprint("pw", i))
				require.NoError(t, err)
				if err := checkPKCS12Bounds(data); err != nil {
					refused++
					if first == nil {
						first = fmt.Errorf("keystore %d: %w", i, err)
					}
				}
			}
			require.Zero(t, refused, "valid keystores refused of %d; first: %v", n, first)
		})
	}
}

// FuzzPKCS12Bounds: the walk never panics and refuses only with ErrMalformed.
// That it catches too many iterations is TestParse_RefusesHostileFiles'.
func FuzzPKCS12Bounds(f *testing.F) {
	id := pki.Orgs[orgA]
	for _, enc := range []*pkcs12.Encoder{pkcs12.LegacyDES, pkcs12.Modern2023, pkcs12.Modern2026} {
		data, err := enc.WithIterations(1).Encode(id.Key, id.Cert, nil, "x")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := checkPKCS12Bounds(data)
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("not ErrMalformed: %v", err)
		}
	})
}

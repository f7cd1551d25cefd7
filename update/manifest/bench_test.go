package manifest

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"

	"aead.dev/minisign"
)

// BenchmarkVerify is one manifest check: signature, parse, freshness.
func BenchmarkVerify(b *testing.B) {
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	data, err := sample().Marshal()
	if err != nil {
		b.Fatal(err)
	}
	sig := Sign(priv, data, "")
	keys := []minisign.PublicKey{pub}
	now := t0.Add(time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(keys, data, sig, Freshness{Now: now}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyArtifact checks a 32 MB artifact (about the daemon's size)
// streamed through the prehashed signature check.
func BenchmarkVerifyArtifact(b *testing.B) {
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	art := make([]byte, 32<<20)
	_, _ = rand.Read(art)
	sig := Sign(priv, art, "")
	keys := []minisign.PublicKey{pub}
	b.SetBytes(int64(len(art)))
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyReader(keys, bytes.NewReader(art), sig); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzParsePublicKey: an accepted key prints back to a text that parses to
// the same key.
func FuzzParsePublicKey(f *testing.F) {
	f.Add("RWTDXIz3nYk0QRlxvLKhi9fI7iRR5A6E06N6ht7oyI0o5Iy9iFUUyRZ+")
	f.Add("untrusted comment: minisign public key: 4134899DF78C5CC3\nRWTDXIz3nYk0QRlxvLKhi9fI7iRR5A6E06N6ht7oyI0o5Iy9iFUUyRZ+\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParsePublicKey(s)
		if err != nil {
			return
		}
		k2, err := ParsePublicKey(k.String())
		if err != nil || !k2.Equal(k) {
			t.Fatalf("key %q does not round-trip: %v", s, err)
		}
	})
}

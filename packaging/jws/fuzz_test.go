package jws

import (
	"bytes"
	"testing"
)

// FuzzVerify: arbitrary input never panics and never verifies; a genuine token with any one
// byte changed never verifies either.
func FuzzVerify(f *testing.F) {
	a, _ := testKeys(f)
	tok, err := Sign(a, []byte(`{"serviceRecords":[]}`), map[string]any{"kid": "k"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("a.b.c"), uint16(0), byte(0))
	f.Add([]byte("eyJhbGciOiJSUzI1NiJ9.e30."), uint16(3), byte('x'))
	f.Add([]byte{}, uint16(10), byte('A'))
	f.Fuzz(func(t *testing.T, junk []byte, pos uint16, b byte) {
		if _, _, err := Verify(junk, &a.PublicKey); err == nil && !bytes.Equal(bytes.TrimSpace(junk), tok) {
			t.Fatalf("junk verified: %q", junk)
		}
		_, _ = Header(junk)
		mutated := bytes.Clone(tok)
		i := int(pos) % len(mutated)
		if mutated[i] == b {
			return
		}
		mutated[i] = b
		if _, _, err := Verify(mutated, &a.PublicKey); err == nil {
			t.Fatalf("token with byte %d changed to %q still verifies", i, b)
		}
	})
}

// FuzzParseJWKSet: never panics; whatever parses re-encodes to the same keys.
func FuzzParseJWKSet(f *testing.F) {
	a, _ := testKeys(f)
	set, _ := MarshalJWKSet(JWK{KeyID: "a", Key: &a.PublicKey})
	f.Add(set)
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := ParseJWKSet(b)
		if err != nil {
			return
		}
		again, err := MarshalJWKSet(keys...)
		if err != nil {
			t.Fatal(err)
		}
		keys2, err := ParseJWKSet(again)
		if err != nil || len(keys2) != len(keys) {
			t.Fatalf("round trip: %v", err)
		}
		for i := range keys {
			if !keys[i].Key.Equal(keys2[i].Key) || keys[i].KeyID != keys2[i].KeyID {
				t.Fatal("round trip changed a key")
			}
		}
	})
}

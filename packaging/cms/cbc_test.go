package cms

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"testing"
)

// TestCBCMatchesCryptoCipher: newCBC's output is crypto/cipher's, byte for byte, for
// every length around the eight-block stride, in place and not, across several calls
// (the chaining value carries over), in both directions.
func TestCBCMatchesCryptoCipher(t *testing.T) {
	for _, keyLen := range []int{16, 24, 32} {
		key := make([]byte, keyLen)
		iv := make([]byte, aes.BlockSize)
		rand.Read(key)
		rand.Read(iv)
		block, err := aes.NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		for blocks := range 40 {
			src := make([]byte, blocks*aes.BlockSize)
			rand.Read(src)
			for _, split := range []int{0, 1, 8, 9} {
				split = min(split, blocks) * aes.BlockSize
				for _, inPlace := range []bool{false, true} {
					for _, decrypt := range []bool{false, true} {
						var want []byte = make([]byte, len(src))
						var ref cipher.BlockMode
						if decrypt {
							ref = cipher.NewCBCDecrypter(block, iv)
						} else {
							ref = cipher.NewCBCEncrypter(block, iv)
						}
						ref.CryptBlocks(want, src)
						got := make([]byte, len(src))
						in := src
						if inPlace {
							copy(got, src)
							in = got
						}
						m := newCBC(key, block, iv, decrypt)
						m.CryptBlocks(got[:split], in[:split])
						m.CryptBlocks(got[split:], in[split:])
						if !bytes.Equal(got, want) {
							t.Fatalf("key %d, %d blocks split at %d, in place %v, decrypt %v: differs from crypto/cipher",
								keyLen, blocks, split, inPlace, decrypt)
						}
					}
				}
			}
		}
	}
}

// BenchmarkCBC is the cipher alone, next to crypto/cipher's CBC on the same buffer.
func BenchmarkCBC(b *testing.B) {
	key := make([]byte, 32)
	iv := make([]byte, aes.BlockSize)
	block, _ := aes.NewCipher(key)
	buf := make([]byte, chunkSize)
	for _, c := range []struct {
		name string
		mode func() cipher.BlockMode
	}{
		{"encrypt", func() cipher.BlockMode { return newCBC(key, block, iv, false) }},
		{"encrypt/crypto-cipher", func() cipher.BlockMode { return cipher.NewCBCEncrypter(block, iv) }},
		{"decrypt", func() cipher.BlockMode { return newCBC(key, block, iv, true) }},
		{"decrypt/crypto-cipher", func() cipher.BlockMode { return cipher.NewCBCDecrypter(block, iv) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			m := c.mode()
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				m.CryptBlocks(buf, buf)
			}
		})
	}
}

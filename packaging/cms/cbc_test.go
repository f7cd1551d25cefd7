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

// FuzzCBC: for any key, IV, data and split point, the assembly CBC gives crypto/cipher's
// bytes in both directions. Hand-written cipher code gets this check, not only the fixed
// lengths of TestCBCMatchesCryptoCipher.
func FuzzCBC(f *testing.F) {
	f.Add(make([]byte, 32), make([]byte, 16), make([]byte, 16*9), uint16(1))
	f.Add(bytes.Repeat([]byte{0xa5}, 32), bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{7}, 16*17), uint16(8))
	f.Fuzz(func(t *testing.T, key, iv, data []byte, split uint16) {
		if len(key) != 32 || len(iv) != aes.BlockSize {
			return
		}
		data = data[:len(data)/aes.BlockSize*aes.BlockSize]
		at := min(int(split), len(data)/aes.BlockSize) * aes.BlockSize
		block, err := aes.NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		for _, decrypt := range []bool{false, true} {
			want := make([]byte, len(data))
			if decrypt {
				cipher.NewCBCDecrypter(block, iv).CryptBlocks(want, data)
			} else {
				cipher.NewCBCEncrypter(block, iv).CryptBlocks(want, data)
			}
			got := make([]byte, len(data))
			m := newCBC(key, block, iv, decrypt)
			m.CryptBlocks(got[:at], data[:at])
			m.CryptBlocks(got[at:], data[at:])
			if !bytes.Equal(got, want) {
				t.Fatalf("decrypt %v, %d bytes split at %d: differs from crypto/cipher", decrypt, len(data), at)
			}
		}
	})
}

//go:build !purego

package cms

import (
	"crypto/aes"
	"crypto/cipher"

	"golang.org/x/sys/cpu"
)

//go:noescape
func expandKey256(key *byte, enc, dec *[60]uint32)

//go:noescape
func cbcEncrypt256(xk *[60]uint32, iv *[16]byte, dst, src *byte, n int)

//go:noescape
func cbcDecrypt256(xk *[60]uint32, iv *[16]byte, dst, src *byte, n int)

// cbcAsm is CBC with AES-256 in assembly. xk holds the round keys of its direction only.
type cbcAsm struct {
	xk      [60]uint32
	iv      [16]byte
	decrypt bool
}

func newCBCAsm(key, iv []byte, decrypt bool) cipher.BlockMode {
	if !cpu.X86.HasAES || len(key) != 32 || len(iv) != aes.BlockSize {
		return nil
	}
	m := &cbcAsm{decrypt: decrypt}
	var enc, dec [60]uint32
	expandKey256(&key[0], &enc, &dec)
	if decrypt {
		m.xk = dec
	} else {
		m.xk = enc
	}
	clear(enc[:])
	clear(dec[:])
	copy(m.iv[:], iv)
	return m
}

func (m *cbcAsm) BlockSize() int { return aes.BlockSize }

// CryptBlocks has crypto/cipher's contract: whole blocks, dst at least as long as src,
// and dst and src either the same or not overlapping.
func (m *cbcAsm) CryptBlocks(dst, src []byte) {
	if len(src)%aes.BlockSize != 0 {
		panic("cms: input not full blocks")
	}
	if len(dst) < len(src) {
		panic("cms: output smaller than input")
	}
	if len(src) == 0 {
		return
	}
	if m.decrypt {
		cbcDecrypt256(&m.xk, &m.iv, &dst[0], &src[0], len(src))
	} else {
		cbcEncrypt256(&m.xk, &m.iv, &dst[0], &src[0], len(src))
	}
}

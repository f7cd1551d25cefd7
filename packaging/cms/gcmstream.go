package cms

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
)

// Streaming AES-GCM. crypto/cipher's GCM seals a whole message in one call, which would put
// a gigabyte payload in memory. GCM is CTR encryption plus a GHASH over the ciphertext, so
// the CTR part streams with cipher.NewCTR. GHASH is linear in its input blocks, so the hash
// of a long ciphertext is assembled from the hashes of its chunks, Y = Y_prev·H^k ⊕ G_chunk.
// The chunk hashes come from crypto/cipher itself, to keep its constant-time,
// hardware-accelerated GHASH: sealing an empty message with the chunk as additional data
// yields E(K,J0') ⊕ GHASH(chunk ‖ len-block), from which G_chunk follows with one
// multiplication by H⁻¹. Only a handful of GF(2¹²⁸) products per chunk are computed here.
// gcm_test.go checks the result against crypto/cipher byte for byte.

// gf is an element of GF(2^128) in GCM's bit order: bit 0 is the most significant bit of hi.
type gf struct{ hi, lo uint64 }

func gfFromBytes(b []byte) gf {
	return gf{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:16])}
}

func (x gf) bytes() [16]byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], x.hi)
	binary.BigEndian.PutUint64(b[8:], x.lo)
	return b
}

func (x gf) xor(y gf) gf { return gf{x.hi ^ y.hi, x.lo ^ y.lo} }

// mul is the product of NIST SP 800-38D §6.3 (Algorithm 1). It branches on x's bits, which
// here are H, its powers and its inverse; these are per-key secrets, but the computation
// runs a fixed number of times per chunk, not per byte of secret-dependent data, and the
// bulk hashing stays in crypto/cipher's constant-time code.
func (x gf) mul(y gf) gf {
	var z gf
	v := y
	for i := range 128 {
		var bit uint64
		if i < 64 {
			bit = (x.hi >> (63 - i)) & 1
		} else {
			bit = (x.lo >> (127 - i)) & 1
		}
		mask := -bit
		z.hi ^= v.hi & mask
		z.lo ^= v.lo & mask
		lsb := v.lo & 1
		v.lo = v.lo>>1 | v.hi<<63
		v.hi >>= 1
		v.hi ^= 0xe100000000000000 & -lsb
	}
	return z
}

var gfOne = gf{hi: 1 << 63}

func (x gf) pow(n uint64) gf {
	r := gfOne
	for n > 0 {
		if n&1 == 1 {
			r = r.mul(x)
		}
		x = x.mul(x)
		n >>= 1
	}
	return r
}

// inv is x^(2^128-2) = ∏_{i=1..127} x^(2^i).
func (x gf) inv() gf {
	r := gfOne
	t := x
	for range 127 {
		t = t.mul(t)
		r = r.mul(t)
	}
	return r
}

// gcmStream encrypts or decrypts one GCM message in pieces. Every piece but the last must be
// a multiple of 16 octets.
type gcmStream struct {
	ctr     cipher.Stream
	aead    cipher.AEAD // same key, used only to hash chunks
	h, hInv gf
	hPowK   map[int]gf // H^k for the chunk sizes seen (usually one)
	ek0     [16]byte   // E(K, J0) of the real nonce
	ekProbe [16]byte   // E(K, J0') of probeNonce
	y       gf         // GHASH state over the ciphertext so far
	n       uint64     // ciphertext octets so far
	final   bool
}

var probeNonce = make([]byte, 12)

var errNonceSize = errors.New("cms: only 12-octet GCM nonces are supported")

func newGCMStream(block cipher.Block, nonce []byte) (*gcmStream, error) {
	if len(nonce) != 12 {
		return nil, errNonceSize
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	var zero, hb [16]byte
	block.Encrypt(hb[:], zero[:])
	h := gfFromBytes(hb[:])
	if h == (gf{}) {
		return nil, errors.New("cms: degenerate gcm key") // probability 2^-128
	}
	s := &gcmStream{aead: aead, h: h, hInv: h.inv(), hPowK: map[int]gf{}}
	var j0 [16]byte
	copy(j0[:], nonce)
	j0[15] = 1
	block.Encrypt(s.ek0[:], j0[:])
	copy(j0[:], probeNonce)
	block.Encrypt(s.ekProbe[:], j0[:])
	j0 = [16]byte{}
	copy(j0[:], nonce)
	j0[15] = 2 // inc32(J0): the first counter block of the payload
	// cipher.NewCTR increments all 128 bits where GCM's inc32 wraps the low 32; they agree
	// until 2^32-2 blocks (64 GiB), which is GCM's own length limit.
	s.ctr = cipher.NewCTR(block, j0[:])
	return s, nil
}

var errGCMTooLong = errors.New("cms: gcm message exceeds 2^36-32 octets")

// hash folds ciphertext into the GHASH state.
func (s *gcmStream) hash(ct []byte) error {
	if s.final {
		return errors.New("cms: gcm stream used after its last piece")
	}
	if len(ct)%16 != 0 {
		s.final = true
	}
	s.n += uint64(len(ct))
	if s.n > 1<<36-32 {
		return errGCMTooLong
	}
	if len(ct) == 0 {
		return nil
	}
	k := (len(ct) + 15) / 16
	hk, ok := s.hPowK[k]
	if !ok {
		hk = s.h.pow(uint64(k))
		if len(s.hPowK) < 4 {
			s.hPowK[k] = hk
		}
	}
	tag := s.aead.Seal(nil, probeNonce, nil, ct)
	var t [16]byte
	subtle.XORBytes(t[:], tag, s.ekProbe[:])
	lenBlock := gf{hi: uint64(len(ct)) * 8}
	g := gfFromBytes(t[:]).mul(s.hInv).xor(lenBlock)
	s.y = s.y.mul(hk).xor(g)
	return nil
}

// seal encrypts plaintext in place and hashes it.
func (s *gcmStream) seal(p []byte) error {
	s.ctr.XORKeyStream(p, p)
	return s.hash(p)
}

// open hashes ciphertext and decrypts it in place. The plaintext is unauthenticated until
// tag has confirmed the whole message.
func (s *gcmStream) open(c []byte) error {
	if err := s.hash(c); err != nil {
		return err
	}
	s.ctr.XORKeyStream(c, c)
	return nil
}

// tag returns the full 16-octet tag of the message processed so far.
func (s *gcmStream) tag() [16]byte {
	lenBlock := gf{lo: s.n * 8}
	y := s.y.xor(lenBlock).mul(s.h)
	t := y.bytes()
	subtle.XORBytes(t[:], t[:], s.ek0[:])
	return t
}

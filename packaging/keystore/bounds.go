package keystore

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Pre-checks before handing a file to the decoders. keystore-go allocates whatever a JKS
// length field says (up to 4 GiB per field, 4 G certificates per chain) and go-pkcs12 runs
// whatever PBKDF iteration count the file asks for. Both are fine for trusted files and
// not for a damaged or planted one, so the structure is walked here first.

// checkJKSBounds walks a JKS file and refuses any length that runs past its end.
func checkJKSBounds(data []byte) error {
	r := jksReader{data: data}
	magic, version, count := r.u32(), r.u32(), r.u32()
	if r.err != nil || magic != 0xfeedfeed || (version != 1 && version != 2) {
		return fmt.Errorf("%w: JKS header", ErrMalformed)
	}
	for i := uint32(0); i < count && r.err == nil; i++ {
		tag := r.u32()
		r.skip(uint64(r.u16())) // alias
		r.skip(8)               // creation time
		switch tag {
		case 1: // private key entry
			r.skip(uint64(r.u32()))
			n := r.u32()
			if uint64(n) > uint64(len(r.data)-r.off)/4 {
				return fmt.Errorf("%w: JKS chain of %d certificates", ErrMalformed, n)
			}
			for j := uint32(0); j < n && r.err == nil; j++ {
				r.cert(version)
			}
		case 2: // trusted certificate entry
			r.cert(version)
		default:
			return fmt.Errorf("%w: JKS entry tag %d", ErrMalformed, tag)
		}
	}
	r.skip(20) // SHA-1 integrity digest
	if r.err != nil {
		return r.err
	}
	if r.off != len(r.data) {
		return fmt.Errorf("%w: JKS has trailing data", ErrMalformed)
	}
	return nil
}

type jksReader struct {
	data []byte
	off  int
	err  error
}

func (r *jksReader) need(n uint64) bool {
	if r.err != nil {
		return false
	}
	if n > uint64(len(r.data)-r.off) {
		r.err = fmt.Errorf("%w: JKS field runs past the end of the file", ErrMalformed)
		return false
	}
	return true
}

func (r *jksReader) u16() uint16 {
	if !r.need(2) {
		return 0
	}
	v := binary.BigEndian.Uint16(r.data[r.off:])
	r.off += 2
	return v
}

func (r *jksReader) u32() uint32 {
	if !r.need(4) {
		return 0
	}
	v := binary.BigEndian.Uint32(r.data[r.off:])
	r.off += 4
	return v
}

func (r *jksReader) skip(n uint64) {
	if r.need(n) {
		r.off += int(n)
	}
}

func (r *jksReader) cert(version uint32) {
	if version == 2 {
		r.skip(uint64(r.u16())) // certificate type, "X.509"
	}
	r.skip(uint64(r.u32()))
}

// checkPKCS12Bounds walks the DER of a PKCS#12 file, descending into OCTET STRINGs that hold
// DER (the SafeContents), and refuses iteration counts above maxIterations. PBEParameter,
// PBKDF2-params and MacData all place the count as an INTEGER right after an OCTET STRING
// salt, which is the pattern checked. Encrypted SafeContents stay opaque here; their
// parameters sit outside the encryption and are checked.
func checkPKCS12Bounds(data []byte) error {
	s := cryptobyte.String(data)
	var top cryptobyte.String
	if !s.ReadASN1Element(&top, cbasn1.SEQUENCE) || !s.Empty() {
		return fmt.Errorf("%w: not a single DER SEQUENCE", ErrMalformed)
	}
	return walkDER(top, 0)
}

func walkDER(el cryptobyte.String, depth int) error {
	if depth > 32 {
		return fmt.Errorf("%w: nesting too deep", ErrMalformed)
	}
	var tag cbasn1.Tag
	var body cryptobyte.String
	if !el.ReadAnyASN1(&body, &tag) {
		return fmt.Errorf("%w: bad DER", ErrMalformed)
	}
	switch {
	case tag == cbasn1.OCTET_STRING:
		inner := body
		var probe cryptobyte.String
		var t cbasn1.Tag
		if inner.ReadAnyASN1Element(&probe, &t) && inner.Empty() && t&0x20 != 0 {
			return walkDER(probe, depth+1)
		}
		return nil
	case tag&0x20 == 0: // primitive
		return nil
	}
	prevOctet := false
	for !body.Empty() {
		var child cryptobyte.String
		var t cbasn1.Tag
		if !body.ReadAnyASN1Element(&child, &t) {
			return fmt.Errorf("%w: bad DER", ErrMalformed)
		}
		if prevOctet && t == cbasn1.INTEGER {
			var n int64
			c := child
			if !c.ReadASN1Integer(&n) || n > int64(iterationCap) || n < 0 {
				return fmt.Errorf("%w: key derivation iteration count over %d", ErrMalformed, iterationCap)
			}
		}
		prevOctet = t == cbasn1.OCTET_STRING
		if err := walkDER(child, depth+1); err != nil {
			return err
		}
	}
	return nil
}

package keystore

import (
	encoding_asn1 "encoding/asn1"
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

// checkPKCS12Bounds walks a PKCS#12 file (RFC 7292) along its structure and refuses
// key-derivation iteration counts above iterationCap: those of every encryption
// (PBEParameter, PBES2's PBKDF2-params), of the MAC and of PBMAC1. It reads an OCTET
// STRING as DER only where the structure puts DER there (the authSafe, a data
// ContentInfo's content, a safe-contents bag); salts, digests and encrypted content are
// random bytes that may happen to parse. What it does not know (enveloped data, unknown
// algorithms or bag types) it leaves to the decoder, which refuses what it cannot read.
func checkPKCS12Bounds(data []byte) error {
	s := cryptobyte.String(data)
	var pfx, authSafe cryptobyte.String
	var version int64
	if !s.ReadASN1(&pfx, cbasn1.SEQUENCE) || !s.Empty() {
		return fmt.Errorf("%w: not a single DER SEQUENCE", ErrMalformed)
	}
	if !pfx.ReadASN1Integer(&version) || !pfx.ReadASN1(&authSafe, cbasn1.SEQUENCE) {
		return errBadDER
	}
	w := p12Walker{}
	content, isData, err := w.contentInfo(authSafe)
	if err != nil || !isData {
		return err
	}
	var safes cryptobyte.String
	if !content.ReadASN1(&safes, cbasn1.SEQUENCE) || !content.Empty() {
		return errBadDER
	}
	for !safes.Empty() {
		var ci cryptobyte.String
		if !safes.ReadASN1(&ci, cbasn1.SEQUENCE) {
			return errBadDER
		}
		if err := w.safe(ci); err != nil {
			return err
		}
	}
	if pfx.Empty() {
		return nil
	}
	var mac cryptobyte.String
	if !pfx.ReadASN1(&mac, cbasn1.SEQUENCE) || !pfx.Empty() {
		return errBadDER
	}
	return w.macData(mac)
}

var errBadDER = fmt.Errorf("%w: bad DER", ErrMalformed)

// PKCS#7 content types and PKCS#12 bag types and algorithms the walk knows.
var (
	oidData             = encoding_asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidEncryptedData    = encoding_asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	oidShroudedKeyBag   = encoding_asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidSafeContentsBag  = encoding_asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 6}
	oidPBES2            = encoding_asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2           = encoding_asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidPBMAC1           = encoding_asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 14}
	oidPKCS12PBEPrefix  = encoding_asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1}
	oidPKCS5PBES1Prefix = encoding_asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5}
)

type p12Walker struct{ depth int }

// contentInfo reads a ContentInfo's type and, for data, the DER inside its OCTET STRING.
// For encrypted data it checks the encryption's parameters and returns isData false.
func (w *p12Walker) contentInfo(ci cryptobyte.String) (content cryptobyte.String, isData bool, err error) {
	var typ encoding_asn1.ObjectIdentifier
	var explicit cryptobyte.String
	if !ci.ReadASN1ObjectIdentifier(&typ) {
		return nil, false, errBadDER
	}
	if ci.Empty() {
		return nil, false, nil
	}
	if !ci.ReadASN1(&explicit, cbasn1.Tag(0).Constructed().ContextSpecific()) || !ci.Empty() {
		return nil, false, errBadDER
	}
	switch {
	case typ.Equal(oidData):
		var octets cryptobyte.String
		if !explicit.ReadASN1(&octets, cbasn1.OCTET_STRING) || !explicit.Empty() {
			return nil, false, errBadDER
		}
		return octets, true, nil
	case typ.Equal(oidEncryptedData):
		// EncryptedData ::= SEQUENCE { version, EncryptedContentInfo ::= SEQUENCE {
		// contentType, contentEncryptionAlgorithm, [0] IMPLICIT encryptedContent } }
		var ed, eci, oid, alg cryptobyte.String
		var version int64
		if !explicit.ReadASN1(&ed, cbasn1.SEQUENCE) || !ed.ReadASN1Integer(&version) ||
			!ed.ReadASN1(&eci, cbasn1.SEQUENCE) || !eci.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) ||
			!eci.ReadASN1Element(&alg, cbasn1.SEQUENCE) {
			return nil, false, errBadDER
		}
		return nil, false, w.algorithm(alg)
	}
	return nil, false, nil
}

// safe checks one ContentInfo of the AuthenticatedSafe.
func (w *p12Walker) safe(ci cryptobyte.String) error {
	content, isData, err := w.contentInfo(ci)
	if err != nil || !isData {
		return err
	}
	return w.safeContents(content)
}

// safeContents checks a SafeContents: SEQUENCE OF SafeBag.
func (w *p12Walker) safeContents(der cryptobyte.String) error {
	if w.depth++; w.depth > 8 {
		return fmt.Errorf("%w: nesting too deep", ErrMalformed)
	}
	defer func() { w.depth-- }()
	var bags cryptobyte.String
	if !der.ReadASN1(&bags, cbasn1.SEQUENCE) || !der.Empty() {
		return errBadDER
	}
	for !bags.Empty() {
		// SafeBag ::= SEQUENCE { bagId, [0] EXPLICIT bagValue, bagAttributes OPTIONAL }
		var bag, value cryptobyte.String
		var id encoding_asn1.ObjectIdentifier
		if !bags.ReadASN1(&bag, cbasn1.SEQUENCE) || !bag.ReadASN1ObjectIdentifier(&id) ||
			!bag.ReadASN1(&value, cbasn1.Tag(0).Constructed().ContextSpecific()) {
			return errBadDER
		}
		switch {
		case id.Equal(oidShroudedKeyBag):
			// EncryptedPrivateKeyInfo ::= SEQUENCE { encryptionAlgorithm, encryptedData }
			var epki, alg cryptobyte.String
			if !value.ReadASN1(&epki, cbasn1.SEQUENCE) || !epki.ReadASN1Element(&alg, cbasn1.SEQUENCE) {
				return errBadDER
			}
			if err := w.algorithm(alg); err != nil {
				return err
			}
		case id.Equal(oidSafeContentsBag):
			if err := w.safeContents(value); err != nil {
				return err
			}
		}
	}
	return nil
}

// algorithm checks the iteration counts of an encryption or MAC AlgorithmIdentifier.
func (w *p12Walker) algorithm(alg cryptobyte.String) error {
	var seq cryptobyte.String
	var oid encoding_asn1.ObjectIdentifier
	if !alg.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1ObjectIdentifier(&oid) {
		return errBadDER
	}
	switch {
	case oid.Equal(oidPBES2), oid.Equal(oidPBMAC1):
		// PBES2-params / PBMAC1-params ::= SEQUENCE { keyDerivationFunc, scheme }
		var params, kdf cryptobyte.String
		if !seq.ReadASN1(&params, cbasn1.SEQUENCE) || !params.ReadASN1Element(&kdf, cbasn1.SEQUENCE) {
			return errBadDER
		}
		return w.algorithm(kdf)
	case oid.Equal(oidPBKDF2):
		// PBKDF2-params ::= SEQUENCE { salt CHOICE { specified OCTET STRING, otherSource }, iterationCount, ... }
		var params cryptobyte.String
		if !seq.ReadASN1(&params, cbasn1.SEQUENCE) || !params.SkipASN1(cbasn1.OCTET_STRING) {
			return errBadDER
		}
		return checkIterations(&params)
	case isUnder(oid, oidPKCS12PBEPrefix), isUnder(oid, oidPKCS5PBES1Prefix) && len(oid) == 7 && oid[6] < 12:
		// PBEParameter ::= SEQUENCE { salt OCTET STRING, iterationCount INTEGER }
		var params cryptobyte.String
		if !seq.ReadASN1(&params, cbasn1.SEQUENCE) || !params.SkipASN1(cbasn1.OCTET_STRING) {
			return errBadDER
		}
		return checkIterations(&params)
	}
	return nil
}

// macData checks MacData ::= SEQUENCE { mac DigestInfo, macSalt OCTET STRING, iterations
// INTEGER DEFAULT 1 }; with PBMAC1 the digest algorithm carries its own count.
func (w *p12Walker) macData(mac cryptobyte.String) error {
	var digestInfo, alg cryptobyte.String
	if !mac.ReadASN1(&digestInfo, cbasn1.SEQUENCE) || !digestInfo.ReadASN1Element(&alg, cbasn1.SEQUENCE) ||
		!mac.SkipASN1(cbasn1.OCTET_STRING) {
		return errBadDER
	}
	if err := w.algorithm(alg); err != nil {
		return err
	}
	if mac.Empty() {
		return nil
	}
	return checkIterations(&mac)
}

func checkIterations(s *cryptobyte.String) error {
	var n int64
	if !s.ReadASN1Integer(&n) {
		return errBadDER
	}
	if n > int64(iterationCap) || n < 0 {
		return fmt.Errorf("%w: key derivation iteration count over %d", ErrMalformed, iterationCap)
	}
	return nil
}

func isUnder(oid, prefix encoding_asn1.ObjectIdentifier) bool {
	return len(oid) > len(prefix) && oid[:len(prefix)].Equal(prefix)
}

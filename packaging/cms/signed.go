package cms

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// SignedData is written with cryptobyte (DER, small: a manifest digest and a certificate
// chain) and read after normalising BER to DER, because signatures made by other tools
// (OpenSSL with -stream, Bouncy Castle) use indefinite lengths.

var (
	// ErrSignatureInvalid is returned when the signature does not verify with the signer's
	// certificate: the signed attributes or the signature were altered, or the key differs.
	ErrSignatureInvalid = errors.New("cms: signature does not verify")
	// ErrDigestMismatch is returned when the signed content differs from what was signed.
	ErrDigestMismatch = errors.New("cms: content digest does not match the signed digest")
	// ErrUntrustedSigner is returned when the signer's certificate does not chain to the
	// trusted roots, is outside its validity, or lacks a usage allowing signatures.
	ErrUntrustedSigner = errors.New("cms: signer certificate is not trusted")
)

// SignOptions steer SignDetached.
type SignOptions struct {
	// Hash is the message digest; zero means SHA-1, which is what the reference writes and
	// what every receiving reference IP is known to accept (channels.md §1.9.2 project rule).
	Hash crypto.Hash
	// Chain holds certificates to include after the signer's own (intermediates, CA).
	Chain []*x509.Certificate
	// SigningTime defaults to now.
	SigningTime time.Time
}

// SignDetached returns a DER ContentInfo with a detached SignedData over content, signed by
// key with cert, with signed attributes content type, signing time, message digest and CMS
// algorithm protection (RFC 6211).
func SignDetached(content io.Reader, cert *x509.Certificate, key crypto.Signer, opts SignOptions) ([]byte, error) {
	h := opts.Hash
	if h == 0 {
		h = crypto.SHA1
	}
	if !h.Available() {
		return nil, fmt.Errorf("%w: hash %v", ErrUnsupported, h)
	}
	if _, ok := key.Public().(*rsa.PublicKey); !ok {
		return nil, fmt.Errorf("%w: signing key %T, want RSA", ErrUnsupported, key.Public())
	}
	md := h.New()
	if _, err := io.Copy(md, content); err != nil {
		return nil, fmt.Errorf("reading signed content: %w", err)
	}
	when := opts.SigningTime
	if when.IsZero() {
		when = time.Now()
	}
	digestAlg, _ := asn1.Marshal(algID(hashOID(h)))
	sigAlg, _ := asn1.Marshal(algID(rsaSignatureOID(h)))

	attrs, err := signedAttributes(md.Sum(nil), when, digestAlg, sigAlg)
	if err != nil {
		return nil, err
	}
	ad := h.New()
	ad.Write(derTLV(0x31, attrs))
	sig, err := key.Sign(nil, ad.Sum(nil), h)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}

	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidSignedData)
		b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1Int64(1)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddBytes(digestAlg) })
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidData) })
				b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					b.AddBytes(cert.Raw)
					for _, c := range opts.Chain {
						b.AddBytes(c.Raw)
					}
				})
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1Int64(1)
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddBytes(cert.RawIssuer)
							b.AddASN1BigInt(cert.SerialNumber)
						})
						b.AddBytes(digestAlg)
						b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) { b.AddBytes(attrs) })
						b.AddBytes(sigAlg)
						b.AddASN1OctetString(sig)
					})
				})
			})
		})
	})
	return b.Bytes()
}

func signedAttributes(digest []byte, when time.Time, digestAlg, sigAlg []byte) ([]byte, error) {
	attr := func(oid asn1.ObjectIdentifier, value func(*cryptobyte.Builder)) []byte {
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid)
			b.AddASN1(cbasn1.SET, value)
		})
		return b.BytesOrPanic()
	}
	timeDER, err := asn1.Marshal(when.UTC().Truncate(time.Second)) // UTCTime until 2049, as RFC 5652 asks
	if err != nil {
		return nil, fmt.Errorf("encoding signing time: %w", err)
	}
	list := [][]byte{
		attr(oidAttrContentType, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidData) }),
		attr(oidAttrSigningTime, func(b *cryptobyte.Builder) { b.AddBytes(timeDER) }),
		attr(oidAttrMessageDigest, func(b *cryptobyte.Builder) { b.AddASN1OctetString(digest) }),
		attr(oidAttrAlgorithmProtection, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddBytes(digestAlg)
				// [1] IMPLICIT replaces the AlgorithmIdentifier's SEQUENCE tag.
				b.AddBytes(append([]byte{0xa1}, sigAlg[1:]...))
			})
		}),
	}
	slices.SortFunc(list, bytes.Compare) // DER orders a SET OF by encoding
	return bytes.Join(list, nil), nil
}

// VerifyOptions steer VerifyDetached.
type VerifyOptions struct {
	// Roots are the trust anchors; must not be nil (an empty pool trusts nothing).
	Roots *x509.CertPool
	// Intermediates are extra certificates to build the chain with, besides those in the
	// signature.
	Intermediates *x509.CertPool
	// CurrentTime is when the chain must be valid; zero means now.
	CurrentTime time.Time
}

// Signer is who signed, as VerifyDetached established it.
type Signer struct {
	Cert        *x509.Certificate
	Chains      [][]*x509.Certificate
	SigningTime time.Time // zero when the signature carries none
	Hash        crypto.Hash
}

// MaxSignatureSize caps a SignedData read into memory. A signature with a chain of three
// certificates is under 10 KiB; a megabyte leaves room for long chains and CRLs.
const MaxSignatureSize = 1 << 20

// VerifyDetached checks a CMS SignedData (BER or DER) over content, which is read to the
// end. It requires signed attributes with content type and message digest, one signer,
// and a chain from the signer's certificate to opts.Roots.
func VerifyDetached(sig []byte, content io.Reader, opts VerifyOptions) (*Signer, error) {
	if len(sig) > MaxSignatureSize {
		return nil, fmt.Errorf("%w: signature of %d octets", ErrTooLarge, len(sig))
	}
	der, err := newBERReader(bytes.NewReader(sig)).readElement(MaxSignatureSize)
	if err != nil {
		return nil, err
	}
	sd, err := parseSignedData(der)
	if err != nil {
		return nil, err
	}
	si := sd.signer
	h, ok := hashByOID(si.digestAlg.Algorithm)
	if !ok {
		return nil, fmt.Errorf("%w: digest %s", ErrUnsupported, si.digestAlg.Algorithm)
	}
	var signerCert *x509.Certificate
	for _, c := range sd.certs {
		if si.matches(c) {
			signerCert = c
			break
		}
	}
	if signerCert == nil {
		return nil, fmt.Errorf("%w: signer certificate not included", ErrUntrustedSigner)
	}
	pub, ok := signerCert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: signer key %T", ErrUnsupported, signerCert.PublicKey)
	}

	var body []byte
	if sd.content != nil {
		body = sd.content
	}
	md := h.New()
	if content != nil {
		if _, err := io.Copy(md, content); err != nil {
			return nil, fmt.Errorf("reading signed content: %w", err)
		}
	} else {
		md.Write(body)
	}
	a, err := parseAttributes(si.signedAttrs)
	if err != nil {
		return nil, err
	}
	if a.digest == nil || a.contentType == nil {
		return nil, fmt.Errorf("%w: signed attributes lack content type or message digest", ErrMalformed)
	}
	if !a.contentType.Equal(sd.eContentType) {
		return nil, fmt.Errorf("%w: content type attribute differs from the content", ErrSignatureInvalid)
	}
	if !bytes.Equal(a.digest, md.Sum(nil)) {
		return nil, ErrDigestMismatch
	}
	sigHash, err := signatureHash(si.sigAlg, h)
	if err != nil {
		return nil, err
	}
	if a.protection != nil && !bytes.Equal(a.protection, si.protectionFor()) {
		return nil, fmt.Errorf("%w: algorithm protection attribute differs from the algorithms used", ErrSignatureInvalid)
	}
	ad := sigHash.New()
	ad.Write(derTLV(0x31, si.signedAttrs))
	if err := rsa.VerifyPKCS1v15(pub, sigHash, ad.Sum(nil), si.signature); err != nil {
		return nil, ErrSignatureInvalid
	}

	inter := x509.NewCertPool()
	if opts.Intermediates != nil {
		inter = opts.Intermediates.Clone()
	}
	for _, c := range sd.certs {
		if c != signerCert {
			inter.AddCert(c)
		}
	}
	if opts.Roots == nil {
		return nil, fmt.Errorf("%w: no trust anchors configured", ErrUntrustedSigner)
	}
	chains, err := signerCert.Verify(x509.VerifyOptions{
		Roots:         opts.Roots,
		Intermediates: inter,
		CurrentTime:   opts.CurrentTime,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUntrustedSigner, err)
	}
	if signerCert.KeyUsage != 0 && signerCert.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		return nil, fmt.Errorf("%w: key usage does not allow signatures", ErrUntrustedSigner)
	}
	return &Signer{Cert: signerCert, Chains: chains, SigningTime: a.signingTime, Hash: h}, nil
}

func signatureHash(alg pkix.AlgorithmIdentifier, digest crypto.Hash) (crypto.Hash, error) {
	o := alg.Algorithm
	var h crypto.Hash
	switch {
	case o.Equal(oidRSAEncryption):
		return digest, nil
	case o.Equal(oidSHA1WithRSA):
		h = crypto.SHA1
	case o.Equal(oidSHA256WithRSA):
		h = crypto.SHA256
	case o.Equal(oidSHA384WithRSA):
		h = crypto.SHA384
	case o.Equal(oidSHA512WithRSA):
		h = crypto.SHA512
	default:
		return 0, fmt.Errorf("%w: signature algorithm %s", ErrUnsupported, o)
	}
	if h != digest {
		return 0, fmt.Errorf("%w: signature hash differs from the digest algorithm", ErrSignatureInvalid)
	}
	return h, nil
}

type signedData struct {
	eContentType asn1.ObjectIdentifier
	content      []byte // nil when detached
	certs        []*x509.Certificate
	signer       signerInfo
}

type signerInfo struct {
	sid         cryptobyte.String // full element
	sidTag      cbasn1.Tag
	digestAlg   pkix.AlgorithmIdentifier
	digestRaw   []byte
	signedAttrs []byte // contents of [0], without the tag
	sigAlg      pkix.AlgorithmIdentifier
	sigAlgRaw   []byte
	signature   []byte
}

func (si *signerInfo) matches(c *x509.Certificate) bool {
	s := si.sid
	if si.sidTag == cbasn1.Tag(0).ContextSpecific() {
		var ski cryptobyte.String
		if !s.ReadASN1(&ski, cbasn1.Tag(0).ContextSpecific()) {
			return false
		}
		return len(c.SubjectKeyId) > 0 && bytes.Equal(ski, c.SubjectKeyId)
	}
	var seq, issuer cryptobyte.String
	serial := new(big.Int)
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1Element(&issuer, cbasn1.SEQUENCE) || !seq.ReadASN1Integer(serial) {
		return false
	}
	return bytes.Equal(issuer, c.RawIssuer) && serial.Cmp(c.SerialNumber) == 0
}

// protectionFor is the DER value an RFC 6211 attribute must have for this signer info.
func (si *signerInfo) protectionFor() []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(si.digestRaw)
		b.AddBytes(append([]byte{0xa1}, si.sigAlgRaw[1:]...))
	})
	return b.BytesOrPanic()
}

func parseAlg(s *cryptobyte.String) (pkix.AlgorithmIdentifier, []byte, bool) {
	var raw cryptobyte.String
	if !s.ReadASN1Element(&raw, cbasn1.SEQUENCE) {
		return pkix.AlgorithmIdentifier{}, nil, false
	}
	var a pkix.AlgorithmIdentifier
	if rest, err := asn1.Unmarshal(raw, &a); err != nil || len(rest) > 0 {
		return a, nil, false
	}
	return a, raw, true
}

func parseSignedData(der []byte) (*signedData, error) {
	in := cryptobyte.String(der)
	var ci, explicit, sdSeq cryptobyte.String
	var ct asn1.ObjectIdentifier
	if !in.ReadASN1(&ci, cbasn1.SEQUENCE) || !ci.ReadASN1ObjectIdentifier(&ct) {
		return nil, malformed("not a ContentInfo")
	}
	if !ct.Equal(oidSignedData) {
		return nil, fmt.Errorf("%w: content type %s, want signedData", ErrUnsupported, ct)
	}
	if !ci.ReadASN1(&explicit, cbasn1.Tag(0).ContextSpecific().Constructed()) || !explicit.ReadASN1(&sdSeq, cbasn1.SEQUENCE) {
		return nil, malformed("SignedData")
	}
	var version int64
	var digestAlgs, encap cryptobyte.String
	if !sdSeq.ReadASN1Integer(&version) || !sdSeq.ReadASN1(&digestAlgs, cbasn1.SET) || !sdSeq.ReadASN1(&encap, cbasn1.SEQUENCE) {
		return nil, malformed("SignedData header")
	}
	sd := &signedData{}
	if !encap.ReadASN1ObjectIdentifier(&sd.eContentType) {
		return nil, malformed("encapsulated content type")
	}
	var eContent cryptobyte.String
	var present bool
	if !encap.ReadOptionalASN1(&eContent, &present, cbasn1.Tag(0).ContextSpecific().Constructed()) {
		return nil, malformed("encapsulated content")
	}
	if present {
		var oct cryptobyte.String
		if !eContent.ReadASN1(&oct, cbasn1.OCTET_STRING) {
			return nil, malformed("encapsulated content is not an OCTET STRING")
		}
		sd.content = oct
	}
	var certs cryptobyte.String
	if !sdSeq.ReadOptionalASN1(&certs, &present, cbasn1.Tag(0).ContextSpecific().Constructed()) {
		return nil, malformed("certificates")
	}
	for !certs.Empty() {
		var raw cryptobyte.String
		if !certs.ReadAnyASN1Element(&raw, new(cbasn1.Tag)) {
			return nil, malformed("certificate")
		}
		c, err := x509.ParseCertificate(raw)
		if err != nil {
			continue // attribute certificates and other choices: not used for RSA signers
		}
		sd.certs = append(sd.certs, c)
	}
	var skip cryptobyte.String
	if !sdSeq.ReadOptionalASN1(&skip, &present, cbasn1.Tag(1).ContextSpecific().Constructed()) {
		return nil, malformed("crls")
	}
	var signers cryptobyte.String
	if !sdSeq.ReadASN1(&signers, cbasn1.SET) || !sdSeq.Empty() {
		return nil, malformed("signer infos")
	}
	var siSeq cryptobyte.String
	if !signers.ReadASN1(&siSeq, cbasn1.SEQUENCE) {
		return nil, malformed("no signer info")
	}
	if !signers.Empty() {
		return nil, fmt.Errorf("%w: more than one signer", ErrUnsupported)
	}
	si := &sd.signer
	var siVersion int64
	var ok bool
	if !siSeq.ReadASN1Integer(&siVersion) || !siSeq.ReadAnyASN1Element(&si.sid, &si.sidTag) {
		return nil, malformed("signer identifier")
	}
	if si.digestAlg, si.digestRaw, ok = parseAlg(&siSeq); !ok {
		return nil, malformed("signer digest algorithm")
	}
	var attrs cryptobyte.String
	if !siSeq.ReadOptionalASN1(&attrs, &present, cbasn1.Tag(0).ContextSpecific().Constructed()) || !present {
		return nil, fmt.Errorf("%w: no signed attributes", ErrMalformed)
	}
	si.signedAttrs = attrs
	if si.sigAlg, si.sigAlgRaw, ok = parseAlg(&siSeq); !ok {
		return nil, malformed("signature algorithm")
	}
	var sig cryptobyte.String
	if !siSeq.ReadASN1(&sig, cbasn1.OCTET_STRING) {
		return nil, malformed("signature value")
	}
	si.signature = sig
	return sd, nil
}

type attributes struct {
	contentType asn1.ObjectIdentifier
	digest      []byte
	signingTime time.Time
	protection  []byte
}

func parseAttributes(raw []byte) (attributes, error) {
	var a attributes
	s := cryptobyte.String(raw)
	seen := map[string]bool{}
	for !s.Empty() {
		var attr, values cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !s.ReadASN1(&attr, cbasn1.SEQUENCE) || !attr.ReadASN1ObjectIdentifier(&oid) || !attr.ReadASN1(&values, cbasn1.SET) {
			return a, malformed("signed attribute")
		}
		if seen[oid.String()] {
			return a, malformed("signed attribute %s twice", oid)
		}
		seen[oid.String()] = true
		switch {
		case oid.Equal(oidAttrContentType):
			if !values.ReadASN1ObjectIdentifier(&a.contentType) || !values.Empty() {
				return a, malformed("content type attribute")
			}
		case oid.Equal(oidAttrMessageDigest):
			var d cryptobyte.String
			if !values.ReadASN1(&d, cbasn1.OCTET_STRING) || !values.Empty() {
				return a, malformed("message digest attribute")
			}
			a.digest = d
		case oid.Equal(oidAttrSigningTime):
			var t time.Time
			if rest, err := asn1.Unmarshal(values, &t); err == nil && len(rest) == 0 {
				a.signingTime = t
			}
		case oid.Equal(oidAttrAlgorithmProtection):
			var v cryptobyte.String
			if !values.ReadASN1Element(&v, cbasn1.SEQUENCE) || !values.Empty() {
				return a, malformed("algorithm protection attribute")
			}
			a.protection = v
		}
	}
	return a, nil
}

package cms

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"
)

// KeyTransport is how the content-encryption key is wrapped for the recipient.
type KeyTransport int

const (
	// RSAESOAEP is RSAES-OAEP with SHA-256 and MGF1-SHA-256, all parameters written out
	// (channels.md §1.9.1). The default.
	RSAESOAEP KeyTransport = iota
	// RSAESPKCS1v15 is rsaEncryption; DPE and Windows-store keystores need it.
	RSAESPKCS1v15
)

func (k KeyTransport) String() string {
	if k == RSAESPKCS1v15 {
		return "RSAES-PKCS1-v1_5"
	}
	return "RSAES-OAEP"
}

// ContentCipher is the symmetric cipher of the content.
type ContentCipher int

const (
	// AES256CBC with PKCS#7 padding, the default everywhere except DPH.
	AES256CBC ContentCipher = iota
	// AES256GCM with a 12-octet nonce and 16-octet tag.
	AES256GCM
)

func (c ContentCipher) String() string {
	if c == AES256GCM {
		return "AES-256-GCM"
	}
	return "AES-256-CBC"
}

// chunkPool holds the chunk buffers of Encrypt and Decrypt: most packages are a few
// kilobytes, and a fresh 128 KiB buffer per package was a large allocation, zeroed, for
// each (issue 18). The room past chunkSize takes a CBC padding block or a GCM tag.
var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize+aes.BlockSize); return &b }}

// putChunk clears what a buffer may hold of the n octets that went through it
// (plaintext, when decrypting) and returns it to the pool.
func putChunk(bp *[]byte, n int64) {
	clear((*bp)[:min(int64(len(*bp)), n+aes.BlockSize)])
	chunkPool.Put(bp)
}

var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 16<<10) }}

// countingReader counts the octets read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// chunkSize is the unit of streaming: the most plaintext held at once, and the size of each
// OCTET STRING segment written. Large enough that per-chunk work is noise next to AES.
const chunkSize = 128 << 10

// EncryptOptions choose the algorithms. The zero value is RSAES-OAEP with AES-256-CBC.
type EncryptOptions struct {
	KeyTransport KeyTransport
	Cipher       ContentCipher
	// AuthEnveloped writes GCM content as RFC 5083 AuthEnvelopedData (the tag in its own
	// mac field), which is what OpenSSL reads and writes. When false, GCM goes inside
	// EnvelopedData with the tag appended to the ciphertext, as the reference (Bouncy
	// Castle) writes for DPH. Ignored for CBC.
	AuthEnveloped bool
	// Rand is the source of keys, IVs and padding; nil means crypto/rand.
	Rand io.Reader
}

var (
	// ErrUnsupported is returned for algorithms and structures outside channels.md §1.9.1.
	ErrUnsupported = errors.New("cms: unsupported")
	// ErrNoRecipient is returned when no recipient info is for the given certificate.
	ErrNoRecipient = errors.New("cms: no recipient info for this certificate")
	// ErrDecrypt is returned when the content cannot be decrypted: wrong key, or a
	// ciphertext altered in transit (bad padding).
	ErrDecrypt = errors.New("cms: decryption failed")
	// ErrAuthentication is returned when a GCM tag does not match: the ciphertext, nonce or
	// tag was altered. Everything written to the destination must be discarded.
	ErrAuthentication = errors.New("cms: content authentication failed")
)

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

type keyTransRecipientInfo struct {
	Version                int
	RID                    asn1.RawValue
	KeyEncryptionAlgorithm pkix.AlgorithmIdentifier
	EncryptedKey           []byte
}

type oaepParams struct {
	Hash    pkix.AlgorithmIdentifier `asn1:"optional,explicit,tag:0"`
	MGF     pkix.AlgorithmIdentifier `asn1:"optional,explicit,tag:1"`
	PSource pkix.AlgorithmIdentifier `asn1:"optional,explicit,tag:2"`
}

type gcmParams struct {
	Nonce  []byte
	ICVLen int `asn1:"optional,default:12"`
}

// Encrypt reads the whole of src and writes a CMS (ContentInfo with EnvelopedData, or
// AuthEnvelopedData for GCM when opts.AuthEnveloped) for recipient to dst. The output is BER
// with indefinite lengths and the ciphertext in OCTET STRING segments of 128 KiB, so memory
// use does not depend on the size of src. It returns the number of plaintext octets read.
func Encrypt(dst io.Writer, src io.Reader, recipient *x509.Certificate, opts EncryptOptions) (int64, error) {
	rnd := opts.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	pub, ok := recipient.PublicKey.(*rsa.PublicKey)
	if !ok {
		return 0, fmt.Errorf("%w: recipient key %T, want RSA", ErrUnsupported, recipient.PublicKey)
	}
	cek := make([]byte, 32)
	if _, err := io.ReadFull(rnd, cek); err != nil {
		return 0, fmt.Errorf("generating content key: %w", err)
	}
	ri, err := recipientInfo(rnd, recipient, pub, cek, opts.KeyTransport)
	if err != nil {
		return 0, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return 0, err
	}

	var (
		contentAlg []byte
		cbc        cipher.BlockMode
		gcm        *gcmStream
	)
	switch opts.Cipher {
	case AES256CBC:
		iv := make([]byte, aes.BlockSize)
		if _, err := io.ReadFull(rnd, iv); err != nil {
			return 0, fmt.Errorf("generating iv: %w", err)
		}
		cbc = newCBC(cek, block, iv, false)
		contentAlg, err = asn1.Marshal(struct {
			Algorithm asn1.ObjectIdentifier
			IV        []byte
		}{oidAES256CBC, iv})
	case AES256GCM:
		nonce := make([]byte, 12)
		if _, err := io.ReadFull(rnd, nonce); err != nil {
			return 0, fmt.Errorf("generating nonce: %w", err)
		}
		if gcm, err = newGCMStream(block, nonce); err != nil {
			return 0, err
		}
		contentAlg, err = asn1.Marshal(struct {
			Algorithm asn1.ObjectIdentifier
			Params    gcmParams
		}{oidAES256GCM, gcmParams{Nonce: nonce, ICVLen: 16}})
	default:
		return 0, fmt.Errorf("%w: content cipher %d", ErrUnsupported, opts.Cipher)
	}
	if err != nil {
		return 0, err
	}
	authEnv := gcm != nil && opts.AuthEnveloped

	w := writerPool.Get().(*bufio.Writer)
	w.Reset(dst)
	defer func() { w.Reset(nil); writerPool.Put(w) }()
	outer := oidEnvelopedData
	if authEnv {
		outer = oidAuthEnvelopedData
	}
	oidDER, _ := asn1.Marshal(outer)
	dataDER, _ := asn1.Marshal(oidData)
	w.Write([]byte{0x30, 0x80})
	w.Write(oidDER)
	w.Write([]byte{0xa0, 0x80, 0x30, 0x80, 0x02, 0x01, 0x00})
	w.Write(derTLV(0x31, ri))
	w.Write([]byte{0x30, 0x80})
	w.Write(dataDER)
	w.Write(contentAlg)
	w.Write([]byte{0xa0, 0x80})

	bp := chunkPool.Get().(*[]byte)
	buf := *bp
	var total int64
	defer func() { putChunk(bp, total) }()
	writeSegment := func(p []byte) {
		if len(p) == 0 {
			return
		}
		var hdr [6]byte
		w.Write(appendLength(append(hdr[:0], 0x04), len(p)))
		w.Write(p)
	}
	for {
		n, rerr := io.ReadFull(src, buf[:chunkSize])
		total += int64(n)
		last := rerr == io.EOF || rerr == io.ErrUnexpectedEOF
		if rerr != nil && !last {
			return total, fmt.Errorf("reading plaintext: %w", rerr)
		}
		p := buf[:n]
		switch {
		case cbc != nil:
			if last {
				pad := aes.BlockSize - n%aes.BlockSize
				for range pad {
					p = append(p, byte(pad))
				}
			}
			cbc.CryptBlocks(p, p)
		default:
			if err := gcm.seal(p); err != nil {
				return total, err
			}
			if last && !authEnv {
				tag := gcm.tag()
				p = append(p, tag[:]...)
			}
		}
		writeSegment(p)
		if last {
			break
		}
	}
	w.Write([]byte{0, 0, 0, 0}) // ends [0] encryptedContent and EncryptedContentInfo
	if authEnv {
		tag := gcm.tag()
		w.Write(derTLV(0x04, tag[:]))
	}
	w.Write([]byte{0, 0, 0, 0, 0, 0}) // ends EnvelopedData, [0], ContentInfo
	if err := w.Flush(); err != nil {
		return total, fmt.Errorf("writing cms: %w", err)
	}
	return total, nil
}

func recipientInfo(rnd io.Reader, cert *x509.Certificate, pub *rsa.PublicKey, cek []byte, kt KeyTransport) ([]byte, error) {
	var (
		alg pkix.AlgorithmIdentifier
		ek  []byte
		err error
	)
	switch kt {
	case RSAESOAEP:
		mgfParams, _ := asn1.Marshal(algID(oidSHA256))
		params, err := asn1.Marshal(oaepParams{
			Hash:    algID(oidSHA256),
			MGF:     pkix.AlgorithmIdentifier{Algorithm: oidMGF1, Parameters: asn1.RawValue{FullBytes: mgfParams}},
			PSource: pkix.AlgorithmIdentifier{Algorithm: oidPSpecified, Parameters: asn1.RawValue{FullBytes: []byte{0x04, 0x00}}},
		})
		if err != nil {
			return nil, err
		}
		alg = pkix.AlgorithmIdentifier{Algorithm: oidRSAESOAEP, Parameters: asn1.RawValue{FullBytes: params}}
		ek, err = rsa.EncryptOAEP(crypto.SHA256.New(), rnd, pub, cek, nil)
		if err != nil {
			return nil, fmt.Errorf("wrapping content key: %w", err)
		}
	case RSAESPKCS1v15:
		alg = algID(oidRSAEncryption)
		//lint:ignore SA1019 DPE and Windows-store keystores require PKCS#1 v1.5 (channels.md §1.9.1)
		ek, err = rsa.EncryptPKCS1v15(rnd, pub, cek)
		if err != nil {
			return nil, fmt.Errorf("wrapping content key: %w", err)
		}
	default:
		return nil, fmt.Errorf("%w: key transport %d", ErrUnsupported, kt)
	}
	rid, err := asn1.Marshal(issuerAndSerial{Issuer: asn1.RawValue{FullBytes: cert.RawIssuer}, Serial: cert.SerialNumber})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(keyTransRecipientInfo{
		Version:                0,
		RID:                    asn1.RawValue{FullBytes: rid},
		KeyEncryptionAlgorithm: alg,
		EncryptedKey:           ek,
	})
}

// DecryptOptions bound and steer decryption.
type DecryptOptions struct {
	// Cert selects the recipient info by issuer and serial (or subject key identifier).
	// When nil, or when no recipient info matches and FirstRecipient is set, the first key
	// transport recipient info is used, as the reference does.
	Cert           *x509.Certificate
	FirstRecipient bool
	// MaxSize caps the encrypted content in octets; 0 means no cap. Content from outside
	// must always be capped (channels.md §1.5 gives the per-channel limits).
	MaxSize int64
}

// Info describes a decrypted CMS.
type Info struct {
	KeyTransport  KeyTransport
	Cipher        ContentCipher
	AuthEnveloped bool
	// Size is the number of plaintext octets written.
	Size int64
}

// Decrypt reads a CMS EnvelopedData (or AuthEnvelopedData) in BER or DER from src and writes
// the plaintext to dst, streaming. On any error the bytes already written to dst must be
// discarded: for GCM the tag is checked only at the end, and for CBC the padding.
func Decrypt(dst io.Writer, src io.Reader, key *rsa.PrivateKey, opts DecryptOptions) (Info, error) {
	var info Info
	b := newBERReader(src)
	ci, err := b.enter(0x30, "ContentInfo")
	if err != nil {
		return info, err
	}
	oidDER, err := b.readElement(64)
	if err != nil {
		return info, fmt.Errorf("reading content type: %w", err)
	}
	var ct asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(oidDER, &ct); err != nil || len(rest) > 0 {
		return info, malformed("content type is not an OID")
	}
	switch {
	case ct.Equal(oidEnvelopedData):
	case ct.Equal(oidAuthEnvelopedData):
		info.AuthEnveloped = true
	default:
		return info, fmt.Errorf("%w: content type %s", ErrUnsupported, ct)
	}
	explicit, err := b.enter(0xa0, "content")
	if err != nil {
		return info, err
	}
	ed, err := b.enter(0x30, "EnvelopedData")
	if err != nil {
		return info, err
	}
	if _, err := b.readElement(8); err != nil { // version: informative only
		return info, fmt.Errorf("reading version: %w", err)
	}
	tag, err := b.peekTag()
	if err != nil {
		return info, err
	}
	if tag == 0xa0 { // originatorInfo: certificates we have no use for
		if err := b.skipElement(maxSmallElement); err != nil {
			return info, fmt.Errorf("reading originator info: %w", err)
		}
	}
	risDER, err := b.readElement(maxSmallElement)
	if err != nil {
		return info, fmt.Errorf("reading recipient infos: %w", err)
	}
	ri, err := pickRecipient(risDER, opts)
	if err != nil {
		return info, err
	}

	eci, err := b.enter(0x30, "EncryptedContentInfo")
	if err != nil {
		return info, err
	}
	if _, err := b.readElement(64); err != nil {
		return info, fmt.Errorf("reading encrypted content type: %w", err)
	}
	algDER, err := b.readElement(1024)
	if err != nil {
		return info, fmt.Errorf("reading content encryption algorithm: %w", err)
	}
	var alg pkix.AlgorithmIdentifier
	if rest, err := asn1.Unmarshal(algDER, &alg); err != nil || len(rest) > 0 {
		return info, malformed("content encryption algorithm")
	}
	c, err := newContentDecrypter(alg)
	if err != nil {
		return info, err
	}
	info.Cipher = c.kind
	if info.AuthEnveloped && c.gcmNonce == nil {
		return info, fmt.Errorf("%w: AuthEnvelopedData with %s", ErrUnsupported, alg.Algorithm)
	}

	// Unwrap the key before touching the content, so a wrong key fails before any output.
	info.KeyTransport, err = c.unwrap(ri, key)
	if err != nil {
		return info, err
	}

	more, err := b.more(eci)
	if err != nil {
		return info, err
	}
	if !more {
		return info, fmt.Errorf("%w: detached encrypted content", ErrUnsupported)
	}
	h, err := b.readHeader()
	if err != nil {
		return info, err
	}
	if h.tag != 0x80 && h.tag != 0xa0 {
		return info, malformed("encrypted content has tag 0x%02x", h.tag)
	}
	limit := opts.MaxSize
	if limit <= 0 {
		limit = 1<<63 - 1
	}
	stream := b.openOctetStream(h, limit)
	n, err := c.run(dst, stream, info.AuthEnveloped)
	info.Size = n
	if err != nil {
		return info, err
	}
	if err := b.leave(eci, "EncryptedContentInfo"); err != nil {
		return info, err
	}
	if info.AuthEnveloped {
		tag, err := b.peekTag()
		if err != nil {
			return info, err
		}
		if tag == 0xa1 {
			return info, fmt.Errorf("%w: authenticated attributes", ErrUnsupported)
		}
		macDER, err := b.readElement(64)
		if err != nil {
			return info, fmt.Errorf("reading mac: %w", err)
		}
		var mac []byte
		if rest, err := asn1.Unmarshal(macDER, &mac); err != nil || len(rest) > 0 {
			return info, malformed("mac is not an OCTET STRING")
		}
		if err := c.checkTag(mac); err != nil {
			return info, err
		}
	}
	for { // unprotectedAttrs / unauthAttrs: nothing we act on, but still bounded
		more, err := b.more(ed)
		if err != nil {
			return info, err
		}
		if !more {
			break
		}
		if err := b.skipElement(maxSmallElement); err != nil {
			return info, err
		}
	}
	if err := b.leave(explicit, "content"); err != nil {
		return info, err
	}
	if err := b.leave(ci, "ContentInfo"); err != nil {
		return info, err
	}
	return info, nil
}

func pickRecipient(risDER []byte, opts DecryptOptions) (*keyTransRecipientInfo, error) {
	tag, body, err := splitTLV(risDER)
	if err != nil || tag != 0x31 {
		return nil, malformed("recipient infos are not a SET")
	}
	var first *keyTransRecipientInfo
	for len(body) > 0 {
		var raw asn1.RawValue
		body, err = asn1.Unmarshal(body, &raw)
		if err != nil {
			return nil, malformed("recipient info: %v", err)
		}
		if raw.Class != asn1.ClassUniversal || raw.Tag != asn1.TagSequence {
			continue // kari, kekri, pwri, ori: not ours to use
		}
		var ktri keyTransRecipientInfo
		if rest, err := asn1.Unmarshal(raw.FullBytes, &ktri); err != nil || len(rest) > 0 {
			return nil, malformed("key transport recipient info")
		}
		if first == nil {
			first = &ktri
		}
		if opts.Cert != nil && ridMatches(ktri.RID, opts.Cert) {
			return &ktri, nil
		}
	}
	if first == nil {
		return nil, fmt.Errorf("%w: no key transport recipient info", ErrUnsupported)
	}
	if opts.Cert != nil && !opts.FirstRecipient {
		return nil, ErrNoRecipient
	}
	return first, nil
}

func ridMatches(rid asn1.RawValue, cert *x509.Certificate) bool {
	if rid.Class == asn1.ClassContextSpecific && rid.Tag == 0 {
		return len(cert.SubjectKeyId) > 0 && bytes.Equal(rid.Bytes, cert.SubjectKeyId)
	}
	var ias issuerAndSerial
	if _, err := asn1.Unmarshal(rid.FullBytes, &ias); err != nil {
		return false
	}
	return bytes.Equal(ias.Issuer.FullBytes, cert.RawIssuer) && ias.Serial.Cmp(cert.SerialNumber) == 0
}

type contentDecrypter struct {
	kind     ContentCipher
	keyLen   int
	iv       []byte // CBC
	gcmNonce []byte // GCM
	tagLen   int
	block    cipher.Block
	cek      []byte // for the CBC mode's own key schedule
	gcm      *gcmStream
}

func newContentDecrypter(alg pkix.AlgorithmIdentifier) (*contentDecrypter, error) {
	o := alg.Algorithm
	switch {
	case o.Equal(oidAES256CBC), o.Equal(oidAES192CBC), o.Equal(oidAES128CBC):
		c := &contentDecrypter{kind: AES256CBC, keyLen: aesKeyLen(o)}
		if rest, err := asn1.Unmarshal(alg.Parameters.FullBytes, &c.iv); err != nil || len(rest) > 0 || len(c.iv) != aes.BlockSize {
			return nil, malformed("CBC parameters are not a 16-octet IV")
		}
		return c, nil
	case o.Equal(oidAES256GCM), o.Equal(oidAES192GCM), o.Equal(oidAES128GCM):
		var p gcmParams
		if rest, err := asn1.Unmarshal(alg.Parameters.FullBytes, &p); err != nil || len(rest) > 0 {
			return nil, malformed("GCM parameters")
		}
		if len(p.Nonce) != 12 {
			return nil, fmt.Errorf("%w: GCM nonce of %d octets", ErrUnsupported, len(p.Nonce))
		}
		if p.ICVLen < 12 || p.ICVLen > 16 {
			return nil, malformed("GCM tag length %d", p.ICVLen)
		}
		return &contentDecrypter{kind: AES256GCM, keyLen: aesKeyLen(o), gcmNonce: p.Nonce, tagLen: p.ICVLen}, nil
	}
	return nil, fmt.Errorf("%w: content encryption %s", ErrUnsupported, o)
}

func aesKeyLen(o asn1.ObjectIdentifier) int {
	switch o[len(o)-1] {
	case 2, 6:
		return 16
	case 22, 26:
		return 24
	}
	return 32
}

func (c *contentDecrypter) unwrap(ri *keyTransRecipientInfo, key *rsa.PrivateKey) (KeyTransport, error) {
	if key == nil {
		return 0, errors.New("cms: no private key")
	}
	var (
		cek []byte
		kt  KeyTransport
	)
	switch alg := ri.KeyEncryptionAlgorithm; {
	case alg.Algorithm.Equal(oidRSAEncryption):
		kt = RSAESPKCS1v15
		// A random key on failure, and no early error, keeps this from being a
		// Bleichenbacher oracle; a wrong key then fails as bad padding or tag.
		cek = make([]byte, c.keyLen)
		if _, err := io.ReadFull(rand.Reader, cek); err != nil {
			return 0, err
		}
		if err := rsa.DecryptPKCS1v15SessionKey(nil, key, ri.EncryptedKey, cek); err != nil {
			return 0, fmt.Errorf("%w: %v", ErrDecrypt, err)
		}
	case alg.Algorithm.Equal(oidRSAESOAEP):
		kt = RSAESOAEP
		opts, err := parseOAEP(alg.Parameters.FullBytes)
		if err != nil {
			return 0, err
		}
		cek, err = key.Decrypt(nil, ri.EncryptedKey, opts)
		if err != nil {
			return 0, fmt.Errorf("%w: unwrapping content key: %v", ErrDecrypt, err)
		}
	default:
		return 0, fmt.Errorf("%w: key transport %s", ErrUnsupported, alg.Algorithm)
	}
	if len(cek) != c.keyLen {
		return 0, fmt.Errorf("%w: content key of %d octets", ErrDecrypt, len(cek))
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return 0, err
	}
	c.block, c.cek = block, cek
	if c.gcmNonce != nil {
		if c.gcm, err = newGCMStream(block, c.gcmNonce); err != nil {
			return 0, err
		}
	}
	return kt, nil
}

func parseOAEP(params []byte) (*rsa.OAEPOptions, error) {
	opts := &rsa.OAEPOptions{Hash: crypto.SHA1, MGFHash: crypto.SHA1}
	if len(params) == 0 || bytes.Equal(params, []byte{0x05, 0x00}) {
		return opts, nil
	}
	var p oaepParams
	if rest, err := asn1.Unmarshal(params, &p); err != nil || len(rest) > 0 {
		return nil, malformed("OAEP parameters")
	}
	if p.Hash.Algorithm != nil {
		h, ok := hashByOID(p.Hash.Algorithm)
		if !ok {
			return nil, fmt.Errorf("%w: OAEP hash %s", ErrUnsupported, p.Hash.Algorithm)
		}
		opts.Hash = h
	}
	if p.MGF.Algorithm != nil {
		if !p.MGF.Algorithm.Equal(oidMGF1) {
			return nil, fmt.Errorf("%w: mask generation %s", ErrUnsupported, p.MGF.Algorithm)
		}
		var mh pkix.AlgorithmIdentifier
		if _, err := asn1.Unmarshal(p.MGF.Parameters.FullBytes, &mh); err != nil {
			return nil, malformed("MGF1 parameters")
		}
		h, ok := hashByOID(mh.Algorithm)
		if !ok {
			return nil, fmt.Errorf("%w: MGF1 hash %s", ErrUnsupported, mh.Algorithm)
		}
		opts.MGFHash = h
	}
	if p.PSource.Algorithm != nil {
		if !p.PSource.Algorithm.Equal(oidPSpecified) {
			return nil, fmt.Errorf("%w: OAEP pSource %s", ErrUnsupported, p.PSource.Algorithm)
		}
		if len(p.PSource.Parameters.FullBytes) > 0 {
			if _, err := asn1.Unmarshal(p.PSource.Parameters.FullBytes, &opts.Label); err != nil {
				return nil, malformed("OAEP label")
			}
		}
	}
	return opts, nil
}

// run decrypts the content stream to dst.
func (c *contentDecrypter) run(dst io.Writer, src io.Reader, authEnveloped bool) (int64, error) {
	var written int64
	write := func(p []byte) error {
		if len(p) == 0 {
			return nil
		}
		n, err := dst.Write(p)
		written += int64(n)
		if err != nil {
			return fmt.Errorf("writing plaintext: %w", err)
		}
		return nil
	}
	bp := chunkPool.Get().(*[]byte)
	in := &countingReader{r: src}
	src = in
	defer func() { putChunk(bp, in.n) }()
	if c.gcm == nil {
		mode := newCBC(c.cek, c.block, c.iv, true)
		var total int64
		tail, err := holdBack(src, *bp, aes.BlockSize, func(p []byte) error {
			total += int64(len(p))
			if len(p)%aes.BlockSize != 0 {
				return malformed("CBC ciphertext is not a whole number of blocks")
			}
			mode.CryptBlocks(p, p)
			return write(p)
		})
		if err != nil {
			return written, err
		}
		mode.CryptBlocks(tail, tail)
		pad := int(tail[aes.BlockSize-1])
		if pad == 0 || pad > aes.BlockSize {
			return written, fmt.Errorf("%w: bad padding", ErrDecrypt)
		}
		for _, v := range tail[aes.BlockSize-pad:] {
			if int(v) != pad {
				return written, fmt.Errorf("%w: bad padding", ErrDecrypt)
			}
		}
		return written, write(tail[:aes.BlockSize-pad])
	}
	keep := c.tagLen
	if authEnveloped {
		keep = 0
	}
	tail, err := holdBack(src, (*bp)[:chunkSize+keep], keep, func(p []byte) error {
		if err := c.gcm.open(p); err != nil {
			return err
		}
		return write(p)
	})
	if err != nil {
		return written, err
	}
	if !authEnveloped {
		return written, c.checkTag(tail)
	}
	return written, nil
}

func (c *contentDecrypter) checkTag(got []byte) error {
	want := c.gcm.tag()
	if len(got) != c.tagLen || subtle.ConstantTimeCompare(want[:c.tagLen], got) != 1 {
		return ErrAuthentication
	}
	return nil
}

// holdBack reads src to the end, calling fn with everything except the last keep octets,
// which it returns. fn gets chunks of len(buf)-keep octets, then one shorter final chunk.
func holdBack(src io.Reader, buf []byte, keep int, fn func([]byte) error) ([]byte, error) {
	n := 0
	for {
		m, err := io.ReadFull(src, buf[n:])
		n += m
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			if n < keep {
				return nil, malformed("encrypted content shorter than %d octets", keep)
			}
			if err := fn(buf[:n-keep]); err != nil {
				return nil, err
			}
			return buf[n-keep : n], nil
		}
		if err != nil {
			return nil, err
		}
		if err := fn(buf[:n-keep]); err != nil {
			return nil, err
		}
		copy(buf, buf[n-keep:n])
		n = keep
	}
}

package asic

import (
	"archive/zip"
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/efm-go/efm/packaging/cms"
)

// Limits bound what the reader accepts. The defaults follow channels.md §1.5: the largest
// channel limit is DPO's 1 GB per message, and DPI allows 200 attachments.
type Limits struct {
	// MaxEntries caps the number of zip entries, checked before the directory is parsed.
	MaxEntries int
	// MaxEntrySize caps one entry's uncompressed size.
	MaxEntrySize int64
	// MaxTotalSize caps the sum of uncompressed sizes, and the container's own size.
	MaxTotalSize int64
}

// DefaultLimits are used for zero fields of ReadOptions.Limits. The total
// leaves room above the 1 GB of documents for the container's own entries
// (manifests, signature) and for deflate's framing of incompressible data
// (5 octets per 64 KiB block): without it a message at exactly DPO's limit,
// which the sender accepts, is refused by its receiver.
var DefaultLimits = Limits{MaxEntries: 256, MaxEntrySize: 1 << 30, MaxTotalSize: 1<<30 + ContainerOverhead}

// ContainerOverhead is what a container may add to its documents' size.
const ContainerOverhead = 16 << 20

// SignatureKind says how a container is signed.
type SignatureKind int

const (
	CAdES SignatureKind = iota + 1
	XAdES
)

func (k SignatureKind) String() string {
	switch k {
	case CAdES:
		return "CAdES"
	case XAdES:
		return "XAdES"
	}
	return "unknown"
}

// ReadOptions steer Open.
type ReadOptions struct {
	// Roots are the trust anchors for the signer's certificate; must not be nil.
	Roots *x509.CertPool
	// CurrentTime is when the signer's chain must be valid; zero means now.
	CurrentTime time.Time
	Limits      Limits
}

// Container is an opened, verified ASiC-E container.
type Container struct {
	// Entries are the data entries (everything outside META-INF/ but mimetype), in zip
	// order, each verified against the signed digest.
	Entries     []*Entry
	Kind        SignatureKind
	Signer      *x509.Certificate
	SigningTime time.Time
	// Manifest is the eFormidling manifest.xml of a CAdES container, nil when absent.
	Manifest *Manifest
}

// Entry is one verified data entry.
type Entry struct {
	Name     string
	MimeType string
	Size     int64
	f        *zip.File
}

// Open returns the entry's content. The container was verified when it was opened; the
// reader still stops at the verified size.
func (e *Entry) Open() (io.ReadCloser, error) {
	rc, err := e.f.Open()
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", e.Name, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(rc, e.Size), rc}, nil
}

// Entry returns the data entry called name, or nil.
func (c *Container) Entry(name string) *Entry {
	for _, e := range c.Entries {
		if e.Name == name {
			return e
		}
	}
	return nil
}

// OpenFile opens and verifies the container at path. The file must stay unchanged while the
// Container is in use; close the returned closer when done.
func OpenFile(path string, opts ReadOptions) (*Container, io.Closer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("opening container: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("opening container: %w", err)
	}
	c, err := Open(f, st.Size(), opts)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return c, f, nil
}

// Open reads and verifies a container: structure, names, sizes, the signature and its
// chain to opts.Roots, and the digest of every data entry. Nothing it returns is
// unverified.
func Open(r io.ReaderAt, size int64, opts ReadOptions) (*Container, error) {
	lim := opts.Limits
	if lim.MaxEntries <= 0 {
		lim.MaxEntries = DefaultLimits.MaxEntries
	}
	if lim.MaxEntrySize <= 0 {
		lim.MaxEntrySize = DefaultLimits.MaxEntrySize
	}
	if lim.MaxTotalSize <= 0 {
		lim.MaxTotalSize = DefaultLimits.MaxTotalSize
	}
	if size > lim.MaxTotalSize {
		return nil, fmt.Errorf("%w: container of %d octets", ErrTooLarge, size)
	}
	if err := checkEntryCount(r, size, lim.MaxEntries); err != nil {
		return nil, err
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidContainer, err)
	}
	if len(zr.File) > lim.MaxEntries {
		return nil, fmt.Errorf("%w: %d entries", ErrTooLarge, len(zr.File))
	}
	if len(zr.File) == 0 || zr.File[0].Name != "mimetype" {
		return nil, fmt.Errorf("%w: mimetype is not the first entry", ErrInvalidContainer)
	}
	if zr.File[0].Method != zip.Store {
		return nil, fmt.Errorf("%w: mimetype is compressed", ErrInvalidContainer)
	}
	mt, err := readEntry(zr.File[0], int64(len(MimeType)))
	if err != nil || string(mt) != MimeType {
		return nil, fmt.Errorf("%w: mimetype is not %s", ErrInvalidContainer, MimeType)
	}

	var (
		total        uint64
		seen         = map[string]bool{}
		data         []*zip.File
		asicManifest []*zip.File
		p7s          = map[string]*zip.File{}
		xades        []*zip.File
	)
	for _, f := range zr.File[1:] {
		if f.Name == "META-INF/" && f.FileInfo().IsDir() {
			continue
		}
		if err := checkName(f.Name); err != nil {
			return nil, err
		}
		folded := strings.ToLower(f.Name)
		if seen[folded] || folded == "mimetype" {
			return nil, fmt.Errorf("%w: duplicate entry %q", ErrInvalidContainer, f.Name)
		}
		seen[folded] = true
		if f.UncompressedSize64 > uint64(lim.MaxEntrySize) {
			return nil, fmt.Errorf("%w: entry %q of %d octets", ErrTooLarge, f.Name, f.UncompressedSize64)
		}
		total += f.UncompressedSize64
		if total > uint64(lim.MaxTotalSize) {
			return nil, fmt.Errorf("%w: entries sum to over %d octets", ErrTooLarge, lim.MaxTotalSize)
		}
		switch {
		case !isMetaInf(f.Name):
			data = append(data, f)
		case strings.HasPrefix(f.Name, "META-INF/ASiCManifest") && strings.HasSuffix(f.Name, ".xml"):
			asicManifest = append(asicManifest, f)
		case strings.HasPrefix(f.Name, "META-INF/signature") && strings.HasSuffix(f.Name, ".p7s"):
			p7s[f.Name] = f
		case strings.HasPrefix(f.Name, "META-INF/signatures") && strings.HasSuffix(f.Name, ".xml"):
			xades = append(xades, f)
		}
	}

	c := &Container{}
	var digests map[string]signedDigest
	var chainCerts []*x509.Certificate
	switch {
	case len(xades) == 1 && len(asicManifest) == 0:
		c.Kind = XAdES
		doc, err := readEntry(xades[0], maxManifestSize)
		if err != nil {
			return nil, err
		}
		res, err := verifyXAdES(doc)
		if err != nil {
			return nil, err
		}
		c.Signer, c.SigningTime, digests, chainCerts = res.signer, res.when, res.digests, res.certs
		if err := verifyChain(c.Signer, chainCerts, opts); err != nil {
			return nil, err
		}
	case len(asicManifest) == 1 && len(xades) == 0:
		c.Kind = CAdES
		c.Signer, c.SigningTime, digests, err = verifyCAdES(asicManifest[0], p7s, opts)
		if err != nil {
			return nil, err
		}
	case len(xades)+len(asicManifest) == 0:
		return nil, fmt.Errorf("%w: no signature", ErrInvalidContainer)
	default:
		return nil, fmt.Errorf("%w: %d XAdES and %d CAdES manifests, want exactly one signature", ErrInvalidContainer, len(xades), len(asicManifest))
	}

	mimes := oasisMimeTypes(zr, lim)
	for _, f := range data {
		d, ok := digests[f.Name]
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrUnsigned, f.Name)
		}
		delete(digests, f.Name)
		n, err := checkDigest(f, d, lim.MaxEntrySize)
		if err != nil {
			return nil, err
		}
		c.Entries = append(c.Entries, &Entry{Name: f.Name, MimeType: mimes[f.Name], Size: n, f: f})
	}
	for name := range digests {
		return nil, fmt.Errorf("%w: signed entry %q is missing", ErrInvalidContainer, name)
	}
	if c.Kind == CAdES {
		if e := c.Entry(ManifestName); e != nil {
			rc, err := e.Open()
			if err != nil {
				return nil, err
			}
			c.Manifest, err = ParseManifest(rc)
			rc.Close()
			if err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

func verifyCAdES(mf *zip.File, p7s map[string]*zip.File, opts ReadOptions) (*x509.Certificate, time.Time, map[string]signedDigest, error) {
	manifest, err := readEntry(mf, maxManifestSize)
	if err != nil {
		return nil, time.Time{}, nil, err
	}
	var doc asicManifestDoc
	if err := xml.Unmarshal(manifest, &doc); err != nil {
		return nil, time.Time{}, nil, fmt.Errorf("%w: ASiCManifest: %v", ErrInvalidContainer, err)
	}
	if !asicNamespaces[doc.XMLName.Space] {
		return nil, time.Time{}, nil, fmt.Errorf("%w: ASiCManifest namespace %q", ErrInvalidContainer, doc.XMLName.Space)
	}
	sf := p7s[doc.SigRef.URI]
	if sf == nil {
		return nil, time.Time{}, nil, fmt.Errorf("%w: signature %q named by ASiCManifest is missing", ErrInvalidContainer, doc.SigRef.URI)
	}
	sig, err := readEntry(sf, cms.MaxSignatureSize)
	if err != nil {
		return nil, time.Time{}, nil, err
	}
	s, err := cms.VerifyDetached(sig, bytes.NewReader(manifest), cms.VerifyOptions{Roots: opts.Roots, CurrentTime: opts.CurrentTime})
	if err != nil {
		return nil, time.Time{}, nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	digests := map[string]signedDigest{}
	for _, r := range doc.Refs {
		var h crypto.Hash
		switch r.DigestMethod.Algorithm {
		case algSHA256:
			h = crypto.SHA256
		case algSHA512:
			h = crypto.SHA512
		case algSHA1:
			h = crypto.SHA1
		default:
			return nil, time.Time{}, nil, fmt.Errorf("%w: digest method %q", ErrSignature, r.DigestMethod.Algorithm)
		}
		v, err := base64.StdEncoding.DecodeString(strings.TrimSpace(r.DigestValue))
		if err != nil || len(v) != h.Size() {
			return nil, time.Time{}, nil, fmt.Errorf("%w: digest of %q", ErrInvalidContainer, r.URI)
		}
		if _, dup := digests[r.URI]; dup {
			return nil, time.Time{}, nil, fmt.Errorf("%w: %q referenced twice", ErrInvalidContainer, r.URI)
		}
		digests[r.URI] = signedDigest{hash: h, value: v}
	}
	return s.Cert, s.SigningTime, digests, nil
}

func verifyChain(signer *x509.Certificate, certs []*x509.Certificate, opts ReadOptions) error {
	if opts.Roots == nil {
		return fmt.Errorf("%w: %w: no trust anchors configured", ErrSignature, cms.ErrUntrustedSigner)
	}
	inter := x509.NewCertPool()
	for _, c := range certs {
		if c != signer {
			inter.AddCert(c)
		}
	}
	if _, err := signer.Verify(x509.VerifyOptions{
		Roots: opts.Roots, Intermediates: inter, CurrentTime: opts.CurrentTime,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return fmt.Errorf("%w: %w: %v", ErrSignature, cms.ErrUntrustedSigner, err)
	}
	return nil
}

// checkDigest streams the entry through its signed digest, stopping at limit octets.
func checkDigest(f *zip.File, d signedDigest, limit int64) (int64, error) {
	rc, err := f.Open()
	if err != nil {
		return 0, fmt.Errorf("%w: %q: %v", ErrInvalidContainer, f.Name, err)
	}
	defer rc.Close()
	h := d.hash.New()
	buf := copyBufs.Get().(*[]byte)
	n, err := io.CopyBuffer(h, io.LimitReader(rc, limit+1), *buf)
	copyBufs.Put(buf)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: %v", ErrInvalidContainer, f.Name, err)
	}
	if n > limit || uint64(n) != f.UncompressedSize64 {
		// archive/zip already refuses a size that differs from the header; the cap is the
		// line of defence against a header that lies about a bomb.
		return 0, fmt.Errorf("%w: entry %q", ErrTooLarge, f.Name)
	}
	if !bytes.Equal(h.Sum(nil), d.value) {
		return 0, fmt.Errorf("%w: %q", ErrDigestMismatch, f.Name)
	}
	return n, nil
}

// readEntry reads a small entry whole, refusing more than limit octets.
func readEntry(f *zip.File, limit int64) ([]byte, error) {
	if f.UncompressedSize64 > uint64(limit) {
		return nil, fmt.Errorf("%w: %q over %d octets", ErrTooLarge, f.Name, limit)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalidContainer, f.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalidContainer, f.Name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %q over %d octets", ErrTooLarge, f.Name, limit)
	}
	return b, nil
}

// oasisMimeTypes reads media types from META-INF/manifest.xml; they are informative (not
// signed in CAdES), so a missing or broken manifest only leaves them empty.
func oasisMimeTypes(zr *zip.Reader, lim Limits) map[string]string {
	out := map[string]string{}
	for _, f := range zr.File {
		if f.Name != "META-INF/manifest.xml" {
			continue
		}
		b, err := readEntry(f, maxManifestSize)
		if err != nil {
			return out
		}
		var doc struct {
			Entries []struct {
				Path string `xml:"full-path,attr"`
				Type string `xml:"media-type,attr"`
			} `xml:"file-entry"`
		}
		if xml.Unmarshal(b, &doc) == nil {
			for _, e := range doc.Entries {
				out[e.Path] = e.Type
			}
		}
	}
	return out
}

// checkEntryCount reads the end-of-central-directory record and refuses a container that
// declares more entries than allowed, before archive/zip allocates one header per entry.
func checkEntryCount(r io.ReaderAt, size int64, max int) error {
	const eocdLen = 22
	if size < eocdLen {
		return fmt.Errorf("%w: too short for a zip", ErrInvalidContainer)
	}
	tail := min(size, eocdLen+65535)
	buf := make([]byte, tail)
	if _, err := r.ReadAt(buf, size-tail); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading container: %w", err)
	}
	for i := len(buf) - eocdLen; i >= 0; i-- {
		if binary.LittleEndian.Uint32(buf[i:]) == 0x06054b50 {
			n := int(binary.LittleEndian.Uint16(buf[i+10:]))
			if n > max {
				return fmt.Errorf("%w: %d entries", ErrTooLarge, n)
			}
			return nil
		}
	}
	return fmt.Errorf("%w: no end of central directory", ErrInvalidContainer)
}

func isMetaInf(name string) bool { return strings.HasPrefix(name, "META-INF/") }

// checkName refuses names that could escape a directory when unpacked or that the
// channels forbid (channels.md §1.9.2): "..", a leading slash, backslashes, drive letters,
// control characters, directories.
func checkName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: entry name %q: %s", ErrInvalidContainer, name, why)
	}
	switch {
	case name == "":
		return bad("empty")
	case len(name) > 255:
		return bad("longer than 255 octets")
	case strings.Contains(name, ".."):
		return bad("contains ..")
	case strings.HasPrefix(name, "/"):
		return bad("absolute path")
	case strings.Contains(name, `\`):
		return bad("backslash")
	case len(name) >= 2 && name[1] == ':':
		return bad("drive letter")
	case strings.HasSuffix(name, "/"):
		return bad("directory")
	}
	for _, r := range name {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return bad("control or invalid character")
		}
	}
	if strings.Count(name, "/") > 0 && !isMetaInf(name) {
		return bad("directories are not allowed")
	}
	return nil
}

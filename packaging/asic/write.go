package asic

import (
	"archive/zip"
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
	"time"

	"github.com/efm-go/efm/packaging/cms"
	"github.com/klauspost/compress/flate"
)

// flateWriters are reused across entries and containers: a deflate writer holds about a
// megabyte of window and tables, which a container of 200 attachments would otherwise
// allocate 200 times.
var flateWriters sync.Pool

type pooledFlate struct{ *flate.Writer }

func (p pooledFlate) Close() error {
	err := p.Writer.Close()
	flateWriters.Put(p.Writer)
	return err
}

func pooledCompressor(out io.Writer) (io.WriteCloser, error) {
	if w, ok := flateWriters.Get().(*flate.Writer); ok {
		w.Reset(out)
		return pooledFlate{w}, nil
	}
	w, err := flate.NewWriter(out, flate.DefaultCompression)
	if err != nil {
		return nil, err
	}
	return pooledFlate{w}, nil
}

// copyBufs spare a container's every document the 32 KiB buffer io.Copy
// would allocate for it, packed or checked.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

type entryDigest struct {
	name   string
	mime   string
	sha256 []byte
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// zipWriter packs entries in order, hashing data entries as they stream through.
type zipWriter struct {
	zw      *zip.Writer
	modTime time.Time
	digests []entryDigest
	names   map[string]bool
}

func newZipWriter(w io.Writer, modTime time.Time) (*zipWriter, error) {
	z := &zipWriter{zw: zip.NewWriter(w), modTime: modTime, names: map[string]bool{}}
	// klauspost/compress's deflate (already in the build through NATS) writes the same
	// format several times faster than compress/flate; documents are often PDFs that barely
	// compress, where the standard library's default level spends the most for the least.
	z.zw.RegisterCompressor(zip.Deflate, pooledCompressor)
	if err := z.zw.SetComment(zipComment); err != nil {
		return nil, err
	}
	// mimetype goes first, stored, so that "mimetype" + MimeType sit at
	// fixed offsets where tools sniff them.
	if err := z.addStored("mimetype", []byte(MimeType)); err != nil {
		return nil, err
	}
	return z, nil
}

// MaxDataEntries is how many data entries (the eFormidling manifest and
// the documents) a CAdES container may hold: a receiver opens at most
// DefaultLimits.MaxEntries entries, and mimetype, META-INF/ASiCManifest.xml,
// the signature and META-INF/manifest.xml take four of them.
const MaxDataEntries = 256 - 4

// CheckDocumentName reports why WriteCAdES would refuse a document of this
// name, or nil: the rules of checkName, and no name the container itself
// uses (mimetype, the eFormidling manifest.xml, META-INF/).
func CheckDocumentName(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if isMetaInf(name) || name == "mimetype" || name == ManifestName {
		return fmt.Errorf("%w: entry name %q is reserved for the container", ErrInvalidContainer, name)
	}
	return nil
}

func (z *zipWriter) addData(f File) error {
	if err := checkName(f.Name); err != nil {
		return err
	}
	if isMetaInf(f.Name) || f.Name == "mimetype" {
		return fmt.Errorf("%w: data entry %q is a reserved name", ErrInvalidContainer, f.Name)
	}
	if z.names[f.Name] {
		return fmt.Errorf("%w: duplicate entry %q", ErrInvalidContainer, f.Name)
	}
	if f.Content == nil {
		return fmt.Errorf("%w: entry %q has no content", ErrInvalidContainer, f.Name)
	}
	z.names[f.Name] = true
	w, err := z.zw.CreateHeader(&zip.FileHeader{Name: f.Name, Method: zip.Deflate, Modified: z.modTime})
	if err != nil {
		return fmt.Errorf("writing %s: %w", f.Name, err)
	}
	h := sha256.New()
	buf := copyBufs.Get().(*[]byte)
	_, err = io.CopyBuffer(io.MultiWriter(w, h), f.Content, *buf)
	copyBufs.Put(buf)
	if err != nil {
		return fmt.Errorf("packing %s: %w", f.Name, err)
	}
	mime := f.MimeType
	if mime == "" {
		mime = "application/octet-stream"
	}
	z.digests = append(z.digests, entryDigest{name: f.Name, mime: mime, sha256: h.Sum(nil)})
	return nil
}

// addStored writes an entry uncompressed, with sizes and CRC in the local
// header and no data descriptor: Java's ZipInputStream, which the reference
// reads containers with, refuses a stored entry followed by a descriptor.
// The META-INF entries go this way too: a signature is DER that does not
// compress, the manifests are a few hundred bytes, and a deflate block of
// its own for each was a third of packing a small message's container.
func (z *zipWriter) addStored(name string, content []byte) error {
	w, err := z.zw.CreateRaw(&zip.FileHeader{
		Name:               name,
		Method:             zip.Store,
		CRC32:              crc32.ChecksumIEEE(content),
		CompressedSize64:   uint64(len(content)),
		UncompressedSize64: uint64(len(content)),
		Modified:           z.modTime,
	})
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if _, err := w.Write(content); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// CAdESOptions steer WriteCAdES.
type CAdESOptions struct {
	// Hash of the CAdES signature; zero keeps the reference's SHA-1 (see cms.SignOptions).
	Hash crypto.Hash
	// Time stamps the entries and the signature; zero means now.
	Time time.Time
}

// WriteCAdES packs files, in the order given, into an ASiC-E container signed with a
// detached CAdES signature (channels.md §1.9.2) and writes it to w. Put the eFormidling
// manifest first and the primary document next, as the reference orders them. Content is
// streamed; only digests are kept.
func WriteCAdES(w io.Writer, files []File, signer Signer, opts CAdESOptions) error {
	if len(files) > MaxDataEntries {
		return fmt.Errorf("%w: %d data entries, the receiver opens at most %d", ErrInvalidContainer, len(files), MaxDataEntries)
	}
	when := opts.Time
	if when.IsZero() {
		when = time.Now()
	}
	z, err := newZipWriter(w, when)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := z.addData(f); err != nil {
			return err
		}
	}
	sigName := "META-INF/signature-" + newUUID() + ".p7s"
	manifest := asicManifest(sigName, z.digests)
	if err := z.addStored("META-INF/ASiCManifest.xml", manifest); err != nil {
		return err
	}
	sig, err := cms.SignDetached(bytes.NewReader(manifest), signer.Cert, signer.Key, cms.SignOptions{
		Hash: opts.Hash, Chain: signer.Chain, SigningTime: when,
	})
	if err != nil {
		return fmt.Errorf("signing asic manifest: %w", err)
	}
	if err := z.addStored(sigName, sig); err != nil {
		return err
	}
	if err := z.addStored("META-INF/manifest.xml", oasisManifest(z.digests)); err != nil {
		return err
	}
	if err := z.zw.Close(); err != nil {
		return fmt.Errorf("finishing container: %w", err)
	}
	return nil
}

func newUUID() string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

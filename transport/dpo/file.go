package dpo

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"

	"github.com/efm-go/efm/transport"
)

// Names inside the broker file (spec channels.md §2.3 step 2, §2.4 step 4).
const (
	FileName   = "sbd.zip"
	EntrySBD   = "sbd.json"
	EntryASiC  = "asic.zip" // holds the CMS-encrypted package despite its name
	entryXML   = "content.xml"
	maxSBDSize = 16 << 20 // an SBD is a few kB; anything near this is not one
)

// Payload opens the encrypted package a message carries. It is called once
// to checksum the package and once to stream it, and again on a retried
// upload, so it must return the same bytes each time.
type Payload func() (io.ReadCloser, error)

// brokerFile is a plain ZIP with sbd.json and, when the message has files,
// asic.zip. Both entries are stored, not deflated: the CMS is random bytes
// and the SBD a few kB, and stored entries let the size be known before
// streaming, so the upload carries a Content-Length.
type brokerFile struct {
	sbd     []byte
	payload Payload
	crc     uint32
	size    int64
	hasASiC bool
	length  int64
}

func newBrokerFile(sbd []byte, payload Payload) (*brokerFile, error) {
	f := &brokerFile{sbd: sbd, payload: payload, hasASiC: payload != nil}
	if f.hasASiC {
		rc, err := payload()
		if err != nil {
			return nil, fmt.Errorf("opening payload: %w", err)
		}
		h := crc32.NewIEEE()
		n, err := copyPooled(h, rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("reading payload: %w", err)
		}
		f.crc, f.size = h.Sum32(), n
	}
	var cw countWriter
	if err := f.write(&cw, f.zeroPayload); err != nil {
		return nil, fmt.Errorf("sizing broker file: %w", err)
	}
	f.length = cw.n
	return f, nil
}

// write writes the ZIP to w, taking the package bytes from open.
func (f *brokerFile) write(w io.Writer, open Payload) error {
	zw := zip.NewWriter(w)
	if err := rawEntry(zw, EntrySBD, bytes.NewReader(f.sbd), crc32.ChecksumIEEE(f.sbd), int64(len(f.sbd))); err != nil {
		return err
	}
	if f.hasASiC {
		rc, err := open()
		if err != nil {
			return fmt.Errorf("opening payload: %w", err)
		}
		err = rawEntry(zw, EntryASiC, rc, f.crc, f.size)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return zw.Close()
}

func rawEntry(zw *zip.Writer, name string, r io.Reader, crc uint32, size int64) error {
	w, err := zw.CreateRaw(&zip.FileHeader{Name: name, Method: zip.Store, CRC32: crc,
		CompressedSize64: uint64(size), UncompressedSize64: uint64(size)})
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	n, err := copyPooled(w, r)
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("writing %s: payload changed between reads (%d != %d bytes)", name, n, size)
	}
	return nil
}

// copyBufs spare each copy of a package (checksum, sizing, upload: three per
// send) the 32 KiB buffer io.Copy would allocate for it.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyPooled copies through a pooled buffer. r is wrapped so that its own
// WriteTo, which for an *os.File into anything but a socket allocates a
// buffer of its own, is not used.
func copyPooled(w io.Writer, r io.Reader) (int64, error) {
	b := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(b)
	return io.CopyBuffer(w, struct{ io.Reader }{r}, *b)
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// zeroPayload stands in for the package when only the ZIP's length is
// wanted: stored entries make the length independent of the bytes.
func (f *brokerFile) zeroPayload() (io.ReadCloser, error) {
	return io.NopCloser(io.LimitReader(zeros{}, f.size)), nil
}

// WriteFile writes a complete broker file with sbd and, when payload is not
// nil, the package. The simulator uses it for the messages its peers send.
func WriteFile(w io.Writer, sbd []byte, payload []byte) error {
	var open Payload
	if payload != nil {
		open = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(payload)), nil }
	}
	f, err := newBrokerFile(sbd, open)
	if err != nil {
		return err
	}
	return f.write(w, open)
}

// File is a downloaded broker file: the SBD and, when present, the package.
type File struct {
	SBD    []byte
	Header transport.Header
	asic   *zip.File
	closer io.Closer
}

// HasPayload reports whether the file carries asic.zip.
func (f *File) HasPayload() bool { return f.asic != nil }

// PayloadSize is the size of asic.zip, 0 without one.
func (f *File) PayloadSize() int64 {
	if f.asic == nil {
		return 0
	}
	return int64(f.asic.UncompressedSize64)
}

// OpenPayload streams the encrypted package. It fails when there is none.
func (f *File) OpenPayload() (io.ReadCloser, error) {
	if f.asic == nil {
		return nil, errors.New("broker file has no asic.zip")
	}
	return f.asic.Open()
}

// Close releases the spooled download. The File is unusable afterwards.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	return f.closer.Close()
}

// ParseFile reads a broker file (spec channels.md §2.4 step 4): sbd.json is
// required and must carry a readable header; asic.zip is optional; other
// entries are ignored. Any failure is transport.ErrMalformed, which the
// caller answers by confirming and discarding the transfer (§2.4 step 5).
func ParseFile(r io.ReaderAt, size int64) (*File, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("%w: broker file is not a zip: %v", transport.ErrMalformed, err)
	}
	var sbd, xml, asic *zip.File
	for _, e := range zr.File {
		switch e.Name {
		case EntrySBD:
			if sbd == nil {
				sbd = e
			}
		case entryXML:
			if xml == nil {
				xml = e
			}
		case EntryASiC:
			if asic == nil {
				asic = e
			}
		}
	}
	if sbd == nil {
		if xml != nil {
			// TODO(transport): read the legacy XML SBD of older senders. #6
			return nil, fmt.Errorf("%w: only a legacy content.xml sbd, which is not supported", transport.ErrMalformed)
		}
		return nil, fmt.Errorf("%w: broker file without sbd.json", transport.ErrMalformed)
	}
	if sbd.UncompressedSize64 > maxSBDSize {
		return nil, fmt.Errorf("%w: sbd.json larger than %d bytes", transport.ErrMalformed, maxSBDSize)
	}
	rc, err := sbd.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: opening sbd.json: %v", transport.ErrMalformed, err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, maxSBDSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading sbd.json: %v", transport.ErrMalformed, err)
	}
	if len(raw) > maxSBDSize {
		return nil, fmt.Errorf("%w: sbd.json larger than %d bytes", transport.ErrMalformed, maxSBDSize)
	}
	h, err := transport.ParseHeader(raw)
	if err != nil {
		return nil, fmt.Errorf("reading sbd.json: %w", err)
	}
	return &File{SBD: raw, Header: h, asic: asic}, nil
}

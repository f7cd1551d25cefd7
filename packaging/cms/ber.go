package cms

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// The streaming BER reader. encoding/asn1 and cryptobyte need the whole value in memory and
// accept only DER, while a CMS from the reference is BER with indefinite lengths around a
// payload of up to gigabytes. So the outer frames are walked here one header at a time, the
// small parts (recipient infos, algorithm identifiers) are read whole under a size cap and
// normalised to DER for encoding/asn1, and the content is handed on as a stream.

const (
	// maxDepth bounds nesting so hostile input cannot recurse without end; real CMS
	// structures nest less than twenty deep.
	maxDepth = 32
	// maxSmallElement caps what is read into memory at once: a recipient info holds an
	// issuer name and a wrapped key (a few KiB); a SignedData a certificate chain.
	maxSmallElement = 1 << 20
)

// ErrMalformed is returned for input that is not the BER the CMS grammar asks for.
var ErrMalformed = errors.New("cms: malformed input")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

type berHeader struct {
	tag         byte // identifier octet; tags above 30 are refused (CMS uses none)
	constructed bool
	length      int64 // -1 for indefinite
	headerLen   int
}

type berReader struct {
	r   *bufio.Reader
	off int64 // bytes consumed
}

func newBERReader(r io.Reader) *berReader {
	// A small buffer: headers are parsed from it, while content reads larger than it go
	// straight from r into the caller's chunk instead of being copied twice.
	return &berReader{r: bufio.NewReaderSize(r, 8<<10)}
}

func (b *berReader) readByte() (byte, error) {
	c, err := b.r.ReadByte()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return 0, malformed("unexpected end at offset %d", b.off)
		}
		return 0, err
	}
	b.off++
	return c, nil
}

func (b *berReader) readHeader() (berHeader, error) {
	t, err := b.readByte()
	if err != nil {
		return berHeader{}, err
	}
	if t&0x1f == 0x1f {
		return berHeader{}, malformed("high tag number at offset %d", b.off-1)
	}
	h := berHeader{tag: t, constructed: t&0x20 != 0, headerLen: 2}
	l, err := b.readByte()
	if err != nil {
		return berHeader{}, err
	}
	switch {
	case l < 0x80:
		h.length = int64(l)
	case l == 0x80:
		if !h.constructed {
			return berHeader{}, malformed("indefinite length on a primitive at offset %d", b.off-2)
		}
		h.length = -1
	default:
		n := int(l & 0x7f)
		if n > 7 {
			return berHeader{}, malformed("length of %d octets at offset %d", n, b.off-1)
		}
		var v int64
		for range n {
			c, err := b.readByte()
			if err != nil {
				return berHeader{}, err
			}
			v = v<<8 | int64(c)
		}
		h.length = v
		h.headerLen += n
	}
	return h, nil
}

// atEOC reports whether the next two octets are an end-of-contents marker, consuming them
// if so.
func (b *berReader) atEOC() (bool, error) {
	p, err := b.r.Peek(2)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return false, malformed("missing end-of-contents at offset %d", b.off)
		}
		return false, err
	}
	if p[0] == 0 && p[1] == 0 {
		b.r.Discard(2)
		b.off += 2
		return true, nil
	}
	return false, nil
}

func (b *berReader) readFull(p []byte) error {
	n, err := io.ReadFull(b.r, p)
	b.off += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return malformed("unexpected end at offset %d", b.off)
		}
		return err
	}
	return nil
}

// frame is an open constructed element whose children are being read one by one.
type frame struct {
	end int64 // offset just past the contents; -1 when indefinite
}

// enter reads a constructed element's header, checks its tag and opens it.
func (b *berReader) enter(tag byte, what string) (frame, error) {
	h, err := b.readHeader()
	if err != nil {
		return frame{}, fmt.Errorf("reading %s: %w", what, err)
	}
	if h.tag != tag {
		return frame{}, malformed("%s: tag 0x%02x, want 0x%02x", what, h.tag, tag)
	}
	if h.length < 0 {
		return frame{end: -1}, nil
	}
	return frame{end: b.off + h.length}, nil
}

// more reports whether f has another child. At the end of an indefinite frame it consumes
// the end-of-contents marker.
func (b *berReader) more(f frame) (bool, error) {
	if f.end < 0 {
		eoc, err := b.atEOC()
		return !eoc, err
	}
	if b.off > f.end {
		return false, malformed("element overruns its parent at offset %d", b.off)
	}
	return b.off < f.end, nil
}

// leave closes f, which must have no children left.
func (b *berReader) leave(f frame, what string) error {
	more, err := b.more(f)
	if err != nil {
		return err
	}
	if more {
		return malformed("%s: unexpected trailing element at offset %d", what, b.off)
	}
	return nil
}

// readElement reads one whole element, at most limit octets of contents, and returns it
// as DER: indefinite lengths become definite, and constructed strings become primitive.
func (b *berReader) readElement(limit int) ([]byte, error) {
	h, err := b.readHeader()
	if err != nil {
		return nil, err
	}
	budget := limit
	return b.readElementBody(h, &budget, 0)
}

func (b *berReader) readElementBody(h berHeader, budget *int, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, malformed("nesting deeper than %d", maxDepth)
	}
	if !h.constructed {
		if h.length > int64(*budget) {
			return nil, malformed("element of %d octets exceeds the limit of %d", h.length, *budget)
		}
		*budget -= int(h.length)
		content := make([]byte, h.length)
		if err := b.readFull(content); err != nil {
			return nil, err
		}
		return derTLV(h.tag, content), nil
	}
	var children [][]byte
	f := frame{end: -1}
	if h.length >= 0 {
		if h.length > int64(*budget) {
			return nil, malformed("element of %d octets exceeds the limit of %d", h.length, *budget)
		}
		f.end = b.off + h.length
	}
	for {
		more, err := b.more(f)
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
		ch, err := b.readHeader()
		if err != nil {
			return nil, err
		}
		if *budget < ch.headerLen {
			return nil, malformed("element exceeds the size limit")
		}
		*budget -= ch.headerLen
		child, err := b.readElementBody(ch, budget, depth+1)
		if err != nil {
			return nil, err
		}
		children = append(children, child)
	}
	if h.tag == 0x24 || h.tag == 0x23 || h.tag == 0x2c {
		// A constructed OCTET/BIT/UTF8 STRING is BER only; DER has one primitive string.
		var content []byte
		for _, c := range children {
			_, body, err := splitTLV(c)
			if err != nil {
				return nil, err
			}
			content = append(content, body...)
		}
		return derTLV(h.tag&^0x20, content), nil
	}
	return derTLV(h.tag, bytes.Join(children, nil)), nil
}

func derTLV(tag byte, content []byte) []byte {
	out := make([]byte, 0, len(content)+6)
	out = append(out, tag)
	out = appendLength(out, len(content))
	return append(out, content...)
}

func appendLength(out []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(out, byte(n))
	case n < 0x100:
		return append(out, 0x81, byte(n))
	case n < 0x10000:
		return append(out, 0x82, byte(n>>8), byte(n))
	case n < 0x1000000:
		return append(out, 0x83, byte(n>>16), byte(n>>8), byte(n))
	default:
		return append(out, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// splitTLV splits a DER element produced by derTLV into tag and contents.
func splitTLV(der []byte) (byte, []byte, error) {
	if len(der) < 2 {
		return 0, nil, malformed("short element")
	}
	l := int(der[1])
	off := 2
	if l >= 0x80 {
		n := l & 0x7f
		if n == 0 || n > 4 || len(der) < 2+n {
			return 0, nil, malformed("bad length")
		}
		l = 0
		for _, c := range der[2 : 2+n] {
			l = l<<8 | int(c)
		}
		off += n
	}
	if len(der)-off != l {
		return 0, nil, malformed("length mismatch")
	}
	return der[0], der[off:], nil
}

// skipElement reads past one element without keeping it; used for optional parts we do not
// interpret, still under the size cap.
func (b *berReader) skipElement(limit int) error {
	_, err := b.readElement(limit)
	return err
}

// peekTag returns the next identifier octet without consuming it.
func (b *berReader) peekTag() (byte, error) {
	p, err := b.r.Peek(1)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return 0, malformed("unexpected end at offset %d", b.off)
		}
		return 0, err
	}
	return p[0], nil
}

// octetStream yields the contents of an OCTET STRING that may be primitive or constructed
// (of any nesting, definite or indefinite), without holding more than the reader's buffer.
type octetStream struct {
	b      *berReader
	stack  []frame // open constructed levels
	remain int64   // octets left in the current primitive segment
	done   bool
	limit  int64 // octets left before the caller's size cap
}

func (b *berReader) openOctetStream(h berHeader, limit int64) *octetStream {
	s := &octetStream{b: b, limit: limit}
	if !h.constructed {
		s.remain = h.length
		s.done = false
		s.stack = nil
		return s
	}
	end := int64(-1)
	if h.length >= 0 {
		end = b.off + h.length
	}
	s.stack = []frame{{end: end}}
	return s
}

// ErrTooLarge is returned when the content exceeds the caller's size cap.
var ErrTooLarge = errors.New("cms: content exceeds the size limit")

func (s *octetStream) Read(p []byte) (int, error) {
	for s.remain == 0 {
		if s.done {
			return 0, io.EOF
		}
		if len(s.stack) == 0 {
			s.done = true
			return 0, io.EOF
		}
		top := s.stack[len(s.stack)-1]
		more, err := s.b.more(top)
		if err != nil {
			return 0, err
		}
		if !more {
			s.stack = s.stack[:len(s.stack)-1]
			continue
		}
		h, err := s.b.readHeader()
		if err != nil {
			return 0, err
		}
		if h.tag&^0x20 != 0x04 {
			return 0, malformed("segment of encrypted content has tag 0x%02x", h.tag)
		}
		if h.constructed {
			if len(s.stack) >= maxDepth {
				return 0, malformed("nesting deeper than %d", maxDepth)
			}
			end := int64(-1)
			if h.length >= 0 {
				end = s.b.off + h.length
			}
			s.stack = append(s.stack, frame{end: end})
			continue
		}
		s.remain = h.length
	}
	if s.remain > s.limit {
		return 0, ErrTooLarge
	}
	if int64(len(p)) > s.remain {
		p = p[:s.remain]
	}
	n, err := s.b.r.Read(p)
	s.b.off += int64(n)
	s.remain -= int64(n)
	s.limit -= int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) {
			if s.remain > 0 {
				return n, malformed("content truncated")
			}
			err = nil
		}
		return n, err
	}
	return n, nil
}

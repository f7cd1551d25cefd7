// Package payload keeps message files encrypted at rest (local-api.md §5.2):
// uploaded attachments and received ASiC-E packages, under <data>/payload,
// with one local key in <data>/secrets/payload.key.
//
// A file is a sequence of AES-256-GCM chunks of 64 KiB plaintext under a key
// derived per file (HKDF-SHA-256 of the local key and a random salt in the
// file header), so nonces never repeat across files. The chunk counter and a
// last-chunk flag are in each nonce: chunks cannot be reordered, and a
// truncated file fails to read instead of reading short. Writing and reading
// stream, so memory stays at about one chunk whatever the file size.
//
// This package imports no other package of the daemon.
package payload

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

const (
	chunkSize = 64 << 10
	saltSize  = 32
	keySize   = 32
	magic     = "EFMP1\n"
)

// ErrCorrupt means a file failed authentication: it was altered, truncated
// or encrypted under another key.
var ErrCorrupt = errors.New("payload file is corrupt or truncated")

// ErrNotExist means no file has that name.
var ErrNotExist = fs.ErrNotExist

// Store is a directory of encrypted files. It is safe for concurrent use.
type Store struct {
	dir string
	key []byte
}

// Open uses dir for the files and the key at keyPath, creating both (key:
// 32 random bytes, mode 0600) when missing.
func Open(dir, keyPath string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating payload dir: %w", err)
	}
	key, err := loadOrCreateKey(keyPath)
	if err != nil {
		return nil, err
	}
	return &Store{dir: dir, key: key}, nil
}

func loadOrCreateKey(path string) ([]byte, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating secrets dir: %w", err)
	}
	k := make([]byte, keySize)
	rand.Read(k)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		_, werr := f.Write(k)
		if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
			return nil, fmt.Errorf("writing payload key: %w", err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("creating payload key: %w", err)
	}
	k, err = os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading payload key: %w", err)
	}
	if len(k) != keySize {
		return nil, fmt.Errorf("payload key %s must hold exactly %d bytes", path, keySize)
	}
	return k, nil
}

func (s *Store) aead(salt []byte) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, s.key, salt, "efm payload v1", keySize)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func nonce(buf []byte, counter uint64, last bool) []byte {
	binary.BigEndian.PutUint64(buf[:8], counter)
	binary.BigEndian.PutUint32(buf[8:12], 0)
	if last {
		buf[11] = 1
	}
	return buf[:12]
}

func (s *Store) path(name string) (string, error) {
	if _, err := hex.DecodeString(name); err != nil || len(name) != 32 {
		return "", fmt.Errorf("%w: bad payload name", ErrNotExist)
	}
	return filepath.Join(s.dir, name), nil
}

// InlineLimit is the largest plaintext CreateSmall keeps in memory instead of
// a file: one chunk. Most messages of the one-step send are this small, and
// creating a file costs more than the rest of accepting them.
const InlineLimit = chunkSize

// Writer encrypts one new file. Close commits it; Abort removes it.
type Writer struct {
	f       *os.File
	bw      *bufio.Writer
	mem     *bytes.Buffer // sealed bytes while the content is small (CreateSmall)
	s       *Store
	name    string
	aead    cipher.AEAD
	bufs    *[2][]byte // buf and out, from chunkBufs until Close or Abort
	buf     []byte     // plaintext of the current chunk
	out     []byte
	nonce   [12]byte
	counter uint64
	n       int64
	done    bool
}

// Create starts a new file with a random name.
func (s *Store) Create() (*Writer, error) {
	w, err := s.CreateSmall()
	if err != nil {
		return nil, err
	}
	if err := w.spill(); err != nil {
		return nil, err
	}
	return w, nil
}

// CreateSmall starts content that stays in memory, sealed, while it is at
// most InlineLimit bytes (Inline returns it after Close) and moves to a file
// once it grows beyond.
func (s *Store) CreateSmall() (*Writer, error) {
	salt := make([]byte, saltSize)
	rand.Read(salt)
	a, err := s.aead(salt)
	if err != nil {
		return nil, err
	}
	bufs := chunkBufs.Get().(*[2][]byte)
	w := &Writer{s: s, mem: &bytes.Buffer{}, aead: a, bufs: bufs, buf: bufs[0][:0], out: bufs[1][:0]}
	w.mem.WriteString(magic)
	w.mem.Write(salt)
	return w, nil
}

// spill moves the sealed bytes so far to a new file and continues there.
func (w *Writer) spill() error {
	var id [16]byte
	rand.Read(id[:])
	name := hex.EncodeToString(id[:])
	f, err := os.OpenFile(filepath.Join(w.s.dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating payload file: %w", err)
	}
	w.f, w.name, w.bw = f, name, bufio.NewWriterSize(f, chunkSize+64)
	_, err = w.bw.Write(w.mem.Bytes())
	w.mem = nil
	return err
}

// Name is the file's name, to store beside the record that owns it; "" when
// the content stayed in memory.
func (w *Writer) Name() string { return w.name }

// Inline is the sealed content after Close when it stayed in memory, nil
// otherwise. Open it with OpenInline.
func (w *Writer) Inline() []byte {
	if w.mem == nil {
		return nil
	}
	return w.mem.Bytes()
}

// Size is the number of plaintext bytes written so far.
func (w *Writer) Size() int64 { return w.n }

// Write encrypts p. A full chunk is sealed only when more data follows, so
// the last chunk always carries the last-chunk flag.
func (w *Writer) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		if len(w.buf) == chunkSize {
			if err := w.seal(false); err != nil {
				return total - len(p), err
			}
		}
		n := copy(w.buf[len(w.buf):chunkSize], p)
		w.buf = w.buf[:len(w.buf)+n]
		p = p[n:]
		w.n += int64(n)
	}
	return total, nil
}

// ReadFrom streams r into the file. It goes through Write, which seals a
// full chunk only once more data follows, so content of exactly one chunk
// still stays in memory with CreateSmall.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	bp := scratch.Get().(*[]byte)
	defer scratch.Put(bp)
	buf := *bp
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// chunkBufs recycles a writer's plaintext and ciphertext chunk buffers: two
// 64 KiB allocations per message were most of the garbage of a small send.
var chunkBufs = sync.Pool{New: func() any {
	return &[2][]byte{make([]byte, 0, chunkSize), make([]byte, 0, chunkSize+16)}
}}

func (w *Writer) release() {
	if w.bufs != nil {
		chunkBufs.Put(w.bufs)
		w.bufs, w.buf, w.out = nil, nil, nil
	}
}

var scratch = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

func (w *Writer) seal(last bool) error {
	if w.mem != nil && !last {
		// More than one chunk: too big to keep in memory.
		if err := w.spill(); err != nil {
			return err
		}
	}
	w.out = w.aead.Seal(w.out[:0], nonce(w.nonce[:], w.counter, last), w.buf, nil)
	w.counter++
	w.buf = w.buf[:0]
	if w.mem != nil {
		_, err := w.mem.Write(w.out)
		return err
	}
	_, err := w.bw.Write(w.out)
	return err
}

// Close seals the last chunk and closes the file.
func (w *Writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	err := w.seal(true)
	w.release()
	if w.mem != nil {
		return err
	}
	if err == nil {
		err = w.bw.Flush()
	}
	// No fsync: the store runs SQLite with synchronous=NORMAL, durable across
	// a crash of the process but not of the machine, and a file written
	// through the page cache has the same durability. An fsync per file
	// would cost more than everything else an accepted message does.
	if err = errors.Join(err, w.f.Close()); err != nil {
		os.Remove(w.f.Name())
		return fmt.Errorf("writing payload file: %w", err)
	}
	return nil
}

// Abort discards the file.
func (w *Writer) Abort() {
	w.release()
	if w.f == nil {
		w.done, w.mem = true, nil
		return
	}
	if !w.done {
		w.done = true
		w.f.Close()
	}
	os.Remove(w.f.Name())
}

// Open returns a reader of a file's plaintext. A read that meets tampering or
// truncation fails with ErrCorrupt.
func (s *Store) Open(name string) (io.ReadCloser, error) {
	p, err := s.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	r, err := s.reader(bufio.NewReaderSize(f, chunkSize+64), f, -1)
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

// OpenInline returns a reader of content kept in memory (Writer.Inline).
func (s *Store) OpenInline(sealed []byte) (io.ReadCloser, error) {
	return s.reader(bufio.NewReader(bytes.NewReader(sealed)), nil, int64(len(sealed)))
}

// reader reads a sealed stream of size bytes (-1: unknown). Its buffers
// fit an inline stream shorter than a chunk: two of a chunk's size for a
// 10 KB document were most of what packing a small message allocated.
func (s *Store) reader(br *bufio.Reader, f *os.File, size int64) (*reader, error) {
	head := make([]byte, len(magic)+saltSize)
	if _, err := io.ReadFull(br, head); err != nil || string(head[:len(magic)]) != magic {
		return nil, ErrCorrupt
	}
	a, err := s.aead(head[len(magic):])
	if err != nil {
		return nil, err
	}
	in, plain := chunkSize+a.Overhead(), chunkSize
	if rest := size - int64(len(head)); size >= 0 && rest < int64(in) {
		// One byte more than the rest, so that the last chunk reads short
		// as it does in a full-sized buffer.
		in, plain = int(max(rest, 0))+1, int(max(rest, 0))
	}
	return &reader{f: f, br: br, aead: a, in: make([]byte, in), pbuf: make([]byte, 0, plain)}, nil
}

type reader struct {
	f       *os.File
	br      *bufio.Reader
	aead    cipher.AEAD
	in      []byte
	pbuf    []byte
	plain   []byte
	nonce   [12]byte
	counter uint64
	last    bool
	err     error
}

func (r *reader) Read(p []byte) (int, error) {
	for len(r.plain) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.last {
			r.err = io.EOF
			if _, err := r.br.ReadByte(); err == nil {
				r.err = ErrCorrupt // data after the last chunk
			}
			return 0, r.err
		}
		r.next()
	}
	n := copy(p, r.plain)
	r.plain = r.plain[n:]
	return n, nil
}

func (r *reader) next() {
	n, err := io.ReadFull(r.br, r.in)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		r.err = err
		return
	}
	ct := r.in[:n]
	if n == len(r.in) {
		if pt, err := r.aead.Open(r.pbuf[:0], nonce(r.nonce[:], r.counter, false), ct, nil); err == nil {
			r.plain = pt
			r.counter++
			return
		}
	}
	pt, err := r.aead.Open(r.pbuf[:0], nonce(r.nonce[:], r.counter, true), ct, nil)
	if err != nil {
		r.err = ErrCorrupt
		return
	}
	r.plain, r.last = pt, true
	r.counter++
}

func (r *reader) Close() error {
	if r.f == nil {
		return nil
	}
	return r.f.Close()
}

// Remove deletes files; missing ones are ignored.
func (s *Store) Remove(names ...string) error {
	var errs []error
	for _, n := range names {
		if n == "" {
			continue
		}
		p, err := s.path(n)
		if err != nil {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

package payload

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func open(t *testing.T) (*Store, string) {
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "payload"), filepath.Join(dir, "secrets", "payload.key"))
	require.NoError(t, err)
	return s, dir
}

func write(t *testing.T, s *Store, small bool, data []byte) *Writer {
	var w *Writer
	var err error
	if small {
		w, err = s.CreateSmall()
	} else {
		w, err = s.Create()
	}
	require.NoError(t, err)
	_, err = w.ReadFrom(bytes.NewReader(data))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return w
}

func read(s *Store, w *Writer) ([]byte, error) {
	var r io.ReadCloser
	var err error
	if w.Name() == "" {
		r, err = s.OpenInline(w.Inline())
	} else {
		r, err = s.Open(w.Name())
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func TestRoundTrip(t *testing.T) {
	s, dir := open(t)
	for _, size := range []int{0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 3*chunkSize + 17} {
		data := make([]byte, size)
		rand.Read(data)
		for _, small := range []bool{false, true} {
			w := write(t, s, small, data)
			if small {
				assert.Equal(t, size <= InlineLimit, w.Name() == "", "size %d stays in memory only up to one chunk", size)
			}
			got, err := read(s, w)
			require.NoError(t, err, "size %d", size)
			assert.Equal(t, data, got, "size %d", size)
			if w.Name() != "" {
				raw, err := os.ReadFile(filepath.Join(dir, "payload", w.Name()))
				require.NoError(t, err)
				if size > 16 {
					assert.NotContains(t, string(raw), string(data[:16]), "plaintext on disk")
				}
			}
		}
	}
	info, err := os.Stat(filepath.Join(dir, "secrets", "payload.key"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
}

func TestTamperAndTruncation(t *testing.T) {
	s, dir := open(t)
	data := bytes.Repeat([]byte("eFormidling "), 3*chunkSize/12)
	w := write(t, s, false, data)
	path := filepath.Join(dir, "payload", w.Name())
	orig, err := os.ReadFile(path)
	require.NoError(t, err)

	cases := map[string][]byte{
		"flipped byte":         flip(orig, len(orig)/2),
		"truncated at a chunk": orig[:len(magic)+saltSize+chunkSize+16],
		"last chunk dropped":   orig[:len(orig)-20],
		"bytes appended":       append(append([]byte{}, orig...), 0),
		"header damaged":       flip(orig, 1),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(path, b, 0o600))
			_, err := read(s, w)
			assert.ErrorIs(t, err, ErrCorrupt)
		})
	}

	t.Run("another key", func(t *testing.T) {
		require.NoError(t, os.WriteFile(path, orig, 0o600))
		other, err := Open(filepath.Join(dir, "payload"), filepath.Join(t.TempDir(), "other.key"))
		require.NoError(t, err)
		_, err = read(other, w)
		assert.ErrorIs(t, err, ErrCorrupt)
	})
}

// TestTamperInline holds content kept in memory, read through buffers the
// size of the content, to the same rule as a file.
func TestTamperInline(t *testing.T) {
	s, _ := open(t)
	w := write(t, s, true, bytes.Repeat([]byte("eFormidling "), 800))
	orig := w.Inline()
	require.NotNil(t, orig)
	cases := map[string][]byte{
		"flipped byte":   flip(orig, len(orig)/2),
		"truncated":      orig[:len(orig)-1],
		"only a header":  orig[:len(magic)+saltSize],
		"bytes appended": append(append([]byte{}, orig...), 0),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			r, err := s.OpenInline(b)
			if err == nil {
				_, err = io.ReadAll(r)
			}
			assert.ErrorIs(t, err, ErrCorrupt)
		})
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte{}, b...)
	c[i] ^= 0x40
	return c
}

func TestKeyIsKept(t *testing.T) {
	dir := t.TempDir()
	s1, err := Open(filepath.Join(dir, "p"), filepath.Join(dir, "k"))
	require.NoError(t, err)
	w := write(t, s1, false, []byte("hei"))
	s2, err := Open(filepath.Join(dir, "p"), filepath.Join(dir, "k"))
	require.NoError(t, err)
	got, err := read(s2, w)
	require.NoError(t, err)
	assert.Equal(t, "hei", string(got))

	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad"), []byte("short"), 0o600))
	_, err = Open(filepath.Join(dir, "p"), filepath.Join(dir, "bad"))
	assert.Error(t, err)
}

func TestAbortAndRemove(t *testing.T) {
	s, dir := open(t)
	w, err := s.Create()
	require.NoError(t, err)
	w.Write([]byte("x"))
	w.Abort()
	es, _ := os.ReadDir(filepath.Join(dir, "payload"))
	assert.Empty(t, es)

	w = write(t, s, false, []byte("y"))
	require.NoError(t, s.Remove(w.Name(), "", "../../etc/passwd", "0123456789abcdef0123456789abcdef"))
	_, err = s.Open(w.Name())
	assert.True(t, errors.Is(err, ErrNotExist))
	_, err = s.Open("../secrets/payload.key")
	assert.ErrorIs(t, err, ErrNotExist)
}

func BenchmarkWrite1MiB(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(filepath.Join(dir, "p"), filepath.Join(dir, "k"))
	require.NoError(b, err)
	data := make([]byte, 1<<20)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		w, _ := s.Create()
		w.ReadFrom(bytes.NewReader(data))
		w.Close()
		s.Remove(w.Name())
	}
}

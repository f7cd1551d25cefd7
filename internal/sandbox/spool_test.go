package sandbox

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSpool_MovesToAFilePastItsLimit: what was written before and after the
// limit reads back whole, from a file that close removes.
func TestSpool_MovesToAFilePastItsLimit(t *testing.T) {
	for _, size := range []int{10, 16, 17, 40} {
		want := bytes.Repeat([]byte("0123456789"), 4)[:size]
		s := &spool{limit: 16}
		for p := want; len(p) > 0; {
			n := min(len(p), 7)
			_, err := s.Write(p[:n])
			require.NoError(t, err)
			p = p[n:]
		}
		got := make([]byte, size)
		_, err := s.readerAt().ReadAt(got, 0)
		if err == io.EOF {
			err = nil
		}
		require.NoError(t, err)
		require.Equal(t, want, got, "size %d", size)
		require.Equal(t, size > 16, s.f != nil, "size %d on disk", size)
		s.close()
		if s.f != nil {
			_, err := os.Stat(s.f.Name())
			require.ErrorIs(t, err, os.ErrNotExist)
		}
	}
}

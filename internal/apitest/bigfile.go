package apitest

import (
	"crypto/aes"
	"crypto/cipher"
	"io"
	"os"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/internal/procstat"
)

// Incompressible is a deterministic stream of size bytes that no compressor
// shrinks: an AES-CTR key stream, seeded by seed. Zeros compress to nothing
// and hide what a real file costs; math/rand/v2's ChaCha8 would do, but at
// a few hundred MB/s here it, not the daemon, would be what a 1 GiB test
// measures. AES-CTR runs at several GB/s.
func Incompressible(size int64, seed byte) io.Reader {
	var key [16]byte
	key[0] = seed
	b, _ := aes.NewCipher(key[:])
	return io.LimitReader(&keyStream{s: cipher.NewCTR(b, make([]byte, aes.BlockSize))}, size)
}

type keyStream struct{ s cipher.Stream }

func (k *keyStream) Read(p []byte) (int, error) {
	clear(p)
	k.s.XORKeyStream(p, p)
	return len(p), nil
}

// Resident is this process's resident set size in bytes (Linux; elsewhere
// the test is skipped).
func Resident(tb testing.TB) int64 {
	if runtime.GOOS != "linux" {
		tb.Skip("resident memory is read from /proc: Linux only")
	}
	n, err := procstat.RSS(os.Getpid())
	require.NoError(tb, err)
	return n
}

// Zeros is a body of Size zero bytes that says how much of it was read:
// a test of a size limit sees whether the server answered before reading.
type Zeros struct {
	Size int64
	n    atomic.Int64
}

// Read implements io.Reader.
func (z *Zeros) Read(p []byte) (int, error) {
	if z.n.Load() >= z.Size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), z.Size-z.n.Load())
	clear(p[:n])
	z.n.Add(n)
	return int(n), nil
}

// ReadSoFar returns how many bytes were read.
func (z *Zeros) ReadSoFar() int64 { return z.n.Load() }

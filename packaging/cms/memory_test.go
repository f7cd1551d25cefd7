package cms

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEncryptDecrypt_ConstantMemory streams payloads through Encrypt and Decrypt over a
// pipe, never holding them, and checks that the bytes allocated do not grow with the
// payload: 16 MiB and 96 MiB must cost the same few hundred KiB.
func TestEncryptDecrypt_ConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 112 MiB")
	}
	id := pki.Orgs[orgA]
	allocated := func(size int64, c combo) uint64 {
		src := io.LimitReader(rand.NewChaCha8([32]byte{1}), size)
		want := sha256.New()
		pr, pw := io.Pipe()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		go func() {
			_, err := Encrypt(pw, io.TeeReader(src, want), id.Cert, EncryptOptions{KeyTransport: c.kt, Cipher: c.cipher, AuthEnveloped: c.auth})
			pw.CloseWithError(err)
		}()
		got := sha256.New()
		info, err := Decrypt(got, pr, id.Key, DecryptOptions{Cert: id.Cert})
		runtime.ReadMemStats(&after)
		require.NoError(t, err)
		require.Equal(t, size, info.Size)
		require.True(t, bytes.Equal(want.Sum(nil), got.Sum(nil)), "round trip differs")
		return after.TotalAlloc - before.TotalAlloc
	}
	for _, c := range []combo{{RSAESOAEP, AES256CBC, false}, {RSAESOAEP, AES256GCM, false}} {
		t.Run(c.String(), func(t *testing.T) {
			small := allocated(16<<20, c)
			large := allocated(96<<20, c)
			t.Logf("allocated %d KiB for 16 MiB, %d KiB for 96 MiB", small>>10, large>>10)
			assert.Less(t, large, uint64(4<<20), "a 96 MiB payload must not be buffered")
			assert.Less(t, large, 2*small+(1<<20), "allocation grows with the payload")
		})
	}
}

package cms

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGCMStream_MatchesCryptoCipher checks the streamed GCM against crypto/cipher for
// lengths around block and chunk boundaries and for several chunkings of the same message.
func TestGCMStream_MatchesCryptoCipher(t *testing.T) {
	key := make([]byte, 32)
	nonce := make([]byte, 12)
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 100, 4096, 4097, 70000} {
		for _, piece := range []int{16, 48, 4096} {
			rand.Read(key)
			rand.Read(nonce)
			msg := make([]byte, n)
			rand.Read(msg)
			block, err := aes.NewCipher(key)
			require.NoError(t, err)
			aead, err := cipher.NewGCM(block)
			require.NoError(t, err)
			want := aead.Seal(nil, nonce, msg, nil)

			s, err := newGCMStream(block, nonce)
			require.NoError(t, err)
			ct := bytes.Clone(msg)
			for off := 0; off < len(ct); off += piece {
				require.NoError(t, s.seal(ct[off:min(off+piece, len(ct))]))
			}
			tag := s.tag()
			assert.Equal(t, want, append(ct, tag[:]...), "n=%d piece=%d", n, piece)

			d, err := newGCMStream(block, nonce)
			require.NoError(t, err)
			for off := 0; off < len(ct); off += piece {
				require.NoError(t, d.open(ct[off:min(off+piece, len(ct))]))
			}
			assert.Equal(t, tag, d.tag())
			assert.Equal(t, msg, ct)
		}
	}
}

func TestGF_Inverse(t *testing.T) {
	var b [16]byte
	rand.Read(b[:])
	x := gfFromBytes(b[:])
	assert.Equal(t, gfOne, x.mul(x.inv()))
	assert.Equal(t, x.mul(x).mul(x), x.pow(3))
}

package cms

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type combo struct {
	kt     KeyTransport
	cipher ContentCipher
	auth   bool
}

func (c combo) String() string {
	s := c.kt.String() + "/" + c.cipher.String()
	if c.auth {
		s += "/AuthEnveloped"
	}
	return s
}

var combos = []combo{
	{RSAESOAEP, AES256CBC, false},
	{RSAESPKCS1v15, AES256CBC, false},
	{RSAESOAEP, AES256GCM, false},
	{RSAESPKCS1v15, AES256GCM, false},
	{RSAESOAEP, AES256GCM, true},
	{RSAESPKCS1v15, AES256GCM, true},
}

func TestEncryptDecrypt_RoundTrip(t *testing.T) {
	id := pki.Orgs[orgA]
	for _, c := range combos {
		for _, n := range []int{0, 1, 15, 16, 17, chunkSize - 1, chunkSize, chunkSize + 1, 3*chunkSize + 5} {
			t.Run(fmt.Sprintf("%s/%d", c, n), func(t *testing.T) {
				msg := make([]byte, n)
				rand.Read(msg)
				var ct bytes.Buffer
				read, err := Encrypt(&ct, bytes.NewReader(msg), id.Cert, EncryptOptions{KeyTransport: c.kt, Cipher: c.cipher, AuthEnveloped: c.auth})
				require.NoError(t, err)
				assert.Equal(t, int64(n), read)

				var pt bytes.Buffer
				info, err := Decrypt(&pt, bytes.NewReader(ct.Bytes()), id.Key, DecryptOptions{Cert: id.Cert})
				require.NoError(t, err)
				assert.True(t, bytes.Equal(msg, pt.Bytes()))
				assert.Equal(t, Info{KeyTransport: c.kt, Cipher: c.cipher, AuthEnveloped: c.auth && c.cipher == AES256GCM, Size: int64(n)}, info)
			})
		}
	}
}

func TestDecrypt_Refusals(t *testing.T) {
	a, b := pki.Orgs[orgA], pki.Orgs[orgB]
	msg := bytes.Repeat([]byte("eFormidling "), 50000)
	for _, c := range combos {
		t.Run(c.String(), func(t *testing.T) {
			var ct bytes.Buffer
			_, err := Encrypt(&ct, bytes.NewReader(msg), a.Cert, EncryptOptions{KeyTransport: c.kt, Cipher: c.cipher, AuthEnveloped: c.auth})
			require.NoError(t, err)

			t.Run("tampered ciphertext", func(t *testing.T) {
				bad := bytes.Clone(ct.Bytes())
				bad[len(bad)/2] ^= 0x01 // inside the encrypted content
				_, err := Decrypt(&bytes.Buffer{}, bytes.NewReader(bad), a.Key, DecryptOptions{Cert: a.Cert})
				if c.cipher == AES256GCM {
					assert.ErrorIs(t, err, ErrAuthentication)
				} else {
					// CBC has no integrity of its own (the ASiC signature inside provides
					// it); a flip in the middle garbles two blocks but leaves the padding.
					// A flip in the last block must break the padding.
					bad := bytes.Clone(ct.Bytes())
					bad[len(bad)-10-16] ^= 0x80 // padding block's predecessor, last byte of the IV-side block
					_, err := Decrypt(&bytes.Buffer{}, bytes.NewReader(bad), a.Key, DecryptOptions{Cert: a.Cert})
					assert.ErrorIs(t, err, ErrDecrypt)
				}
			})
			t.Run("wrong recipient", func(t *testing.T) {
				_, err := Decrypt(&bytes.Buffer{}, bytes.NewReader(ct.Bytes()), b.Key, DecryptOptions{Cert: b.Cert})
				assert.ErrorIs(t, err, ErrNoRecipient)
				_, err = Decrypt(&bytes.Buffer{}, bytes.NewReader(ct.Bytes()), b.Key, DecryptOptions{})
				assert.Error(t, err)
			})
			t.Run("truncated", func(t *testing.T) {
				_, err := Decrypt(&bytes.Buffer{}, bytes.NewReader(ct.Bytes()[:ct.Len()-100]), a.Key, DecryptOptions{Cert: a.Cert})
				assert.Error(t, err)
			})
			t.Run("size cap", func(t *testing.T) {
				_, err := Decrypt(&bytes.Buffer{}, bytes.NewReader(ct.Bytes()), a.Key, DecryptOptions{Cert: a.Cert, MaxSize: 1000})
				assert.ErrorIs(t, err, ErrTooLarge)
			})
		})
	}
}

func opensslCert(t *testing.T) (certPath, keyPath string) {
	id := pki.Orgs[orgA]
	return id.CertPEMPath, id.KeyPEMPath
}

// TestEncrypt_OpenSSLDecrypts: openssl cms -decrypt opens what we write, streamed BER with
// indefinite lengths, for every key transport and cipher pair.
func TestEncrypt_OpenSSLDecrypts(t *testing.T) {
	openssl := requireTool(t, "openssl", "openssl")
	certPath, keyPath := opensslCert(t)
	msg := make([]byte, 2*chunkSize+123)
	rand.Read(msg)
	for _, c := range []combo{
		{RSAESOAEP, AES256CBC, false},
		{RSAESPKCS1v15, AES256CBC, false},
		{RSAESOAEP, AES256GCM, true},
		{RSAESPKCS1v15, AES256GCM, true},
	} {
		t.Run(c.String(), func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "pkg.cms")
			out := filepath.Join(dir, "pkg.out")
			f, err := os.Create(in)
			require.NoError(t, err)
			_, err = Encrypt(f, bytes.NewReader(msg), pki.Orgs[orgA].Cert, EncryptOptions{KeyTransport: c.kt, Cipher: c.cipher, AuthEnveloped: c.auth})
			require.NoError(t, err)
			require.NoError(t, f.Close())
			cmd := exec.Command(openssl, "cms", "-decrypt", "-binary", "-inform", "DER", "-in", in,
				"-recip", certPath, "-inkey", keyPath, "-out", out)
			outText, err := cmd.CombinedOutput()
			require.NoError(t, err, "openssl: %s", outText)
			got, err := os.ReadFile(out)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(msg, got), "openssl's plaintext differs")
		})
	}
}

// TestEncrypt_OpenSSLSeesOAEPParameters checks with openssl asn1parse that the OAEP
// parameters are written out in full, as channels.md §1.9.1 requires.
func TestEncrypt_OpenSSLSeesOAEPParameters(t *testing.T) {
	openssl := requireTool(t, "openssl", "openssl")
	in := filepath.Join(t.TempDir(), "pkg.cms")
	f, err := os.Create(in)
	require.NoError(t, err)
	_, err = Encrypt(f, bytes.NewReader([]byte("x")), pki.Orgs[orgA].Cert, EncryptOptions{})
	require.NoError(t, err)
	require.NoError(t, f.Close())
	out, err := exec.Command(openssl, "asn1parse", "-inform", "DER", "-in", in, "-i").CombinedOutput()
	require.NoError(t, err, "%s", out)
	text := string(out)
	for _, want := range []string{"pkcs7-envelopedData", "rsaesOaep", "sha256", "mgf1", "pSpecified", "pkcs7-data", "aes-256-cbc"} {
		assert.Contains(t, text, ":"+want, want)
	}
}

// TestDecrypt_OpenSSLEncrypted: we open what openssl cms -encrypt writes, in DER and in
// streamed BER, for every key transport and cipher pair. OpenSSL 3 writes GCM as
// AuthEnvelopedData.
func TestDecrypt_OpenSSLEncrypted(t *testing.T) {
	openssl := requireTool(t, "openssl", "openssl")
	certPath, _ := opensslCert(t)
	id := pki.Orgs[orgA]
	msg := make([]byte, 3*chunkSize+7)
	rand.Read(msg)
	dir := t.TempDir()
	plain := filepath.Join(dir, "pkg.asice")
	require.NoError(t, os.WriteFile(plain, msg, 0o600))
	for _, kt := range []KeyTransport{RSAESOAEP, RSAESPKCS1v15} {
		for _, cipherName := range []string{"-aes-256-cbc", "-aes-256-gcm"} {
			for _, stream := range []bool{false, true} {
				name := fmt.Sprintf("%s/%s/stream=%v", kt, cipherName[1:], stream)
				t.Run(name, func(t *testing.T) {
					out := filepath.Join(t.TempDir(), "pkg.cms")
					args := []string{"cms", "-encrypt", "-binary", cipherName, "-outform", "DER", "-recip", certPath}
					if kt == RSAESOAEP {
						args = append(args, "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256", "-keyopt", "rsa_mgf1_md:sha256")
					}
					if stream {
						args = append(args, "-stream")
					}
					args = append(args, "-in", plain, "-out", out)
					text, err := exec.Command(openssl, args...).CombinedOutput()
					require.NoError(t, err, "openssl: %s", text)
					f, err := os.Open(out)
					require.NoError(t, err)
					defer f.Close()
					var pt bytes.Buffer
					info, err := Decrypt(&pt, f, id.Key, DecryptOptions{Cert: id.Cert})
					require.NoError(t, err)
					assert.True(t, bytes.Equal(msg, pt.Bytes()))
					assert.Equal(t, kt, info.KeyTransport)
				})
			}
		}
	}
}

package cms

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// BenchmarkCMSOpenSSL puts Encrypt and Decrypt next to openssl on the same 100 MB file in
// the same iteration, both reading the file and writing to /dev/null, so both see the same
// load on a shared machine. Two baselines:
//
//   - vs-enc: `openssl enc` with the same cipher, the bare cipher with openssl's
//     assembly (CBC only: enc takes no AEAD cipher);
//   - vs-cms: `openssl cms -encrypt -stream` / `-decrypt`, the same job; decryption
//     reads the very file Encrypt wrote.
//
// A ratio is openssl's time over ours, as a median of the iterations (run with
// -benchtime=5x or more): 1.0 is openssl's speed, above is faster. Only our side is on
// the clock (ns/op, MB/s).
func BenchmarkCMSOpenSSL(b *testing.B) {
	openssl := requireTool(b, "openssl", "openssl")
	id := pki.Orgs[orgA]
	dir := b.TempDir()
	plain := filepath.Join(dir, "plain")
	writeFile(b, plain, func(w io.Writer) error { _, err := io.CopyN(w, rand.Reader, benchSize); return err })
	key, iv := make([]byte, 32), make([]byte, 16)
	rand.Read(key)
	rand.Read(iv)
	encArgs := []string{"enc", "-aes-256-cbc", "-K", hex.EncodeToString(key), "-iv", hex.EncodeToString(iv)}
	rawCBC := filepath.Join(dir, "raw-cbc")
	run(b, openssl, append(slices.Clone(encArgs), "-in", plain, "-out", rawCBC)...)

	for _, c := range []struct {
		name, opensslCipher string
		opts                EncryptOptions
	}{
		{"AES-256-CBC", "-aes-256-cbc", EncryptOptions{KeyTransport: RSAESOAEP, Cipher: AES256CBC}},
		{"AES-256-GCM", "-aes-256-gcm", EncryptOptions{KeyTransport: RSAESOAEP, Cipher: AES256GCM, AuthEnveloped: true}},
	} {
		ours := filepath.Join(dir, c.name+".cms")
		writeFile(b, ours, func(w io.Writer) error {
			f, err := os.Open(plain)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = Encrypt(w, f, id.Cert, c.opts)
			return err
		})
		for _, dir := range []string{"encrypt", "decrypt"} {
			b.Run(c.name+"/"+dir, func(b *testing.B) {
				var ourCmd func() error
				var baselines []struct {
					name string
					args []string
				}
				if dir == "encrypt" {
					ourCmd = func() error {
						return withFiles(plain, func(in io.Reader, out io.Writer) error {
							_, err := Encrypt(out, in, id.Cert, c.opts)
							return err
						})
					}
					if c.opts.Cipher == AES256CBC {
						baselines = append(baselines, struct {
							name string
							args []string
						}{"vs-enc", append(slices.Clone(encArgs), "-in", plain, "-out", os.DevNull)})
					}
					baselines = append(baselines, struct {
						name string
						args []string
					}{"vs-cms", []string{"cms", "-encrypt", "-binary", "-stream", c.opensslCipher, "-recip", id.CertPEMPath,
						"-keyopt", "rsa_padding_mode:oaep", "-outform", "DER", "-in", plain, "-out", os.DevNull}})
				} else {
					ourCmd = func() error {
						return withFiles(ours, func(in io.Reader, out io.Writer) error {
							_, err := Decrypt(out, in, id.Key, DecryptOptions{Cert: id.Cert})
							return err
						})
					}
					if c.opts.Cipher == AES256CBC {
						baselines = append(baselines, struct {
							name string
							args []string
						}{"vs-enc", append(slices.Clone(encArgs), "-d", "-in", rawCBC, "-out", os.DevNull)})
					}
					baselines = append(baselines, struct {
						name string
						args []string
					}{"vs-cms", []string{"cms", "-decrypt", "-binary", "-inform", "DER", "-in", ours,
						"-recip", id.CertPEMPath, "-inkey", id.KeyPEMPath, "-out", os.DevNull}})
				}
				ratios := make([][]float64, len(baselines))
				b.SetBytes(benchSize)
				for b.Loop() {
					t0 := time.Now()
					if err := ourCmd(); err != nil {
						b.Fatal(err)
					}
					own := time.Since(t0)
					b.StopTimer()
					for i, bl := range baselines {
						t0 := time.Now()
						run(b, openssl, bl.args...)
						ratios[i] = append(ratios[i], float64(time.Since(t0))/float64(own))
					}
					b.StartTimer()
				}
				for i, bl := range baselines {
					b.ReportMetric(median(ratios[i]), bl.name)
				}
			})
		}
	}
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// withFiles opens path for reading and /dev/null for writing, as openssl does with them.
func withFiles(path string, fn func(io.Reader, io.Writer) error) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer out.Close()
	return fn(in, out)
}

func writeFile(b *testing.B, path string, fill func(io.Writer) error) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := fill(f); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

func run(b *testing.B, name string, args ...string) {
	b.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		b.Fatal(fmt.Errorf("%s %v: %w\n%s", name, args[:2], err, out))
	}
}

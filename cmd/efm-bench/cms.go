package main

import (
	"bufio"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/efm-go/efm/packaging/cms"
)

// rowCMS is row 11: packaging/cms in efm-bench's own process against
// openssl as a child process, file to file, on the same plaintext of random
// bytes read from a file and written to /dev/null, in MB per CPU-second. AES-256-CBC is compared with `openssl enc`
// (the raw cipher: what CMS costs beyond it is the overhead to remove),
// GCM with `openssl cms` (enc has no AEAD). The Go side wraps the key with
// RSAES-OAEP (what the daemon sends), openssl cms with PKCS#1 v1.5: one RSA
// operation either way, noise next to the content.
func rowCMS(e *env) ([]measure, error) {
	if _, err := exec.LookPath("openssl"); err != nil {
		return nil, fmt.Errorf("row 11 needs openssl: %w", err)
	}
	size := int64(64 << 20)
	if e.o.quick {
		size = 2 << 20
	}
	dir := e.dir("cms")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cert, key, err := writeRecipient(dir)
	if err != nil {
		return nil, err
	}
	plain := filepath.Join(dir, "plain.bin")
	if err := writeRandom(plain, size); err != nil {
		return nil, err
	}
	certPEM, keyPEM := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	enc, dec := filepath.Join(dir, "ossl.enc"), filepath.Join(dir, "ossl.out")
	// openssl enc takes the raw key and IV; it has no AEAD, so GCM is
	// compared with openssl cms, streamed (BER) as packaging/cms writes.
	k, iv := fmt.Sprintf("%064x", 18), fmt.Sprintf("%032x", 18)
	var out []measure
	for i, c := range []struct {
		name     string
		cipher   cms.ContentCipher
		baseline string
		enc, dec []string
	}{
		{"AES-256-CBC", cms.AES256CBC, "openssl enc",
			[]string{"enc", "-aes-256-cbc", "-K", k, "-iv", iv, "-in", plain, "-out", enc},
			[]string{"enc", "-d", "-aes-256-cbc", "-K", k, "-iv", iv, "-in", enc, "-out", dec}},
		{"AES-256-GCM", cms.AES256GCM, "openssl cms",
			[]string{"cms", "-encrypt", "-binary", "-stream", "-aes-256-gcm", "-in", plain, "-outform", "DER", "-out", enc, certPEM},
			[]string{"cms", "-decrypt", "-binary", "-inform", "DER", "-in", enc, "-inkey", keyPEM, "-recip", certPEM, "-out", dec}},
	} {
		opts := cms.EncryptOptions{Cipher: c.cipher, AuthEnveloped: true}
		goEnc, goDec, err := goCMS(dir, plain, cert, key, opts)
		if err != nil {
			return nil, fmt.Errorf("%s with packaging/cms: %w", c.name, err)
		}
		// Timed into /dev/null, as the Go side into io.Discard: the
		// cipher and its framing, not the disk.
		sslEnc, err := cpuOf(exec.Command("openssl", devNull(c.enc, enc)...))
		if err != nil {
			return nil, err
		}
		if _, err := cpuOf(exec.Command("openssl", c.enc...)); err != nil {
			return nil, err
		}
		if _, err := cpuOf(exec.Command("openssl", c.dec...)); err != nil {
			return nil, err
		}
		if fi, err := os.Stat(dec); err != nil || fi.Size() != size {
			return nil, fmt.Errorf("openssl %s decrypted to the wrong size", c.name)
		}
		sslDec, err := cpuOf(exec.Command("openssl", devNull(c.dec, dec)...))
		if err != nil {
			return nil, err
		}
		mb := float64(size) / (1 << 20)
		e.logf("%s, %d MiB, CPU time: packaging/cms encrypt %s decrypt %s, %s %s %s", c.name, size>>20, goEnc, goDec, c.baseline, sslEnc, sslDec)
		out = append(out,
			measure{Row: fmt.Sprintf("11%c", 'a'+2*i), Name: c.name + " encrypt, packaging/cms", Unit: "MB/CPU-s", Value: mb / goEnc.Seconds(),
				BaseName: c.baseline, Base: mb / sslEnc.Seconds(), Goal: "≥ 0.8 of openssl"},
			measure{Row: fmt.Sprintf("11%c", 'b'+2*i), Name: c.name + " decrypt, packaging/cms", Unit: "MB/CPU-s", Value: mb / goDec.Seconds(),
				BaseName: c.baseline, Base: mb / sslDec.Seconds(), Goal: "≥ 0.8 of openssl"})
		os.Remove(enc)
		os.Remove(dec)
	}
	return out, nil
}

// devNull is args with the output file out replaced by /dev/null.
func devNull(args []string, out string) []string {
	a := slices.Clone(args)
	for i := range a {
		if a[i] == out {
			a[i] = os.DevNull
		}
	}
	return a
}

// cpuOf runs cmd and returns the CPU time (user and system) it used: on a
// shared machine CPU time compares two implementations more steadily than
// the wall clock.
func cpuOf(cmd *exec.Cmd) (time.Duration, error) {
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("%s: %v: %s", cmd.Args, err, out)
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

// selfCPU is the CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// goCMS encrypts plain to a file and decrypts that file again, and returns
// the CPU time of each.
func goCMS(dir, plain string, cert *x509.Certificate, key *rsa.PrivateKey, opts cms.EncryptOptions) (enc, dec time.Duration, err error) {
	encPath := filepath.Join(dir, "go.der")
	defer os.Remove(encPath)
	encrypt := func(w io.Writer, r io.Reader) error {
		_, err := cms.Encrypt(w, r, cert, opts)
		return err
	}
	runtime.GC()
	t0 := selfCPU()
	if err := fileToFile(plain, os.DevNull, encrypt); err != nil {
		return 0, 0, err
	}
	enc = selfCPU() - t0
	if err := fileToFile(plain, encPath, encrypt); err != nil {
		return 0, 0, err
	}
	runtime.GC()
	t0 = selfCPU()
	if err := fileToFile(encPath, os.DevNull, func(w io.Writer, r io.Reader) error {
		_, err := cms.Decrypt(w, r, key, cms.DecryptOptions{Cert: cert})
		return err
	}); err != nil {
		return 0, 0, err
	}
	return enc, selfCPU() - t0, nil
}

// fileToFile runs fn from one file into another, buffered as the daemon
// does when it packs.
func fileToFile(in, out string, fn func(w io.Writer, r io.Reader) error) error {
	src, err := os.Open(in)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.Create(out)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(dst, 256<<10)
	if err := fn(bw, bufio.NewReaderSize(src, 256<<10)); err != nil {
		dst.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

func writeRandom(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, &randomReader{r: mrand.NewChaCha8([32]byte{11}), left: size}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeRecipient makes an RSA-2048 certificate and key and writes them as
// PEM for openssl.
func writeRecipient(dir string) (*x509.Certificate, *rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(18), Subject: pkix.Name{CommonName: "efm-bench"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, nil, err
	}
	return cert, key, os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600)
}

package asic

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/efm-go/efm/packaging/cms"
	"github.com/efm-go/efm/packaging/testpki"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func signer() Signer {
	id := pki.Orgs[orgA]
	return Signer{Cert: id.Cert, Key: id.Key, Chain: nil}
}

func testFiles(t testing.TB) ([]File, map[string][]byte) {
	m := NewManifest(orgA, orgB, "arkivmelding.xml", "application/xml")
	mf, err := m.File()
	require.NoError(t, err)
	pdf := bytes.Repeat([]byte("%PDF-1.7 not really a pdf, but incompressible enough? "), 6000)
	contents := map[string][]byte{
		"arkivmelding.xml": []byte(`<arkivmelding xmlns="http://www.arkivverket.no/standarder/noark5/arkivmelding"/>`),
		"vedlegg 1.pdf":    pdf,
	}
	mfBytes, _ := m.Marshal()
	contents[ManifestName] = mfBytes
	return []File{
		mf,
		{Name: "arkivmelding.xml", MimeType: "application/xml", Content: bytes.NewReader(contents["arkivmelding.xml"])},
		{Name: "vedlegg 1.pdf", MimeType: "application/pdf", Content: bytes.NewReader(pdf)},
	}, contents
}

func writeContainer(t testing.TB, kind SignatureKind, s Signer) []byte {
	files, _ := testFiles(t)
	var buf bytes.Buffer
	var err error
	if kind == CAdES {
		err = WriteCAdES(&buf, files, s, CAdESOptions{})
	} else {
		err = WriteXAdES(&buf, files, s, XAdESOptions{})
	}
	require.NoError(t, err)
	return buf.Bytes()
}

func open(data []byte) (*Container, error) {
	return Open(bytes.NewReader(data), int64(len(data)), ReadOptions{Roots: pki.Pool()})
}

func TestWriteOpen_RoundTrip(t *testing.T) {
	for _, kind := range []SignatureKind{CAdES, XAdES} {
		t.Run(kind.String(), func(t *testing.T) {
			data := writeContainer(t, kind, signer())
			c, err := open(data)
			require.NoError(t, err)
			assert.Equal(t, kind, c.Kind)
			assert.True(t, c.Signer.Equal(pki.Orgs[orgA].Cert))
			_, contents := testFiles(t)
			var names []string
			for _, e := range c.Entries {
				names = append(names, e.Name)
				rc, err := e.Open()
				require.NoError(t, err)
				got, err := io.ReadAll(rc)
				require.NoError(t, err)
				rc.Close()
				if e.Name != ManifestName {
					assert.Equal(t, contents[e.Name], got, e.Name)
				}
			}
			assert.Equal(t, []string{"manifest.xml", "arkivmelding.xml", "vedlegg 1.pdf"}, names)
			assert.Equal(t, "application/pdf", c.Entry("vedlegg 1.pdf").MimeType)
			if kind == CAdES {
				require.NotNil(t, c.Manifest)
				assert.Equal(t, orgB, c.Manifest.Receiver.OrgNumber())
				assert.Equal(t, "arkivmelding.xml", c.Manifest.MainDocument.Href)
			}

			zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
			require.NoError(t, err)
			assert.Equal(t, "mimetype", zr.File[0].Name)
			assert.Equal(t, zip.Store, zr.File[0].Method)
			assert.Equal(t, "mimetype="+MimeType, zr.Comment)
			assert.Equal(t, MimeType, string(data[38:38+len(MimeType)]), "mimetype content at offset 38")
			for _, f := range zr.File {
				// Java's ZipInputStream refuses a stored entry with a data descriptor.
				if f.Method == zip.Store {
					assert.Zero(t, f.Flags&0x8, "%s: stored with a data descriptor", f.Name)
				}
			}
		})
	}
}

// rezip copies a container entry by entry, letting edit change, drop (nil) or add entries.
func rezip(t testing.TB, data []byte, edit func(name string, content []byte) []byte, extra map[string][]byte) []byte {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		rc, err := f.Open()
		require.NoError(t, err)
		content, err := io.ReadAll(rc)
		require.NoError(t, err)
		if edit != nil {
			content = edit(f.Name, content)
		}
		if content == nil {
			continue
		}
		method := zip.Deflate
		if f.Name == "mimetype" {
			method = zip.Store
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.Name, Method: method})
		require.NoError(t, err)
		w.Write(content)
	}
	for name, content := range extra {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate})
		require.NoError(t, err)
		w.Write(content)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func TestOpen_RefusesTamperedContainer(t *testing.T) {
	for _, kind := range []SignatureKind{CAdES, XAdES} {
		t.Run(kind.String(), func(t *testing.T) {
			data := writeContainer(t, kind, signer())
			t.Run("altered document", func(t *testing.T) {
				bad := rezip(t, data, func(name string, c []byte) []byte {
					if name == "arkivmelding.xml" {
						return bytes.Replace(c, []byte("arkivmelding"), []byte("arkivmelding "), 1)
					}
					return c
				}, nil)
				_, err := open(bad)
				assert.ErrorIs(t, err, ErrDigestMismatch)
				assert.ErrorContains(t, err, "arkivmelding.xml")
			})
			t.Run("added document", func(t *testing.T) {
				bad := rezip(t, data, nil, map[string][]byte{"extra.pdf": []byte("%PDF")})
				_, err := open(bad)
				assert.ErrorIs(t, err, ErrUnsigned)
			})
			t.Run("removed document", func(t *testing.T) {
				bad := rezip(t, data, func(name string, c []byte) []byte {
					if name == "vedlegg 1.pdf" {
						return nil
					}
					return c
				}, nil)
				_, err := open(bad)
				assert.ErrorIs(t, err, ErrInvalidContainer)
			})
			t.Run("altered signed manifest", func(t *testing.T) {
				bad := rezip(t, data, func(name string, c []byte) []byte {
					if name == "META-INF/ASiCManifest.xml" || name == SignaturesName {
						return bytes.Replace(c, []byte(`MimeType="application/pdf"`), []byte(`MimeType="application/xml"`), 1)
					}
					if name == SignaturesName {
						return c
					}
					return c
				}, nil)
				if kind == XAdES {
					bad = rezip(t, data, func(name string, c []byte) []byte {
						if name == SignaturesName {
							return bytes.Replace(c, []byte(`<xades:MimeType>application/pdf`), []byte(`<xades:MimeType>application/xml`), 1)
						}
						return c
					}, nil)
				}
				_, err := open(bad)
				require.Error(t, err)
				if kind == CAdES {
					assert.ErrorIs(t, err, cms.ErrDigestMismatch)
				} else {
					assert.ErrorIs(t, err, ErrDigestMismatch)
				}
				assert.ErrorIs(t, err, ErrSignature, "the signature error class")
			})
		})
	}
}

func TestOpen_RefusesDuplicateIDs(t *testing.T) {
	data := writeContainer(t, XAdES, signer())
	bad := rezip(t, data, func(name string, c []byte) []byte {
		if name == SignaturesName {
			return bytes.Replace(c, []byte(`<ds:Object>`), []byte(`<ds:Object><xades:SignedProperties Id="SignedProperties"></xades:SignedProperties>`), 1)
		}
		return c
	}, nil)
	_, err := open(bad)
	assert.ErrorIs(t, err, ErrInvalidContainer)
	assert.ErrorContains(t, err, "appears twice")
}

func TestOpen_RefusesUntrustedSigner(t *testing.T) {
	other, err := testpki.Ensure(t.TempDir(), nil)
	require.NoError(t, err)
	for _, kind := range []SignatureKind{CAdES, XAdES} {
		t.Run(kind.String(), func(t *testing.T) {
			data := writeContainer(t, kind, Signer{Cert: other.Print.Cert, Key: other.Print.Key})
			_, err := open(data)
			assert.ErrorIs(t, err, ErrSignature)
			assert.ErrorIs(t, err, cms.ErrUntrustedSigner)
			assert.ErrorContains(t, err, "unknown authority")
		})
	}
}

func TestOpen_RefusesHostileZips(t *testing.T) {
	good := writeContainer(t, CAdES, signer())
	tests := []struct {
		name    string
		data    func() []byte
		opts    Limits
		wantErr error
	}{
		{"zip slip", func() []byte { return rezip(t, good, nil, map[string][]byte{"../../etc/passwd": []byte("x")}) }, Limits{}, ErrInvalidContainer},
		{"absolute", func() []byte { return rezip(t, good, nil, map[string][]byte{"/etc/passwd": []byte("x")}) }, Limits{}, ErrInvalidContainer},
		{"backslash", func() []byte { return rezip(t, good, nil, map[string][]byte{`..\x`: []byte("x")}) }, Limits{}, ErrInvalidContainer},
		{"drive letter", func() []byte { return rezip(t, good, nil, map[string][]byte{`C:x`: []byte("x")}) }, Limits{}, ErrInvalidContainer},
		{"duplicate entry", func() []byte {
			return rezip(t, good, func(name string, c []byte) []byte { return c }, map[string][]byte{"arkivmelding.xml": []byte("<evil/>")})
		}, Limits{}, ErrInvalidContainer},
		{"case-folded duplicate", func() []byte { return rezip(t, good, nil, map[string][]byte{"ARKIVMELDING.xml": []byte("x")}) }, Limits{}, ErrInvalidContainer},
		{"zip bomb", func() []byte {
			return rezip(t, good, nil, map[string][]byte{"bomb.bin": make([]byte, 20<<20)})
		}, Limits{MaxEntrySize: 10 << 20}, ErrTooLarge},
		{"too many entries", func() []byte {
			extra := map[string][]byte{}
			for i := range 300 {
				extra[strings.Repeat("f", 1+i%50)+string(rune('a'+i%26))+".txt"] = nil
			}
			for i := range 300 {
				extra["e"+strings.Repeat("x", i)] = []byte{}
			}
			return rezip(t, good, nil, extra)
		}, Limits{}, ErrTooLarge},
		{"oversized manifest", func() []byte {
			return rezip(t, good, func(name string, c []byte) []byte {
				if name == "META-INF/ASiCManifest.xml" {
					return append(c, bytes.Repeat([]byte("<!-- padding -->"), 70000)...)
				}
				return c
			}, nil)
		}, Limits{}, ErrTooLarge},
		{"mimetype not first", func() []byte {
			return rezip(t, good, func(name string, c []byte) []byte {
				if name == "mimetype" {
					return nil
				}
				return c
			}, map[string][]byte{"mimetype": []byte(MimeType)})
		}, Limits{}, ErrInvalidContainer},
		{"no signature", func() []byte {
			return rezip(t, good, func(name string, c []byte) []byte {
				if strings.HasPrefix(name, "META-INF/") {
					return nil
				}
				return c
			}, nil)
		}, Limits{}, ErrInvalidContainer},
		{"container over the cap", func() []byte { return good }, Limits{MaxTotalSize: 1000}, ErrTooLarge},
		{"not a zip", func() []byte { return []byte("PK not really a zip at all, just text") }, Limits{}, ErrInvalidContainer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.data()
			_, err := Open(bytes.NewReader(data), int64(len(data)), ReadOptions{Roots: pki.Pool(), Limits: tt.opts})
			assert.ErrorIs(t, err, tt.wantErr)
		})
	}
}

func TestWrite_RefusesBadNames(t *testing.T) {
	for _, name := range []string{"../x", "META-INF/x.xml", "a/b.pdf", "mimetype", ""} {
		err := WriteCAdES(io.Discard, []File{{Name: name, Content: strings.NewReader("x")}}, signer(), CAdESOptions{})
		assert.ErrorIs(t, err, ErrInvalidContainer, name)
	}
	err := WriteCAdES(io.Discard, []File{
		{Name: "a.pdf", Content: strings.NewReader("x")},
		{Name: "a.pdf", Content: strings.NewReader("y")},
	}, signer(), CAdESOptions{})
	assert.ErrorIs(t, err, ErrInvalidContainer)
}

func unzip(t *testing.T, data []byte, dir string) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	for _, f := range zr.File {
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		rc, err := f.Open()
		require.NoError(t, err)
		b, err := io.ReadAll(rc)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(p, b, 0o644))
	}
}

// TestWriteCAdES_OpenSSLVerifies: openssl cms -verify accepts the signature inside our
// container over its ASiCManifest.xml.
func TestWriteCAdES_OpenSSLVerifies(t *testing.T) {
	openssl := requireTool(t, "openssl", "openssl")
	dir := t.TempDir()
	unzip(t, writeContainer(t, CAdES, signer()), dir)
	sigs, err := filepath.Glob(filepath.Join(dir, "META-INF", "signature-*.p7s"))
	require.NoError(t, err)
	require.Len(t, sigs, 1)
	out, err := exec.Command(openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", sigs[0],
		"-content", filepath.Join(dir, "META-INF", "ASiCManifest.xml"), "-CAfile", pki.CAPath(),
		"-purpose", "any", "-out", os.DevNull).CombinedOutput()
	require.NoError(t, err, "openssl: %s", out)
	assert.Contains(t, string(out), "Verification successful")
}

// TestWriteXAdES_Xmlsec1Verifies: xmlsec1 --verify, an independent XML-DSig implementation,
// accepts our signatures.xml, resolving the file references against the unpacked container,
// and refuses it once a document changes.
func TestWriteXAdES_Xmlsec1Verifies(t *testing.T) {
	xmlsec1 := requireTool(t, "xmlsec1", "xmlsec1")
	dir := t.TempDir()
	files := []File{
		{Name: "manifest.xml", MimeType: "application/xml", Content: strings.NewReader(`<manifest xmlns="http://begrep.difi.no/sdp/schema_v10"/>`)},
		{Name: "brev.pdf", MimeType: "application/pdf", Content: strings.NewReader("%PDF-1.7 brev")},
	}
	var buf bytes.Buffer
	require.NoError(t, WriteXAdES(&buf, files, signer(), XAdESOptions{}))
	unzip(t, buf.Bytes(), dir)
	// References are relative to the container root; xmlsec1 resolves them against the
	// document's own location, so the signature is verified from the root.
	sigPath := filepath.Join(dir, "signatures.xml")
	doc, err := os.ReadFile(filepath.Join(dir, "META-INF", "signatures.xml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(sigPath, doc, 0o644))
	verify := func() ([]byte, error) {
		cmd := exec.Command(xmlsec1, "--verify", "--trusted-pem", pki.CAPath(),
			"--id-attr:Id", nsXAdES+":SignedProperties", sigPath)
		cmd.Dir = dir
		return cmd.CombinedOutput()
	}
	out, err := verify()
	require.NoError(t, err, "xmlsec1: %s", out)
	assert.Contains(t, string(out), "OK")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "brev.pdf"), []byte("%PDF-1.7 brev!"), 0o644))
	out, err = verify()
	assert.Error(t, err, "xmlsec1 must refuse an altered document: %s", out)
}

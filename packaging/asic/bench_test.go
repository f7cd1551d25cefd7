package asic

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"testing"
)

// BenchmarkPack packs 100 files of 64 KiB (half random, half text, so deflate has work of
// both kinds) into a signed container, with each signature kind.
func BenchmarkPack(b *testing.B) {
	const n, size = 100, 64 << 10
	contents := make([][]byte, n)
	for i := range contents {
		contents[i] = make([]byte, size)
		if i%2 == 0 {
			rand.Read(contents[i])
		} else {
			copy(contents[i], bytes.Repeat([]byte(fmt.Sprintf("<linje nr=\"%d\">tekst</linje>\n", i)), size))
		}
	}
	files := func() []File {
		fs := make([]File, n)
		for i := range fs {
			fs[i] = File{Name: fmt.Sprintf("dokument-%03d.xml", i), MimeType: "application/xml", Content: bytes.NewReader(contents[i])}
		}
		return fs
	}
	s := signer()
	for _, kind := range []SignatureKind{CAdES, XAdES} {
		b.Run(kind.String(), func(b *testing.B) {
			b.SetBytes(n * size)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if kind == CAdES {
					err = WriteCAdES(io.Discard, files(), s, CAdESOptions{})
				} else {
					err = WriteXAdES(io.Discard, files(), s, XAdESOptions{})
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPackSmall packs what a typical DPO message carries: the
// eFormidling manifest and one 10 KiB document, text or random.
func BenchmarkPackSmall(b *testing.B) {
	text := bytes.Repeat([]byte("<linje>tekst som gjentar seg</linje>\n"), 10<<10/37)
	random := make([]byte, 10<<10)
	rand.Read(random)
	s := signer()
	m, err := NewManifest("991825827", "910075918", "arkivmelding.xml", "application/xml").File()
	if err != nil {
		b.Fatal(err)
	}
	manifest, err := io.ReadAll(m.Content)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		doc  []byte
	}{{"text", text}, {"random", random}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				files := []File{
					{Name: ManifestName, MimeType: "application/xml", Content: bytes.NewReader(manifest)},
					{Name: "arkivmelding.xml", MimeType: "application/xml", Content: bytes.NewReader(c.doc)},
				}
				if err := WriteCAdES(io.Discard, files, s, CAdESOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpen verifies a small signed container as a receiver does:
// signature, chain, and the digest of every document.
func BenchmarkOpen(b *testing.B) {
	data := writeContainer(b, CAdES, signer())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := open(data); err != nil {
			b.Fatal(err)
		}
	}
}

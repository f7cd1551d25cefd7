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

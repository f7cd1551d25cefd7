package asic

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/efm-go/efm/internal/fuzzedit"
	"github.com/efm-go/efm/packaging/testpki"
)

// fuzzPKI is committed under testdata/pki so the corpus keeps verifying across runs.
func fuzzPKI(f *testing.F) *testpki.PKI {
	p, err := testpki.Ensure("testdata/pki", []string{orgA})
	if err != nil {
		f.Fatal(err)
	}
	return p
}

// FuzzOpen feeds edited containers (fuzzedit: one edit to a valid CAdES or XAdES
// container, or short arbitrary bytes) to the container reader with small limits.
// Invariants: no panic; every error is one of the package's sentinels; an accepted
// container is signed by the one trusted identity and its entries read back at their
// verified sizes, within the limits.
func FuzzOpen(f *testing.F) {
	p := fuzzPKI(f)
	id := p.Orgs[orgA]
	s := Signer{Cert: id.Cert, Key: id.Key}
	files := func() []File {
		m, _ := NewManifest(orgA, orgB, "a.xml", "application/xml").File()
		return []File{m, {Name: "a.xml", MimeType: "application/xml", Content: strings.NewReader("<a/>")}}
	}
	var cades, xades bytes.Buffer
	if err := WriteCAdES(&cades, files(), s, CAdESOptions{}); err != nil {
		f.Fatal(err)
	}
	if err := WriteXAdES(&xades, files(), s, XAdESOptions{}); err != nil {
		f.Fatal(err)
	}
	bases := [][]byte{cades.Bytes(), xades.Bytes()}
	for i := range bases {
		f.Add(uint8(i+1), uint32(0), uint16(0), []byte(nil))
	}
	f.Add(uint8(0), uint32(0), uint16(0), []byte("PK\x03\x04"))
	lim := Limits{MaxEntries: 16, MaxEntrySize: 1 << 16, MaxTotalSize: 1 << 18}
	known := []error{ErrInvalidContainer, ErrTooLarge, ErrDigestMismatch, ErrUnsigned, ErrSignature}
	f.Fuzz(func(t *testing.T, which uint8, at uint32, cut uint16, insert []byte) {
		data := fuzzedit.Apply(bases, which, at, cut, insert)
		c, err := Open(bytes.NewReader(data), int64(len(data)), ReadOptions{Roots: p.Pool(), Limits: lim})
		if err != nil {
			for _, k := range known {
				if errors.Is(err, k) {
					return
				}
			}
			t.Fatalf("unclassified error: %v", err)
		}
		if !c.Signer.Equal(id.Cert) {
			t.Fatalf("accepted a container signed by %s", c.Signer.Subject)
		}
		var total int64
		for _, e := range c.Entries {
			rc, err := e.Open()
			if err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil || n != e.Size || n > lim.MaxEntrySize {
				t.Fatalf("entry %q: read %d of %d: %v", e.Name, n, e.Size, err)
			}
			total += n
		}
		if total > lim.MaxTotalSize {
			t.Fatalf("entries total %d over the limit", total)
		}
	})
}

// FuzzParseManifest: no panic, and an accepted manifest names a primary document and
// survives a round trip.
func FuzzParseManifest(f *testing.F) {
	b, _ := NewManifest(orgA, orgB, "arkivmelding.xml", "application/xml").Marshal()
	f.Add(b)
	f.Add([]byte(`<manifest><hoveddokument href="x"/></manifest>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrInvalidContainer) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if m.MainDocument.Href == "" {
			t.Fatal("accepted a manifest without hoveddokument")
		}
		out, err := m.Marshal()
		if err != nil {
			return // e.g. text xml cannot encode; the parse was still sound
		}
		again, err := ParseManifest(bytes.NewReader(out))
		if err != nil || again.MainDocument.Href != m.MainDocument.Href {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzCheckDocumentName: a name CheckDocumentName lets through packs beside
// the eFormidling manifest and the receiver opens the container; a name it
// refuses, the writer or the reader would have refused.
func FuzzCheckDocumentName(f *testing.F) {
	for _, s := range []string{"vedtak.pdf", "rapport..v2.pdf", "mimetype", "manifest.xml", "META-INF/x", "a/b", "æøå.pdf", "\x00"} {
		f.Add(s)
	}
	p := fuzzPKI(f)
	s := Signer{Cert: p.Orgs[orgA].Cert, Key: p.Orgs[orgA].Key}
	mf, err := NewManifest(orgA, orgB, "x.pdf", "application/pdf").Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if CheckDocumentName(name) != nil {
			return
		}
		var buf bytes.Buffer
		err := WriteCAdES(&buf, []File{{Name: ManifestName, MimeType: "application/xml", Content: bytes.NewReader(mf)},
			{Name: name, MimeType: "application/pdf", Content: strings.NewReader("x")}}, s, CAdESOptions{})
		if err != nil {
			t.Fatalf("name %q passed the check but the writer refused it: %v", name, err)
		}
		if _, err := Open(bytes.NewReader(buf.Bytes()), int64(buf.Len()), ReadOptions{Roots: p.Pool()}); err != nil {
			t.Fatalf("name %q passed the check but the reader refused it: %v", name, err)
		}
	})
}

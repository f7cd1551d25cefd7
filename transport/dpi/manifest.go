package dpi

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/efm-go/efm/packaging/asic"
	"github.com/efm-go/efm/packaging/cms"
)

// ManifestNS is the namespace of the DPI manifest (sdp-manifest.xsd).
const ManifestNS = "http://begrep.difi.no/sdp/schema_v10"

// Manifest is the DPI manifest.xml of channels.md §1.9.3.
type Manifest struct {
	XMLName       xml.Name      `xml:"http://begrep.difi.no/sdp/schema_v10 manifest"`
	Mottaker      *ManifestPers `xml:"mottaker,omitempty"`
	Avsender      ManifestAvs   `xml:"avsender"`
	Hoveddokument ManifestDoc   `xml:"hoveddokument"`
	Vedlegg       []ManifestDoc `xml:"vedlegg"`
}

// ManifestPers is mottaker/person (digital only).
type ManifestPers struct {
	Postkasseadresse string `xml:"person>postkasseadresse"`
}

// ManifestAvs is the sender.
type ManifestAvs struct {
	Organisasjon          ManifestOrg `xml:"organisasjon"`
	Avsenderidentifikator string      `xml:"avsenderidentifikator,omitempty"`
	FakturaReferanse      string      `xml:"fakturaReferanse,omitempty"`
}

// ManifestOrg is 0192:<orgnr>.
type ManifestOrg struct {
	Authority string `xml:"authority,attr"`
	Value     string `xml:",chardata"`
}

// ManifestDoc is one document of the package.
type ManifestDoc struct {
	Href   string        `xml:"href,attr"`
	Mime   string        `xml:"mime,attr"`
	Tittel ManifestTitle `xml:"tittel"`
}

// ManifestTitle is a document title in a language.
type ManifestTitle struct {
	Lang string `xml:"lang,attr"`
	Text string `xml:",chardata"`
}

// Document is one file of a DPI package: the first is the primary
// document.
type Document struct {
	Name, Title, MimeType string
	Content               io.Reader
}

// Package is what goes into a document package.
type Package struct {
	SenderOrg                               string // nine digits
	Avsenderidentifikator, FakturaReferanse string
	Postkasseadresse                        string // "" for print
	Lang                                    string // the titles' language; default NO
	Documents                               []Document
}

// ManifestFor builds the DPI manifest; a missing title is "Missing title"
// as the reference writes it.
func ManifestFor(p Package) (Manifest, error) {
	if len(p.Documents) == 0 {
		return Manifest{}, errors.New("dpi: a document package needs at least one document")
	}
	if len(p.Documents) > 201 {
		return Manifest{}, fmt.Errorf("dpi: %d documents, at most 201 (one primary, 200 attachments)", len(p.Documents))
	}
	lang := p.Lang
	if lang == "" {
		lang = "NO"
	}
	doc := func(d Document) ManifestDoc {
		t := d.Title
		if t == "" {
			t = "Missing title"
		}
		return ManifestDoc{Href: d.Name, Mime: d.MimeType, Tittel: ManifestTitle{Lang: lang, Text: t}}
	}
	m := Manifest{Avsender: ManifestAvs{Organisasjon: ManifestOrg{Authority: "iso6523-actorid-upis", Value: "0192:" + p.SenderOrg},
		Avsenderidentifikator: p.Avsenderidentifikator, FakturaReferanse: p.FakturaReferanse},
		Hoveddokument: doc(p.Documents[0])}
	if p.Postkasseadresse != "" {
		m.Mottaker = &ManifestPers{Postkasseadresse: p.Postkasseadresse}
	}
	for _, d := range p.Documents[1:] {
		m.Vedlegg = append(m.Vedlegg, doc(d))
	}
	return m, nil
}

// ParseManifest reads a DPI manifest (at most 1 MiB).
func ParseManifest(r io.Reader) (*Manifest, error) {
	var m Manifest
	if err := xml.NewDecoder(io.LimitReader(r, 1<<20)).Decode(&m); err != nil {
		return nil, fmt.Errorf("dpi: reading manifest: %w", err)
	}
	if m.XMLName.Space != ManifestNS {
		return nil, fmt.Errorf("dpi: manifest namespace %q", m.XMLName.Space)
	}
	return &m, nil
}

// WritePackage writes the XAdES-signed ASiC-E (§1.9.3) encrypted as CMS
// (RSAES-OAEP, AES-256-CBC) to recipient into w, streaming, and returns the
// fingerprint of the CMS bytes (§4.3 steps 2–4).
func WritePackage(w io.Writer, p Package, key *rsa.PrivateKey, cert *x509.Certificate, chain []*x509.Certificate,
	recipient *x509.Certificate, now time.Time) (Fingerprint, error) {
	m, err := ManifestFor(p)
	if err != nil {
		return Fingerprint{}, err
	}
	body, err := xml.Marshal(m)
	if err != nil {
		return Fingerprint{}, fmt.Errorf("dpi: encoding manifest: %w", err)
	}
	files := []asic.File{{Name: "manifest.xml", MimeType: "application/xml",
		Content: io.MultiReader(strings.NewReader(xml.Header), bytes.NewReader(body))}}
	for _, d := range p.Documents {
		files = append(files, asic.File{Name: d.Name, MimeType: d.MimeType, Content: d.Content})
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(asic.WriteXAdES(pw, files, asic.Signer{Cert: cert, Key: key, Chain: chain}, asic.XAdESOptions{Time: now}))
	}()
	h := sha256.New()
	_, err = cms.Encrypt(io.MultiWriter(w, h), pr, recipient, cms.EncryptOptions{KeyTransport: cms.RSAESOAEP, Cipher: cms.AES256CBC})
	pr.CloseWithError(err)
	if err != nil {
		return Fingerprint{}, fmt.Errorf("dpi: packing: %w", err)
	}
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	return FingerprintOf(sum), nil
}

package asic

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// Manifest is the eFormidling manifest.xml of channels.md §1.9.4 (DPO, DPE, DPH, incoming
// DPF). It has no namespace.
type Manifest struct {
	XMLName      xml.Name     `xml:"manifest"`
	Receiver     Organisation `xml:"mottaker>organisasjon"`
	Sender       Organisation `xml:"avsender>organisasjon"`
	MainDocument MainDocument `xml:"hoveddokument"`
}

// Organisation is an iso6523 identifier, "0192:<orgnr>" for Norwegian organisations.
type Organisation struct {
	Authority string `xml:"authority,attr"`
	ID        string `xml:",chardata"`
}

// MainDocument names the primary document of the container.
type MainDocument struct {
	Href  string `xml:"href,attr"`
	Mime  string `xml:"mime,attr"`
	Title Title  `xml:"tittel"`
}

// Title is the manifest's document title.
type Title struct {
	Lang string `xml:"lang,attr"`
	Text string `xml:",chardata"`
}

// ManifestName is the eFormidling manifest's entry name.
const ManifestName = "manifest.xml"

// maxManifestSize caps manifests read into memory. Real ones are under 1 KiB; an
// ASiCManifest lists one line per file and DPI allows 201 files.
const maxManifestSize = 1 << 20

// NewManifest returns the manifest for a message from senderOrg to receiverOrg whose
// primary document is primary (name and media type). Org numbers are the nine digits.
func NewManifest(senderOrg, receiverOrg, primaryName, primaryMime string) Manifest {
	return Manifest{
		Receiver: Organisation{Authority: "iso6523-actorid-upis", ID: "0192:" + receiverOrg},
		Sender:   Organisation{Authority: "iso6523-actorid-upis", ID: "0192:" + senderOrg},
		MainDocument: MainDocument{
			Href:  primaryName,
			Mime:  primaryMime,
			Title: Title{Lang: "no", Text: "Hoveddokument"}, // a constant in the reference
		},
	}
}

// Marshal returns the manifest as an XML document.
func (m Manifest) Marshal() ([]byte, error) {
	body, err := xml.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	return append([]byte(xml.Header), body...), nil
}

// File returns the manifest as the container's manifest.xml entry.
func (m Manifest) File() (File, error) {
	b, err := m.Marshal()
	if err != nil {
		return File{}, err
	}
	return File{Name: ManifestName, MimeType: "application/xml", Content: bytes.NewReader(b)}, nil
}

// ParseManifest reads an eFormidling manifest, at most 1 MiB.
func ParseManifest(r io.Reader) (*Manifest, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	if len(data) > maxManifestSize {
		return nil, fmt.Errorf("%w: manifest over %d octets", ErrTooLarge, maxManifestSize)
	}
	var m Manifest
	if err := xml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrInvalidContainer, err)
	}
	if m.MainDocument.Href == "" {
		return nil, fmt.Errorf("%w: manifest names no hoveddokument", ErrInvalidContainer)
	}
	return &m, nil
}

// OrgNumber returns the nine digits of an "0192:<orgnr>" identifier.
func (o Organisation) OrgNumber() string {
	return strings.TrimPrefix(strings.TrimSpace(o.ID), "0192:")
}

// asicManifest builds META-INF/ASiCManifest.xml: the object the CAdES signature covers.
func asicManifest(sigName string, entries []entryDigest) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?>`)
	b.WriteString(`<ASiCManifest xmlns="http://uri.etsi.org/02918/v1.2.1#" xmlns:ns2="http://www.w3.org/2000/09/xmldsig#">`)
	fmt.Fprintf(&b, `<SigReference URI="%s" MimeType="application/x-pkcs7-signature"/>`, xmlAttr(sigName))
	for _, e := range entries {
		fmt.Fprintf(&b, `<DataObjectReference URI="%s" MimeType="%s">`, xmlAttr(e.name), xmlAttr(e.mime))
		b.WriteString(`<ns2:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>`)
		fmt.Fprintf(&b, `<ns2:DigestValue>%s</ns2:DigestValue></DataObjectReference>`, b64(e.sha256))
	}
	b.WriteString(`</ASiCManifest>`)
	return []byte(b.String())
}

// asicManifestDoc is what the reader takes from an ASiCManifest (any of the accepted
// namespaces: the match is on local names).
type asicManifestDoc struct {
	XMLName xml.Name `xml:"ASiCManifest"`
	SigRef  struct {
		URI string `xml:"URI,attr"`
	} `xml:"SigReference"`
	Refs []struct {
		URI          string `xml:"URI,attr"`
		MimeType     string `xml:"MimeType,attr"`
		DigestMethod struct {
			Algorithm string `xml:"Algorithm,attr"`
		} `xml:"DigestMethod"`
		DigestValue string `xml:"DigestValue"`
	} `xml:"DataObjectReference"`
}

var asicNamespaces = map[string]bool{
	"http://uri.etsi.org/02918/v1.2.1#": true,
	"http://uri.etsi.org/02918/v1.1.1#": true,
	"http://uri.etsi.org/2918/v1.2.1#":  true,
}

// oasisManifest builds META-INF/manifest.xml (OpenDocument manifest), which the reference's
// library always writes.
func oasisManifest(entries []entryDigest) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?>`)
	b.WriteString(`<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">`)
	fmt.Fprintf(&b, `<manifest:file-entry manifest:full-path="/" manifest:media-type="%s"/>`, MimeType)
	for _, e := range entries {
		fmt.Fprintf(&b, `<manifest:file-entry manifest:full-path="%s" manifest:media-type="%s"/>`, xmlAttr(e.name), xmlAttr(e.mime))
	}
	b.WriteString(`</manifest:manifest>`)
	return []byte(b.String())
}

func xmlAttr(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '"':
			b.WriteString("&quot;")
		case '\t':
			b.WriteString("&#x9;")
		case '\n':
			b.WriteString("&#xA;")
		case '\r':
			b.WriteString("&#xD;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func xmlText(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '\r':
			b.WriteString("&#xD;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

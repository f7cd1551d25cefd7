package elma

import (
	"strings"
	"testing"
)

// FuzzDocumentTypeFromHref: every document type survives the href the SMP builds for it, and
// arbitrary hrefs never panic.
func FuzzDocumentTypeFromHref(f *testing.F) {
	f.Add("urn:no:difi:arkivmelding:xsd::arkivmelding", "910075918")
	f.Add("urn:fdc:peppol.eu:2017:poacc:billing:01:1.0::2.1", "810074582")
	f.Add("a/services/b", "")
	f.Fuzz(func(t *testing.T, docType, orgnr string) {
		_, _ = DocumentTypeFromHref(docType)
		href := "http://smp.example/" + ParticipantSegment(orgnr) + "/services/" + DocumentSegment(docType)
		got, ok := DocumentTypeFromHref(href)
		if !ok || got != docType {
			t.Fatalf("href %q gave %q, %v; want %q", href, got, ok, docType)
		}
		if strings.Contains(ParticipantSegment(orgnr), "/") {
			t.Fatal("participant segment contains a slash")
		}
	})
}

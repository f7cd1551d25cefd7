package pipeline

import (
	"encoding/xml"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/transport/dpf"
)

func memFile(name, content string) File {
	return File{Name: name, MimeType: "application/octet-stream",
		Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(content)), nil }}
}

const dpfArkivmelding = `<?xml version="1.0" encoding="utf-8"?>
<arkivmelding xmlns="http://www.arkivverket.no/standarder/noark5/arkivmelding" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <mappe xsi:type="saksmappe"><saksaar>2026</saksaar><sakssekvensnummer>118</sakssekvensnummer><tittel>Leirskole</tittel>
    <registrering xsi:type="journalpost"><tittel>Tilskudd</tittel><offentligTittel>Tilskudd til leirskole</offentligTittel>
      <korrespondansepart><korrespondanseparttype>mottaker</korrespondanseparttype><korrespondansepartNavn>Svarvik kommune</korrespondansepartNavn></korrespondansepart>
      <korrespondansepart><korrespondanseparttype>avsender</korrespondanseparttype><korrespondansepartNavn>Sandkasse etat</korrespondansepartNavn>
        <postadresse>Postboks 1000 Sentrum</postadresse><postnummer>0101</postnummer><poststed>OSLO</poststed><saksbehandler>Kari</saksbehandler></korrespondansepart>
      <journalaar>2026</journalaar><journalsekvensnummer>9</journalsekvensnummer><journalpostnummer>7</journalpostnummer>
      <journalposttype>U</journalposttype><journalstatus>E</journalstatus><journaldato>2026-11-04</journaldato>
      <dokumentbeskrivelse><dokumentobjekt><referanseDokumentfil>vedlegg.odt</referanseDokumentfil></dokumentobjekt></dokumentbeskrivelse>
      <dokumentbeskrivelse><dokumentobjekt><referanseDokumentfil>vedtak.pdf</referanseDokumentfil></dokumentobjekt></dokumentbeskrivelse>
    </registrering>
  </mappe>
</arkivmelding>`

func TestReadArkivmelding_DPFFields(t *testing.T) {
	files := []File{memFile("vedtak.pdf", "pdf"), memFile("arkivmelding.xml", dpfArkivmelding), memFile("vedlegg.odt", "odt"),
		memFile("ekstra.txt", "x")}
	a := readArkivmelding(files)
	assert.Equal(t, "Tilskudd til leirskole", a.offentligTittel)
	assert.Equal(t, "Sandkasse etat", a.avsender.navn, "the party of type avsender, not the first party")
	assert.Equal(t, "Postboks 1000 Sentrum", a.avsender.adresse1)
	assert.Equal(t, []string{"vedlegg.odt", "vedtak.pdf", "ekstra.txt"}, a.order(files),
		"the arkivmelding's order, then the rest; never arkivmelding.xml itself")
	md := a.metadata()
	require.NotNil(t, md)
	assert.Equal(t, dpf.NoarkMetadata{Saksaar: 2026, Sakssekvensnummer: 118, Journalaar: 2026, Journalsekvensnummer: 9,
		Journalpostnummer: 7, Journalposttype: "U", Journalstatus: "E", Journaldato: "2026-11-04T00:00:00Z", Tittel: "Tilskudd",
		Saksbehandler: "Kari"}, *md)
}

func TestDPF_ExcludedFromPrint(t *testing.T) {
	tests := []struct {
		name string
		list []string
		file string
		want bool
	}{
		{"pdf always printed", []string{"*"}, "a.PDF", false},
		{"listed extension", []string{"odt", ".docx"}, "b.docx", true},
		{"star excludes the rest", []string{"*"}, "c.txt", true},
		{"not listed", []string{"odt"}, "d.txt", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, DPF{EkskluderesFraPrint: tt.list}.excludedFromPrint(tt.file))
		})
	}
}

func TestBuildArkivmelding_KeepsThePersonNumberOut(t *testing.T) {
	sh := dpf.Shipment{ID: "f11f5cba-68ad-422f-ad2c-922cd6060f46", Tittel: "Søknad <om> skjenkebevilling",
		SvarSendesTil: &dpf.InnSvarSendesTil{InnMottaker: dpf.InnMottaker{Navn: "Ola Nordmann", Adresse1: "Gata 1", Postnr: "0101",
			Poststed: "OSLO"}, Fnr: "05050910077"},
		MetadataFraAvleverendeSystem: &dpf.InnNoarkMetadata{Saksaar: 2026, Sakssekvensnummer: 4, Journaldato: 1694781172651}}
	b, err := buildArkivmelding(sh, []string{"soknad.pdf", "vedlegg.pdf"}, time.Now())
	require.NoError(t, err)
	assert.NotContains(t, string(b), "05050910077")
	assert.Contains(t, string(b), "Ola Nordmann")
	assert.Contains(t, string(b), "<journaldato>2023-09-15T12:32:52Z</journaldato>")
	a := readArkivmelding([]File{memFile("arkivmelding.xml", string(b))})
	assert.Equal(t, []string{"soknad.pdf", "vedlegg.pdf"}, a.files)
	assert.Equal(t, "Søknad <om> skjenkebevilling", a.tittel)
	assert.Equal(t, "Ola Nordmann", a.avsender.navn)
}

// FuzzBuildArkivmelding: whatever SvarInn's metadata holds, the built
// arkivmelding.xml is well-formed and names exactly the shipment's files.
func FuzzBuildArkivmelding(f *testing.F) {
	f.Add("Søknad", "Ola", "soknad.pdf", "vedlegg.pdf", int64(1694781172651))
	f.Add("<&>", "\x00", "a]]>b", "c\"d", int64(-1))
	f.Fuzz(func(t *testing.T, tittel, navn, f1, f2 string, ms int64) {
		sh := dpf.Shipment{ID: "f11f5cba-68ad-422f-ad2c-922cd6060f46", Tittel: tittel,
			SvarSendesTil:                &dpf.InnSvarSendesTil{InnMottaker: dpf.InnMottaker{Navn: navn}},
			MetadataFraAvleverendeSystem: &dpf.InnNoarkMetadata{Tittel: tittel, Journaldato: ms}}
		b, err := buildArkivmelding(sh, []string{f1, f2}, time.Unix(0, 0))
		if err != nil {
			return
		}
		d := xml.NewDecoder(strings.NewReader(string(b)))
		for {
			_, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				if !validXMLText(tittel + navn + f1 + f2) {
					return // control characters cannot be written in XML 1.0; the shipment is refused upstream
				}
				t.Fatalf("not well-formed: %v\n%s", err, b)
			}
		}
		a := readArkivmelding([]File{memFile("arkivmelding.xml", string(b))})
		var want []string
		for _, n := range []string{f1, f2} {
			if strings.TrimSpace(n) != "" {
				want = append(want, strings.TrimSpace(n))
			}
		}
		if validXMLText(f1+f2) && !slices.Equal(a.files, want) && !(len(a.files) == 0 && len(want) == 0) {
			t.Fatalf("files %q, want %q", a.files, want)
		}
	})
}

func validXMLText(s string) bool {
	for _, r := range s {
		if r == 0xFFFD || r < 0x20 && r != '\t' && r != '\n' && r != '\r' {
			return false
		}
	}
	return true
}

package pipeline

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/addressing"
	"github.com/efm-go/efm/addressing/sr"
	"github.com/efm-go/efm/integrasjonspunkt/sbd"
	"github.com/efm-go/efm/transport/dpi"
)

func dpiDoc(t *testing.T, typ, business string) *sbd.Document {
	t.Helper()
	doc, err := sbd.Decode([]byte(`{"standardBusinessDocumentHeader": {"headerVersion": "1.0",
	  "sender": [{"identifier": {"authority": "iso6523-actorid-upis", "value": "0192:910077473"}}],
	  "documentIdentification": {"standard": "urn:no:difi:digitalpost:xsd:digital::` + typ + `", "typeVersion": "1.0", "type": "` + typ + `",
	    "instanceIdentifier": "8d2a4f7e-1c3b-4a5d-9e6f-7a8b9c0d1e2f", "creationDateAndTime": "2026-11-06T10:00:00+01:00"},
	  "businessScope": {"scope": [{"type": "ConversationId", "instanceIdentifier": "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9",
	    "identifier": "urn:no:difi:profile:digitalpost:vedtak:ver1.0"}]}}, "` + typ + `": ` + business + `}`))
	require.NoError(t, err)
	return doc
}

func validDPI(t *testing.T, typ string, body any) {
	t.Helper()
	h := dpi.NewHeader(typ, "910077473", "984661185", "8d2a4f7e-1c3b-4a5d-9e6f-7a8b9c0d1e2f", "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9",
		mustTime(t, "2026-11-06T10:00:00+01:00"), mustTime(t, "2026-11-07T10:00:00+01:00"))
	b, err := dpi.Marshal(h, body)
	require.NoError(t, err)
	_, err = dpi.Validate(b)
	require.NoError(t, err, "%s", b)
}

// TestDPI_Digital maps the local API's digital message to DPI's (§4.4):
// notifications only where both the KRR address and the text exist, the
// effective date at Oslo midnight, defaults for level and language.
func TestDPI_Digital(t *testing.T) {
	box := "nora.testesen#1A2B"
	rt := addressing.Route{Record: sr.ServiceRecord{PostkasseAdresse: &box, Mobilnummer: "+4799999999"}}
	avs := dpi.Avsender{Virksomhetsidentifikator: dpi.Org("910077473")}
	fp := dpi.Fingerprint{DigestMethod: dpi.DigestSHA256, DigestValue: "AAAA"}
	doc := dpiDoc(t, "digital", `{"hoveddokument": "a.pdf", "tittel": "Vedtak", "spraak": "en",
	  "digitalPostInfo": {"virkningsdato": "2024-11-06", "aapningskvittering": true},
	  "varsler": {"epostTekst": "Brev", "smsTekst": "Brev"}}`)
	d := DPI{}.digital(doc, rt, avs, fp, "tok")
	assert.Equal(t, 4, d.Sikkerhetsnivaa, "no level given: the highest")
	assert.Equal(t, "EN", d.Spraak)
	assert.Equal(t, "2024-11-06T00:00:00+01:00", d.Virkningstidspunkt)
	assert.True(t, d.Aapningskvittering)
	require.NotNil(t, d.Varsler)
	assert.Nil(t, d.Varsler.Epostvarsel, "KRR has no e-mail address")
	require.NotNil(t, d.Varsler.Smsvarsel)
	assert.Equal(t, []int{0, 7}, d.Varsler.Smsvarsel.Repetisjoner)
	validDPI(t, "digital", d)

	d = DPI{}.digital(dpiDoc(t, "digital", `{"sikkerhetsnivaa": 3, "tittel": "T", "spraak": "NO"}`), rt, avs, fp, "tok")
	assert.Equal(t, 3, d.Sikkerhetsnivaa)
	assert.Nil(t, d.Varsler, "no texts, no notifications")
	validDPI(t, "digital", d)
}

// TestDPI_Utskrift: the defaults and value mapping of print, address gaps
// filled from the print record, Norwegian land left out (§4.4).
func TestDPI_Utskrift(t *testing.T) {
	avs := dpi.Avsender{Virksomhetsidentifikator: dpi.Org("910077473")}
	fp := dpi.Fingerprint{DigestMethod: dpi.DigestSHA256, DigestValue: "AAAA"}
	post := &sr.PostAddress{Name: "Reidar Reservert", Street: "Bakken 12;Oppgang B", PostalCode: "7010", PostalArea: "TRONDHEIM", Country: "NO"}
	ret := &sr.PostAddress{Name: "Sandkasse etat", Street: "Postboks 1", PostalCode: "0150", PostalArea: "OSLO", Country: "Norge"}
	u := DPI{}.utskrift(dpiDoc(t, "print", `{"hoveddokument": "a.pdf"}`), post, ret, avs, fp, "tok")
	assert.Equal(t, "SORT_HVIT", u.Utskriftstype)
	assert.Equal(t, "B", u.Posttype)
	assert.Equal(t, "DIREKTE_RETUR", u.Retur.Returposthaandtering)
	assert.Equal(t, dpi.Address{Navn: "Reidar Reservert", Adresselinje1: "Bakken 12", Adresselinje2: "Oppgang B", Postnummer: "7010",
		Poststed: "TRONDHEIM"}, u.Mottaker)
	assert.Equal(t, "Sandkasse etat", u.Retur.Mottaker.Navn)
	validDPI(t, "utskrift", u)

	u = DPI{}.utskrift(dpiDoc(t, "print", `{"hoveddokument": "a.pdf", "utskriftsfarge": "FARGE", "posttype": "A_PRIORITERT",
	  "retur": {"returhaandtering": "MAKULERING_MED_MELDING"},
	  "mottaker": {"navn": "Sven", "adresselinje1": "Storgatan 1", "postnummer": "111 22", "poststed": "STOCKHOLM", "land": "Sverige"}}`),
		post, ret, avs, fp, "tok")
	assert.Equal(t, "FARGE", u.Utskriftstype)
	assert.Equal(t, "A", u.Posttype)
	assert.Equal(t, "MAKULERING_MED_MELDING", u.Retur.Returposthaandtering)
	assert.Equal(t, dpi.Address{Navn: "Sven", Adresselinje1: "Storgatan 1", Adresselinje2: "111 22 STOCKHOLM", Land: "Sverige"}, u.Mottaker,
		"the message's own address wins; a foreign one is folded")
	validDPI(t, "utskrift", u)
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return v
}

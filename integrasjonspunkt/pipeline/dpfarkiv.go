package pipeline

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/efm-go/efm/transport/dpf"
)

// arkiv is what DPF takes from an outgoing arkivmelding.xml (§5.1): the
// journal post's titles and metadata, the correspondence party of type
// avsender, and the documents in the order the arkivmelding lists them.
type arkiv struct {
	tittel, offentligTittel        string
	saksaar                        int
	sakssekvensnummer              int64
	journalaar                     int
	journalsekvensnummer           int64
	journalpostnummer              int64
	journalposttype, journalstatus string
	journaldato, dokumentetsDato   string
	saksbehandler                  string
	avsender                       struct{ navn, adresse1, adresse2, postnr, poststed string }
	files                          []string
}

type amKorrespondansepart struct {
	Type          string   `xml:"korrespondanseparttype"`
	Navn          string   `xml:"korrespondansepartNavn"`
	Postadresse   []string `xml:"postadresse"`
	Postnummer    string   `xml:"postnummer"`
	Poststed      string   `xml:"poststed"`
	Saksbehandler string   `xml:"saksbehandler"`
}

type amRegistrering struct {
	Tittel               string                 `xml:"tittel"`
	OffentligTittel      string                 `xml:"offentligTittel"`
	Journalaar           string                 `xml:"journalaar"`
	Journalsekvensnummer string                 `xml:"journalsekvensnummer"`
	Journalpostnummer    string                 `xml:"journalpostnummer"`
	Journalposttype      string                 `xml:"journalposttype"`
	Journalstatus        string                 `xml:"journalstatus"`
	Journaldato          string                 `xml:"journaldato"`
	DokumentetsDato      string                 `xml:"dokumentetsDato"`
	Korrespondansepart   []amKorrespondansepart `xml:"korrespondansepart"`
	Dokumentbeskrivelse  []struct {
		Dokumentobjekt []struct {
			Fil string `xml:"referanseDokumentfil"`
		} `xml:"dokumentobjekt"`
	} `xml:"dokumentbeskrivelse"`
}

// readArkivmelding reads arkivmelding.xml among files; a message without
// one (or with one that does not parse) gives the zero arkiv.
func readArkivmelding(files []File) arkiv {
	var a arkiv
	for _, f := range files {
		if f.Name != "arkivmelding.xml" {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return a
		}
		defer rc.Close()
		var am struct {
			Mappe []struct {
				Saksaar           string           `xml:"saksaar"`
				SaksSekvensnummer string           `xml:"sakssekvensnummer"`
				Registrering      []amRegistrering `xml:"registrering"`
			} `xml:"mappe"`
			Registrering []amRegistrering `xml:"registrering"`
		}
		if err := xml.NewDecoder(io.LimitReader(rc, 16<<20)).Decode(&am); err != nil {
			return a
		}
		regs := am.Registrering
		for _, m := range am.Mappe {
			a.saksaar, _ = strconv.Atoi(strings.TrimSpace(m.Saksaar))
			a.sakssekvensnummer, _ = strconv.ParseInt(strings.TrimSpace(m.SaksSekvensnummer), 10, 64)
			regs = append(regs, m.Registrering...)
		}
		if len(regs) == 0 {
			return a
		}
		r := regs[0]
		a.tittel, a.offentligTittel = r.Tittel, r.OffentligTittel
		a.journalaar, _ = strconv.Atoi(strings.TrimSpace(r.Journalaar))
		a.journalsekvensnummer, _ = strconv.ParseInt(strings.TrimSpace(r.Journalsekvensnummer), 10, 64)
		a.journalpostnummer, _ = strconv.ParseInt(strings.TrimSpace(r.Journalpostnummer), 10, 64)
		a.journalposttype, a.journalstatus = r.Journalposttype, r.Journalstatus
		a.journaldato, a.dokumentetsDato = dateTime(r.Journaldato), dateTime(r.DokumentetsDato)
		for _, k := range r.Korrespondansepart {
			if a.saksbehandler == "" {
				a.saksbehandler = k.Saksbehandler
			}
			if strings.EqualFold(k.Type, "avsender") && a.avsender.navn == "" {
				a.avsender.navn, a.avsender.postnr, a.avsender.poststed = k.Navn, k.Postnummer, k.Poststed
				if len(k.Postadresse) > 0 {
					a.avsender.adresse1 = k.Postadresse[0]
				}
				if len(k.Postadresse) > 1 {
					a.avsender.adresse2 = k.Postadresse[1]
				}
			}
		}
		for _, db := range r.Dokumentbeskrivelse {
			for _, do := range db.Dokumentobjekt {
				if n := strings.TrimSpace(do.Fil); n != "" {
					a.files = append(a.files, n)
				}
			}
		}
		return a
	}
	return a
}

// dateTime turns an arkivmelding date or date-time into RFC 3339; "" when
// it is neither.
func dateTime(s string) string {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC().Format(time.RFC3339)
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.Format(time.RFC3339)
	}
	return ""
}

// order gives the documents to send: those the arkivmelding names, in its
// order, then any other file but arkivmelding.xml itself.
func (a arkiv) order(files []File) []string {
	var out []string
	has := map[string]bool{}
	for _, f := range files {
		has[f.Name] = true
	}
	for _, n := range a.files {
		if has[n] && n != "arkivmelding.xml" {
			out = append(out, n)
			has[n] = false
		}
	}
	for _, f := range files {
		if has[f.Name] && f.Name != "arkivmelding.xml" {
			out = append(out, f.Name)
			has[f.Name] = false
		}
	}
	return out
}

// metadata is metadataFraAvleverendeSystem; nil when there is nothing.
func (a arkiv) metadata() *dpf.NoarkMetadata {
	m := &dpf.NoarkMetadata{Saksaar: a.saksaar, Sakssekvensnummer: a.sakssekvensnummer, Journalaar: a.journalaar,
		Journalsekvensnummer: a.journalsekvensnummer, Journalpostnummer: a.journalpostnummer,
		Journalposttype: a.journalposttype, Journalstatus: a.journalstatus, Journaldato: a.journaldato,
		DokumentetsDato: a.dokumentetsDato, Tittel: a.tittel, Saksbehandler: a.saksbehandler}
	if m.Tittel == "" && m.Saksaar == 0 && m.Journalaar == 0 && m.Journalposttype == "" && m.Journaldato == "" {
		return nil
	}
	if m.Saksaar != 0 && m.Saksaar < 1000 {
		m.Saksaar = 0
	}
	if m.Journalaar != 0 && m.Journalaar < 1000 {
		m.Journalaar = 0
	}
	return m
}

// buildArkivmelding writes the arkivmelding.xml of an incoming SvarInn
// shipment from its metadata (§5.3 step 3). The answer address is written
// by name and postal address only: a person number never goes in.
func buildArkivmelding(sh dpf.Shipment, files []string, now time.Time) ([]byte, error) {
	esc := func(s string) string {
		var b bytes.Buffer
		_ = xml.EscapeText(&b, []byte(s))
		return b.String()
	}
	md := sh.MetadataFraAvleverendeSystem
	if md == nil {
		md = &dpf.InnNoarkMetadata{}
	}
	ms := func(v int64) string {
		if v <= 0 {
			return ""
		}
		return time.UnixMilli(v).UTC().Format(time.RFC3339)
	}
	var b strings.Builder
	el := func(name, v string) {
		if strings.TrimSpace(v) != "" {
			fmt.Fprintf(&b, "<%s>%s</%s>", name, esc(v), name)
		}
	}
	num := func(name string, v int64) {
		if v > 0 {
			el(name, strconv.FormatInt(v, 10))
		}
	}
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	b.WriteString(`<arkivmelding xmlns="http://www.arkivverket.no/standarder/noark5/arkivmelding" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">`)
	el("system", "SvarUt")
	el("meldingId", sh.ID)
	el("tidspunkt", now.UTC().Format(time.RFC3339))
	el("antallFiler", strconv.Itoa(len(files)))
	b.WriteString(`<mappe xsi:type="saksmappe">`)
	el("tittel", firstNonEmpty(md.Tittel, sh.Tittel))
	num("saksaar", int64(md.Saksaar))
	num("sakssekvensnummer", md.Sakssekvensnummer)
	b.WriteString(`<registrering xsi:type="journalpost">`)
	el("tittel", firstNonEmpty(sh.Tittel, md.Tittel))
	el("offentligTittel", firstNonEmpty(sh.Tittel, md.Tittel))
	num("journalaar", int64(md.Journalaar))
	num("journalsekvensnummer", md.Journalsekvensnummer)
	num("journalpostnummer", md.Journalpostnummer)
	el("journalposttype", firstNonEmpty(md.Journalposttype, "I"))
	el("journalstatus", firstNonEmpty(md.Journalstatus, "M"))
	el("dokumentetsDato", ms(md.DokumentetsDato))
	el("journaldato", ms(md.Journaldato))
	if st := sh.SvarSendesTil; st != nil {
		b.WriteString("<korrespondansepart>")
		el("korrespondanseparttype", "avsender")
		el("korrespondansepartNavn", st.Navn)
		for _, l := range []string{st.Adresse1, st.Adresse2, st.Adresse3} {
			el("postadresse", l)
		}
		el("postnummer", st.Postnr)
		el("poststed", st.Poststed)
		el("land", st.Land)
		b.WriteString("</korrespondansepart>")
	}
	for i, f := range files {
		b.WriteString("<dokumentbeskrivelse>")
		el("dokumentnummer", strconv.Itoa(i+1))
		el("tilknyttetRegistreringSom", map[bool]string{true: "Hoveddokument", false: "Vedlegg"}[i == 0])
		el("tittel", f)
		b.WriteString("<dokumentobjekt>")
		el("referanseDokumentfil", f)
		b.WriteString("</dokumentobjekt></dokumentbeskrivelse>")
	}
	b.WriteString("</registrering></mappe></arkivmelding>\n")
	return []byte(b.String()), nil
}

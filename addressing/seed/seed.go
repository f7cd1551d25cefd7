// Package seed is the data the register simulators start from: one JSON file that seeds
// Enhetsregisteret, ELMA, KS SvarUt's address lookup, KRR and the Folkeregister gateway at once,
// so the Service Registry simulator can compute every routing decision of spec/addressing.md §4
// instead of replaying stored answers. The embedded default (default.json, returned by Default)
// covers every row of spec/addressing.md §10.
//
// # Format
//
// A seed file is a JSON object. Unknown fields are rejected, so a typo in a hand-written seed is
// an error instead of a silently missing register entry. All numbers are validated offline
// (package ident): organisation numbers need a correct mod-11 check digit, person numbers correct
// check digits (synthetic test numbers are accepted in a seed).
//
//	{
//	  "printProvider": "984661185",       // org number answering KRR's printSertifikat; needs "certificate": true
//	  "svarUtOrganisation": "971032146",  // org whose certificate goes on DPF records; needs "certificate": true
//	  "organisations": [ Organisation, ... ],
//	  "persons": [ Person, ... ]
//	}
//
// Organisation (one entry per organisation number):
//
//	{
//	  "organisasjonsnummer": "910075918",    // required, unique
//	  "purpose": "free text for people",     // what the entry is for; not served by any simulator
//	  "navn": "BIRISTRAND OG TJØTTA",        // required unless enhetsregisteret is "absent"
//	  "organisasjonsform": "ORGL",           // form code (ORGL, KOMM, AS, BEDR, ...), required likewise
//	  "postadresse": {"adresse": ["Postboks 1337"], "postnummer": "1337", "poststed": "OSLO",
//	                  "land": "Norge", "landkode": "NO", "kommunenummer": "0301"},
//	  "forretningsadresse": { same shape },  // optional
//	  "enhetsregisteret": "present",         // "present" (default), "absent" (404) or "removed" (410)
//	  "slettedato": "2021-03-01",            // optional deletion date (YYYY-MM-DD); served with 200
//	  "konkurs": false, "underAvvikling": false, "underTvangsavviklingEllerTvangsopplosning": false,
//	  "overordnetEnhet": "910076787",        // set for a sub-unit: served only under /underenheter
//	  "certificate": true,                   // the sandbox PKI issues a business certificate (VirkSert,
//	                                         // Maskinporten); a DPO/DPE receiver without one gets SR 404
//	  "elma": [                              // ELMA SMP registrations of participant 0192:<orgnr>
//	    {"documentType": "urn:no:difi:arkivmelding:xsd::arkivmelding",
//	     "processes": ["urn:no:difi:profile:arkivmelding:administrasjon:ver1.0"]}
//	  ],
//	  "svarut": [                            // KS SvarUt receiving systems (mottakersystemer)
//	    {"id": "…", "navn": "…", "forsendelseType": "", "niva": 4}
//	  ],
//	  "herId": "8142519"                     // optional: the organisation's HER-id in NHN's address
//	                                         // register (DPH); 1 to 9 digits, unique in the seed; needs
//	                                         // "navn" and "certificate": true (the register's certificate)
//	}
//
// Person (one entry per person number):
//
//	{
//	  "personidentifikator": "06068700602",  // required, unique
//	  "purpose": "free text",
//	  "krr": {                                 // absent: KRR answers status IKKE_REGISTRERT
//	    "reservasjon": "NEI",                  // JA | NEI
//	    "status": "AKTIV",                     // AKTIV | SLETTET | IKKE_REGISTRERT
//	    "varslingsstatus": "KAN_VARSLES",      // KAN_VARSLES | KAN_IKKE_VARSLES
//	    "epostadresse": "…", "mobiltelefonnummer": "+4799999999",
//	    "digitalPost": {"postkasseadresse": "ola.nordmann#1A2B", "postkasseleverandoeradresse": "984661185"},
//	    "certificate": true,                   // the sandbox PKI issues the person's encryption certificate
//	    "spraak": "nb"
//	  },
//	  "folkeregister": {                       // absent: the Folkeregister gateway answers 404
//	    "fornavn": "Ola", "mellomnavn": "", "etternavn": "Nordmann",
//	    "postadresse": {"adresselinje": ["Fjordgata 3"], "postnummer": "6856", "poststed": "SOGNDAL",
//	                    "landkode": "NO"}      // absent: secret address, no print record
//	  },
//	  "fastlege": "8142519"                    // optional: HER-id of the person's regular GP (DPH
//	                                           // fastlege-for:); an organisation's herId in this seed;
//	                                           // needs "folkeregister" (the SR adds the patient's name)
//	}
//
// Certificates are not in the seed: Organisations and CertificatePersons list who needs one, and
// the caller (the sandbox, with packaging/testpki; tests, with throwaway certificates) passes PEM
// to the simulators' options.
//
// This package imports only the standard library and addressing/ident, addressing/process.
package seed

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/addressing/process"
)

//go:embed default.json
var defaultJSON []byte

// Seed is the parsed content of a seed file. Simulators read it and never change it.
type Seed struct {
	PrintProvider      string         `json:"printProvider"`
	SvarUtOrganisation string         `json:"svarUtOrganisation,omitempty"`
	Orgs               []Organisation `json:"organisations"`
	Persons            []Person       `json:"persons"`
}

// Organisation is one organisation across Enhetsregisteret, ELMA, SvarUt and VirkSert.
type Organisation struct {
	Organisasjonsnummer string   `json:"organisasjonsnummer"`
	Purpose             string   `json:"purpose,omitempty"`
	Navn                string   `json:"navn,omitempty"`
	Organisasjonsform   string   `json:"organisasjonsform,omitempty"`
	Postadresse         *Address `json:"postadresse,omitempty"`
	Forretningsadresse  *Address `json:"forretningsadresse,omitempty"`
	// Enhetsregisteret is "present" (or empty), "absent" or "removed".
	Enhetsregisteret     string           `json:"enhetsregisteret,omitempty"`
	Slettedato           string           `json:"slettedato,omitempty"`
	Konkurs              bool             `json:"konkurs,omitempty"`
	UnderAvvikling       bool             `json:"underAvvikling,omitempty"`
	UnderTvangsavvikling bool             `json:"underTvangsavviklingEllerTvangsopplosning,omitempty"`
	OverordnetEnhet      string           `json:"overordnetEnhet,omitempty"`
	Certificate          bool             `json:"certificate,omitempty"`
	ELMA                 []ELMA           `json:"elma,omitempty"`
	SvarUt               []MottakerSystem `json:"svarut,omitempty"`
	// HerID is the organisation's HER-id in NHN's address register (DPH).
	HerID string `json:"herId,omitempty"`
}

// Enhetsregisteret states.
const (
	ERPresent = "present"
	ERAbsent  = "absent"
	ERRemoved = "removed"
)

// Address is an Enhetsregisteret address.
type Address struct {
	Adresse       []string `json:"adresse,omitempty"`
	Postnummer    string   `json:"postnummer,omitempty"`
	Poststed      string   `json:"poststed,omitempty"`
	Land          string   `json:"land,omitempty"`
	Landkode      string   `json:"landkode,omitempty"`
	Kommune       string   `json:"kommune,omitempty"`
	Kommunenummer string   `json:"kommunenummer,omitempty"`
}

// ELMA is one document type registration in the SMP with the processes it lists.
type ELMA struct {
	DocumentType string   `json:"documentType"`
	Processes    []string `json:"processes"`
}

// MottakerSystem is a KS SvarUt receiving system.
type MottakerSystem struct {
	ID              string `json:"id"`
	Navn            string `json:"navn"`
	ForsendelseType string `json:"forsendelseType"`
	Niva            int    `json:"niva"`
}

// Person is one citizen across KRR and the Folkeregister gateway.
type Person struct {
	Personidentifikator string         `json:"personidentifikator"`
	Purpose             string         `json:"purpose,omitempty"`
	KRR                 *KRR           `json:"krr,omitempty"`
	Folkeregister       *Folkeregister `json:"folkeregister,omitempty"`
	// Fastlege is the HER-id of the person's regular GP (DPH fastlege-for:).
	Fastlege string `json:"fastlege,omitempty"`
}

// KRR is a person's entry in the contact and reservation register.
type KRR struct {
	Reservasjon        string       `json:"reservasjon"`
	Status             string       `json:"status"`
	Varslingsstatus    string       `json:"varslingsstatus"`
	Epostadresse       string       `json:"epostadresse,omitempty"`
	Mobiltelefonnummer string       `json:"mobiltelefonnummer,omitempty"`
	DigitalPost        *DigitalPost `json:"digitalPost,omitempty"`
	Certificate        bool         `json:"certificate,omitempty"`
	Spraak             string       `json:"spraak,omitempty"`
}

// DigitalPost is a person's digital mailbox.
type DigitalPost struct {
	Postkasseadresse            string `json:"postkasseadresse"`
	Postkasseleverandoeradresse string `json:"postkasseleverandoeradresse"`
}

// Folkeregister is what the Folkeregister gateway knows of a person.
type Folkeregister struct {
	Fornavn     string           `json:"fornavn"`
	Mellomnavn  string           `json:"mellomnavn,omitempty"`
	Etternavn   string           `json:"etternavn"`
	Postadresse *FolkeregAddress `json:"postadresse,omitempty"`
}

// FolkeregAddress is a postal address from the Folkeregister gateway.
type FolkeregAddress struct {
	Adresselinje []string `json:"adresselinje"`
	Postnummer   string   `json:"postnummer"`
	Poststed     string   `json:"poststed"`
	Landkode     string   `json:"landkode"`
}

// ErrInvalidSeed is wrapped by every validation error of Load and Parse.
var ErrInvalidSeed = errors.New("invalid seed")

// Default returns the embedded default seed, freshly parsed: callers may keep and change it.
func Default() (*Seed, error) {
	s, err := Parse(defaultJSON)
	if err != nil {
		return nil, fmt.Errorf("parsing embedded default seed: %w", err)
	}
	return s, nil
}

// DefaultJSON returns the embedded default seed file, to start a custom seed from.
func DefaultJSON() []byte { return bytes.Clone(defaultJSON) }

// Load reads and validates a seed file.
func Load(path string) (*Seed, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading seed: %w", err)
	}
	s, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("seed %s: %w", path, err)
	}
	return s, nil
}

// Parse decodes and validates a seed. It reports every problem at once, each naming the JSON
// path of the offending entry; person numbers are never quoted.
func Parse(b []byte) (*Seed, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s Seed
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: decoding json: %w", ErrInvalidSeed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the seed object", ErrInvalidSeed)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Validate checks every entry and returns all problems joined, each wrapping ErrInvalidSeed.
func (s *Seed) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidSeed}, args...)...))
	}
	orgs := map[string]*Organisation{}
	herIDs := map[string]bool{}
	for i := range s.Orgs {
		o := &s.Orgs[i]
		at := fmt.Sprintf("organisations[%d]", i)
		if _, err := ident.ParseOrgNumber(o.Organisasjonsnummer); err != nil || len(o.Organisasjonsnummer) != 9 {
			bad("%s.organisasjonsnummer %q: want 9 digits with a valid mod-11 check digit", at, o.Organisasjonsnummer)
			continue
		}
		at = fmt.Sprintf("organisations[%d] (%s)", i, o.Organisasjonsnummer)
		if orgs[o.Organisasjonsnummer] != nil {
			bad("%s: organisation number listed twice", at)
		}
		orgs[o.Organisasjonsnummer] = o
		switch o.Enhetsregisteret {
		case "", ERPresent, ERRemoved:
			if o.Navn == "" {
				bad("%s.navn: required for an organisation in Enhetsregisteret", at)
			}
			if o.Organisasjonsform == "" {
				bad("%s.organisasjonsform: required for an organisation in Enhetsregisteret", at)
			}
		case ERAbsent:
		default:
			bad("%s.enhetsregisteret %q: want %q, %q or %q", at, o.Enhetsregisteret, ERPresent, ERAbsent, ERRemoved)
		}
		if o.Slettedato != "" {
			if _, err := time.Parse(time.DateOnly, o.Slettedato); err != nil {
				bad("%s.slettedato %q: want YYYY-MM-DD", at, o.Slettedato)
			}
		}
		for j, e := range o.ELMA {
			if !process.KnownDocumentType(e.DocumentType) {
				bad("%s.elma[%d].documentType %q: not a document type of any process", at, j, e.DocumentType)
			}
			if len(e.Processes) == 0 {
				bad("%s.elma[%d].processes: at least one process", at, j)
			}
			for k, p := range e.Processes {
				if _, ok := process.Lookup(p); !ok {
					bad("%s.elma[%d].processes[%d] %q: unknown process", at, j, k, p)
				}
			}
		}
		if o.HerID != "" {
			switch {
			case !validHerID(o.HerID):
				bad("%s.herId %q: want 1 to 9 digits", at, o.HerID)
			case herIDs[o.HerID]:
				bad("%s.herId %q: HER-id listed twice", at, o.HerID)
			}
			herIDs[o.HerID] = true
			// The SR answers the register's name and certificate on the DPH record.
			if o.Navn == "" || !o.Certificate {
				bad("%s.herId: needs \"navn\" and \"certificate\": true", at)
			}
		}
		for j, m := range o.SvarUt {
			if m.Niva != 3 && m.Niva != 4 {
				bad("%s.svarut[%d].niva %d: want 3 or 4", at, j, m.Niva)
			}
			if m.ID == "" {
				bad("%s.svarut[%d].id: required", at, j)
			}
		}
	}
	for i := range s.Orgs {
		o := &s.Orgs[i]
		if o.OverordnetEnhet == "" {
			continue
		}
		p := orgs[o.OverordnetEnhet]
		if p == nil || p.OverordnetEnhet != "" {
			bad("organisations[%d] (%s).overordnetEnhet %q: want a main unit listed in this seed", i, o.Organisasjonsnummer, o.OverordnetEnhet)
		}
	}
	needCert := func(field, orgnr string) {
		if orgnr == "" {
			bad("%s: required", field)
			return
		}
		o := orgs[orgnr]
		if o == nil || !o.Certificate {
			bad("%s %q: want an organisation of this seed with \"certificate\": true", field, orgnr)
		}
	}
	needCert("printProvider", s.PrintProvider)
	if s.SvarUtOrganisation != "" {
		needCert("svarUtOrganisation", s.SvarUtOrganisation)
	}
	persons := map[string]bool{}
	for i, p := range s.Persons {
		at := fmt.Sprintf("persons[%d]", i)
		pid, err := ident.Policy{AllowSynthetic: true}.ParsePersonID(p.Personidentifikator)
		if err != nil {
			// The error names the rule, never the number.
			bad("%s.personidentifikator: %w", at, err)
			continue
		}
		if persons[pid.Reveal()] {
			bad("%s: person number listed twice", at)
		}
		persons[pid.Reveal()] = true
		if k := p.KRR; k != nil {
			if k.Reservasjon != "JA" && k.Reservasjon != "NEI" {
				bad("%s.krr.reservasjon %q: want JA or NEI", at, k.Reservasjon)
			}
			switch k.Status {
			case "AKTIV", "SLETTET", "IKKE_REGISTRERT":
			default:
				bad("%s.krr.status %q: want AKTIV, SLETTET or IKKE_REGISTRERT", at, k.Status)
			}
			if k.Varslingsstatus != "KAN_VARSLES" && k.Varslingsstatus != "KAN_IKKE_VARSLES" {
				bad("%s.krr.varslingsstatus %q: want KAN_VARSLES or KAN_IKKE_VARSLES", at, k.Varslingsstatus)
			}
			if dp := k.DigitalPost; dp != nil {
				if dp.Postkasseadresse == "" {
					bad("%s.krr.digitalPost.postkasseadresse: required", at)
				}
				if o := orgs[dp.Postkasseleverandoeradresse]; o == nil || !o.Certificate {
					bad("%s.krr.digitalPost.postkasseleverandoeradresse %q: want an organisation of this seed with \"certificate\": true", at, dp.Postkasseleverandoeradresse)
				}
			}
			switch k.Spraak {
			case "", "nb", "nn", "en", "se":
			default:
				bad("%s.krr.spraak %q: want nb, nn, en or se", at, k.Spraak)
			}
		}
		if p.Fastlege != "" {
			if !herIDs[p.Fastlege] {
				bad("%s.fastlege %q: want the herId of an organisation in this seed", at, p.Fastlege)
			}
			// fastlege-for answers carry the patient's name from Folkeregisteret.
			if p.Folkeregister == nil {
				bad("%s.fastlege: needs \"folkeregister\"", at)
			}
		}
		if f := p.Folkeregister; f != nil {
			if f.Fornavn == "" || f.Etternavn == "" {
				bad("%s.folkeregister: fornavn and etternavn are required", at)
			}
			if a := f.Postadresse; a != nil && (len(a.Adresselinje) == 0 || a.Postnummer == "" || a.Poststed == "") {
				bad("%s.folkeregister.postadresse: adresselinje, postnummer and poststed are required", at)
			}
		}
	}
	return errors.Join(errs...)
}

// validHerID reports whether s is 1 to 9 digits without a leading zero, the shape of HER-ids
// in NHN's address register.
func validHerID(s string) bool {
	if len(s) == 0 || len(s) > 9 || s[0] == '0' {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// HealthParty returns the organisation with the given HER-id.
func (s *Seed) HealthParty(herID string) (*Organisation, bool) {
	for i := range s.Orgs {
		if herID != "" && s.Orgs[i].HerID == herID {
			return &s.Orgs[i], true
		}
	}
	return nil, false
}

// Organisations returns, in seed order, the organisation numbers that need a business
// certificate from the sandbox PKI (entries with "certificate": true).
func (s *Seed) Organisations() []string {
	var out []string
	for _, o := range s.Orgs {
		if o.Certificate {
			out = append(out, o.Organisasjonsnummer)
		}
	}
	return out
}

// CertificatePersons returns, in seed order, the persons whose KRR entry needs a personal
// encryption certificate (krr.certificate true).
func (s *Seed) CertificatePersons() []ident.PersonID {
	var out []ident.PersonID
	for _, p := range s.Persons {
		if p.KRR != nil && p.KRR.Certificate {
			pid, err := ident.Policy{AllowSynthetic: true}.ParsePersonID(p.Personidentifikator)
			if err == nil {
				out = append(out, pid)
			}
		}
	}
	return out
}

// Organisation returns the entry for an organisation number.
func (s *Seed) Organisation(orgnr string) (*Organisation, bool) {
	for i := range s.Orgs {
		if s.Orgs[i].Organisasjonsnummer == orgnr {
			return &s.Orgs[i], true
		}
	}
	return nil, false
}

// Person returns the entry for a person number.
func (s *Seed) Person(pid string) (*Person, bool) {
	for i := range s.Persons {
		if s.Persons[i].Personidentifikator == pid {
			return &s.Persons[i], true
		}
	}
	return nil, false
}

package sr

import (
	"fmt"
	"log/slog"
	"regexp"

	"github.com/efm-go/efm/addressing/ident"
)

// Answer is the SR's answer to an identifier lookup (spec/addressing.md §3.2). For a citizen it
// is personal data: keep it for the processing of one message only, never store or log it.
type Answer struct {
	InfoRecord     InfoRecord      `json:"infoRecord"`
	ServiceRecords []ServiceRecord `json:"serviceRecords"`
}

// InfoRecord names the receiver.
type InfoRecord struct {
	Identifier       Identifier   `json:"identifier"`
	OrganizationName string       `json:"organizationName,omitempty"`
	Postadresse      *Postadresse `json:"postadresse,omitempty"`
	EntityType       *EntityType  `json:"entityType,omitempty"`
	// DPH only.
	HerID                  string `json:"herId,omitempty"`
	ParentHerID            string `json:"parentHerId,omitempty"`
	ParentOrganizationName string `json:"parentOrganizationName,omitempty"`
	OrganizationNumber     string `json:"organizationNumber,omitempty"`
}

// Postadresse is an info record's postal address.
type Postadresse struct {
	Adresse    string `json:"adresse,omitempty"`
	Postnummer string `json:"postnummer,omitempty"`
	Poststed   string `json:"poststed,omitempty"`
	Land       string `json:"land,omitempty"`
}

// EntityType is the organisation form code, "citizen" or "NorskHelsenett".
type EntityType struct {
	Name string `json:"name"`
}

// ServiceRecord is one (process, channel) the receiver can be reached on.
type ServiceRecord struct {
	// OrganisationNumber is the receiver; for a citizen record, the person number.
	OrganisationNumber Identifier `json:"organisationNumber"`
	PemCertificate     string     `json:"pemCertificate,omitempty"`
	Process            string     `json:"process"`
	DocumentTypes      []string   `json:"documentTypes"`
	Service            Service    `json:"service"`
	// DPI only.
	OrgnrPostkasse   string       `json:"orgnrPostkasse,omitempty"`
	PostkasseAdresse *string      `json:"postkasseAdresse,omitempty"`
	EpostAdresse     string       `json:"epostAdresse,omitempty"`
	Mobilnummer      string       `json:"mobilnummer,omitempty"`
	KanVarsles       *bool        `json:"kanVarsles,omitempty"`
	FysiskPost       *bool        `json:"fysiskPost,omitempty"`
	PostAddress      *PostAddress `json:"postAddress,omitempty"`
	ReturnAddress    *PostAddress `json:"returnAddress,omitempty"`
	Spraak           string       `json:"spraak,omitempty"`
	// DPH only.
	HerID string `json:"herId,omitempty"`
	// Patient is set on DPH records of fastlege-for: lookups.
	Patient *Patient `json:"patient,omitempty"`
}

// Patient is the patient of a fastlege-for: lookup, from Folkeregisteret. It is personal data:
// Fnr prints masked.
type Patient struct {
	Fnr        Identifier `json:"fnr"`
	FirstName  string     `json:"firstName,omitempty"`
	MiddleName string     `json:"middleName,omitempty"`
	LastName   string     `json:"lastName,omitempty"`
}

// Service is a record's channel.
type Service struct {
	Identifier         string `json:"identifier"`
	EndpointURL        string `json:"endpointUrl,omitempty"`
	ServiceCode        string `json:"serviceCode,omitempty"`
	ServiceEditionCode string `json:"serviceEditionCode,omitempty"`
	// SecurityLevel is set on DPF records: the level the SvarUt receiver will get.
	SecurityLevel *int   `json:"securityLevel"`
	Resource      string `json:"resource,omitempty"`
}

// PostAddress is a DPI print address.
type PostAddress struct {
	Name       string `json:"name,omitempty"`
	Street     string `json:"street,omitempty"`
	PostalCode string `json:"postalCode,omitempty"`
	PostalArea string `json:"postalArea,omitempty"`
	Country    string `json:"country,omitempty"`
}

// Identifier is a receiver identifier inside an SR answer: an organisation number, or a person
// number on citizen records. It travels unchanged in JSON (it is the wire format), but prints
// masked in fmt and slog whenever it looks like a person number, so a record that reaches a log
// line by mistake does not carry the number.
type Identifier string

// Reveal returns the identifier unmasked.
func (i Identifier) Reveal() string { return string(i) }

// String masks person numbers.
func (i Identifier) String() string {
	if ident.LooksLikePersonNumber(string(i)) {
		return ident.Mask
	}
	return string(i)
}

// Format writes String for every verb.
func (i Identifier) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(i.String())) }

// GoString is String.
func (i Identifier) GoString() string { return i.String() }

// LogValue is String.
func (i Identifier) LogValue() slog.Value { return slog.StringValue(i.String()) }

var digitRun = regexp.MustCompile(`\d{11,}`)

// Scrub replaces every 11-digit run that passes the person-number checksums with the mask: SR
// error descriptions may quote a person number ("No service record found for citizen: …").
func Scrub(s string) string {
	return digitRun.ReplaceAllStringFunc(s, func(run string) string {
		if ident.LooksLikePersonNumber(run) {
			return ident.Mask
		}
		return run
	})
}

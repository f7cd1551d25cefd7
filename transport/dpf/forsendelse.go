// Package dpf holds the clients of KS FIKS (spec channels.md §5): SvarUt for
// sending, over REST (v3 send, v2 status, external reference and shipment
// types; RESTClient) or SOAP V9, and SvarInn for receiving (SvarInn). The
// simulator of both is dpfsim, beside it.
//
// Every document of a shipment travels CMS-encrypted on its own to SvarUt's
// certificate (Encrypted); SvarInn hands back a CMS of a ZIP encrypted to the
// receiving organisation, which the caller decrypts.
//
// Idempotency: SvarUt has no idempotency key, so the messageId travels as the
// shipment's external reference and a retried send first asks SvarUt for a
// shipment with that reference (Sender.Send with retry set).
//
// It is a leaf: it imports neither the core nor addressing; tokens come
// through TokenSource.
package dpf

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"

	"github.com/efm-go/efm/packaging/cms"
)

// Forsendelse is one shipment to an organisation in the shape of SvarUt REST
// v3's OrganisasjonForsendelse (JSON names as KS spells them); the SOAP
// client maps the same fields onto V9's forsendelse.
type Forsendelse struct {
	// ID is the shipment id SOAP's sendForsendelseMedId asks for (the
	// SenderRef scope when it is a UUID, else the messageId); REST lets
	// SvarUt choose.
	ID                           string         `json:"-"`
	Tittel                       string         `json:"tittel"`
	Mottaker                     Mottaker       `json:"mottaker"`
	AvgivendeSystem              string         `json:"avgivendeSystem,omitempty"`
	Konteringskode               string         `json:"konteringskode,omitempty"`
	KunDigitalLevering           bool           `json:"kunDigitalLevering"`
	Kryptert                     bool           `json:"kryptert"`
	Utskriftskonfigurasjon       *Utskrift      `json:"utskriftskonfigurasjon,omitempty"`
	Sikkerhetsniva               string         `json:"sikkerhetsniva,omitempty"` // BETYDELIG (3) or HOYESTE (4)
	MetadataFraAvleverendeSystem *NoarkMetadata `json:"metadataFraAvleverendeSystem,omitempty"`
	SvarSendesTil                *SvarSendesTil `json:"svarSendesTil,omitempty"`
	SvarPaForsendelseID          string         `json:"svarPaForsendelseId,omitempty"`
	Dokumenter                   []Dokument     `json:"dokumenter"`
	Forsendelsestype             string         `json:"forsendelsestype,omitempty"`
	EksternReferanse             string         `json:"eksternReferanse,omitempty"`
}

// Mottaker is the receiving organisation.
type Mottaker struct {
	Navn      string   `json:"navn"`
	DigitalID string   `json:"digitalId"` // organisation number
	Adresse   *Adresse `json:"adresse,omitempty"`
}

// Adresse is a postal address; SvarUt needs adresselinje1 and poststed.
type Adresse struct {
	Adresselinje1 string `json:"adresselinje1"`
	Adresselinje2 string `json:"adresselinje2,omitempty"`
	Adresselinje3 string `json:"adresselinje3,omitempty"`
	Postnummer    string `json:"postnummer,omitempty"`
	Poststed      string `json:"poststed"`
	Landkode      string `json:"landkode,omitempty"`
}

// SvarSendesTil is where an answer goes. DigitalID may be a person number
// (Type PERSON): it is a PersonNumber so it never prints.
type SvarSendesTil struct {
	Navn      string      `json:"navn"`
	Type      string      `json:"type"` // ORGANISASJON or PERSON
	DigitalID PersonOrOrg `json:"digitalId"`
	Adresse   Adresse     `json:"adresse"`
}

// Utskrift is the print configuration.
type Utskrift struct {
	Tosidig bool `json:"tosidig"`
}

// NoarkMetadata is metadataFraAvleverendeSystem.
type NoarkMetadata struct {
	Saksaar              int        `json:"saksaar,omitempty"`
	Sakssekvensnummer    int64      `json:"sakssekvensnummer,omitempty"`
	Journalpostnummer    int64      `json:"journalpostnummer,omitempty"`
	Journalaar           int        `json:"journalaar,omitempty"`
	Journalsekvensnummer int64      `json:"journalsekvensnummer,omitempty"`
	Journalposttype      string     `json:"journalposttype,omitempty"`
	Journalstatus        string     `json:"journalstatus,omitempty"`
	Journaldato          string     `json:"journaldato,omitempty"`     // date-time
	DokumentetsDato      string     `json:"dokumentetsDato,omitempty"` // date-time
	Tittel               string     `json:"tittel,omitempty"`
	Saksbehandler        string     `json:"saksbehandler,omitempty"`
	EkstraMetadata       []Metadata `json:"ekstraMetadata,omitempty"`
}

// Metadata is one key/value pair.
type Metadata struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Dokument is one document: its metadata in the shipment and its content.
type Dokument struct {
	Filnavn                    string `json:"filnavn"`
	MimeType                   string `json:"mimeType"`
	SkalEkskluderesFraUtskrift bool   `json:"skalEkskluderesFraUtskrift"`
	// Open returns the bytes that travel (see Encrypted); it may be called
	// once per attempt.
	Open func() (io.ReadCloser, error) `json:"-"`
}

// Encrypted returns d with its content CMS-encrypted for cert on the fly
// (RSAES-OAEP or kt, AES-256-CBC; channels.md §1.9.1), streaming: the
// document is never held in memory.
func Encrypted(d Dokument, cert *x509.Certificate, kt cms.KeyTransport) Dokument {
	open := d.Open
	d.Open = func() (io.ReadCloser, error) {
		src, err := open()
		if err != nil {
			return nil, err
		}
		pr, pw := io.Pipe()
		go func() {
			defer src.Close()
			_, err := cms.Encrypt(pw, src, cert, cms.EncryptOptions{KeyTransport: kt, Cipher: cms.AES256CBC})
			pw.CloseWithError(err)
		}()
		return pr, nil
	}
	return d
}

// PersonOrOrg is an identifier that may be a national identity number: it
// marshals to JSON as it is (the wire needs it) but prints masked when it is
// eleven characters long, so a shipment that reaches a log never carries it.
type PersonOrOrg string

// Reveal returns the identifier unmasked.
func (p PersonOrOrg) Reveal() string { return string(p) }

func (p PersonOrOrg) String() string {
	if len(p) == 11 {
		return "***********"
	}
	return string(p)
}

// Format prints String for every verb, %#v included.
func (p PersonOrOrg) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, p.String()) }

// LogValue implements slog.LogValuer.
func (p PersonOrOrg) LogValue() slog.Value { return slog.StringValue(p.String()) }

// MarshalJSON writes the identifier unmasked: only the wire sees it.
func (p PersonOrOrg) MarshalJSON() ([]byte, error) { return json.Marshal(string(p)) }

// TokenSource hands out Maskinporten tokens for scope ks:fiks acting for
// consumerOrg (channels.md §1.7); *maskinporten.Client fits with a few lines.
type TokenSource interface {
	Token(ctx context.Context, consumerOrg string) (string, error)
}

// Status is a shipment's status at SvarUt.
type Status struct {
	ID     string
	Status string // MOTTATT, AKSEPTERT, ..., LEST, ...
	At     string // sisteStatusEndring as SvarUt wrote it
}

// earlierShipment is the id of the shipment an earlier attempt of a retried
// send left at SvarUt, found by its external reference (the messageId); ""
// when there is none or this is no retry. Both variants ask it first: SvarUt
// would otherwise take the resend as a second shipment (REST) or refuse it
// as a duplicate (SOAP).
func earlierShipment(ctx context.Context, lookup func(ctx context.Context, sender, ref string) ([]string, error),
	sender string, f Forsendelse, retry bool) (string, error) {
	if !retry || f.EksternReferanse == "" {
		return "", nil
	}
	ids, err := lookup(ctx, sender, f.EksternReferanse)
	if err != nil || len(ids) == 0 {
		return "", err
	}
	return ids[0], nil
}

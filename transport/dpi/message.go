package dpi

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/efm-go/efm/packaging/jws"
)

// Standard and process of a DPI business message type (channels.md §4.4).
func Standard(typ string) string {
	return "urn:fdc:digdir.no:2020:innbyggerpost:xsd::innbyggerpost##urn:fdc:digdir.no:2020:innbyggerpost:schema:" + typ + "::1.0"
}

func processOf(typ string) string {
	return "urn:fdc:digdir.no:2020:profile:egovernment:innbyggerpost:" + typ + ":ver1.0"
}

// DigestSHA256 is the digest method of dokumentpakkefingeravtrykk.
const DigestSHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"

// Identifier is an ISO 6523 party, as in the SBD header and avsender.
type Identifier struct {
	Authority string `json:"authority"`
	Value     string `json:"value"`
}

// Org is 0192:<orgnr> under iso6523-actorid-upis.
func Org(orgnr string) Identifier {
	return Identifier{Authority: "iso6523-actorid-upis", Value: "0192:" + orgnr}
}

type actor struct {
	Identifier Identifier `json:"identifier"`
}

type scopeInformation struct {
	ExpectedResponseDateTime string `json:"expectedResponseDateTime,omitempty"`
}

type scope struct {
	Type               string             `json:"type"`
	InstanceIdentifier string             `json:"instanceIdentifier,omitempty"`
	Identifier         string             `json:"identifier,omitempty"`
	ScopeInformation   []scopeInformation `json:"scopeInformation,omitempty"`
}

type documentIdentification struct {
	Standard            string `json:"standard"`
	TypeVersion         string `json:"typeVersion"`
	InstanceIdentifier  string `json:"instanceIdentifier"`
	Type                string `json:"type"`
	CreationDateAndTime string `json:"creationDateAndTime"`
}

// Header is the SBD header of a DPI business message.
type Header struct {
	HeaderVersion          string                 `json:"headerVersion"`
	Sender                 []actor                `json:"sender"`
	Receiver               []actor                `json:"receiver"`
	DocumentIdentification documentIdentification `json:"documentIdentification"`
	BusinessScope          struct {
		Scope []scope `json:"scope"`
	} `json:"businessScope"`
}

// NewHeader builds the header of §4.4: from sender to receiver (nine-digit
// org numbers), type and ids, expectedResponse zero for none.
func NewHeader(typ, sender, receiver, messageID, conversationID string, created, expectedResponse time.Time) Header {
	h := Header{HeaderVersion: "1.0", Sender: []actor{{Org(sender)}}, Receiver: []actor{{Org(receiver)}},
		DocumentIdentification: documentIdentification{Standard: Standard(typ), TypeVersion: "1.0", InstanceIdentifier: messageID,
			Type: typ, CreationDateAndTime: created.Format(time.RFC3339)}}
	s := scope{Type: "ConversationId", InstanceIdentifier: conversationID, Identifier: processOf(typ)}
	if !expectedResponse.IsZero() {
		s.ScopeInformation = []scopeInformation{{ExpectedResponseDateTime: expectedResponse.Format(time.RFC3339)}}
	}
	h.BusinessScope.Scope = []scope{s}
	return h
}

// ConversationID is the instanceIdentifier of the ConversationId scope.
func (h Header) ConversationID() string {
	for _, s := range h.BusinessScope.Scope {
		if s.Type == "ConversationId" {
			return s.InstanceIdentifier
		}
	}
	return ""
}

// Avsender is the sending organisation.
type Avsender struct {
	Virksomhetsidentifikator Identifier `json:"virksomhetsidentifikator"`
	Avsenderidentifikator    string     `json:"avsenderidentifikator,omitempty"`
	FakturaReferanse         string     `json:"fakturaReferanse,omitempty"`
}

// Fingerprint is dokumentpakkefingeravtrykk.
type Fingerprint struct {
	DigestMethod string `json:"digestMethod"`
	DigestValue  string `json:"digestValue"`
}

// FingerprintOf is the base64 SHA-256 of the CMS bytes (§4.3 step 4).
func FingerprintOf(sum [sha256.Size]byte) Fingerprint {
	return Fingerprint{DigestMethod: DigestSHA256, DigestValue: base64.StdEncoding.EncodeToString(sum[:])}
}

// Varsel is one notification (e-mail or SMS).
type Varsel struct {
	Epostadresse       string `json:"epostadresse,omitempty"`
	Mobiltelefonnummer string `json:"mobiltelefonnummer,omitempty"`
	Varslingstekst     string `json:"varslingstekst"`
	Repetisjoner       []int  `json:"repetisjoner"`
}

// Varsler are the notifications the mailbox sends.
type Varsler struct {
	Epostvarsel *Varsel `json:"epostvarsel,omitempty"`
	Smsvarsel   *Varsel `json:"smsvarsel,omitempty"`
}

// Digital is the business message of a letter to a digital mailbox.
type Digital struct {
	Avsender                   Avsender    `json:"avsender"`
	Mottaker                   Mailbox     `json:"mottaker"`
	Dokumentpakkefingeravtrykk Fingerprint `json:"dokumentpakkefingeravtrykk"`
	Maskinportentoken          string      `json:"maskinportentoken"`
	Sikkerhetsnivaa            int         `json:"sikkerhetsnivaa"`
	Virkningstidspunkt         string      `json:"virkningstidspunkt,omitempty"`
	Aapningskvittering         bool        `json:"aapningskvittering,omitempty"`
	Ikkesensitivtittel         string      `json:"ikkesensitivtittel"`
	Spraak                     string      `json:"spraak"`
	Varsler                    *Varsler    `json:"varsler,omitempty"`
}

// Mailbox is the citizen's address at the mailbox supplier.
type Mailbox struct {
	Postkasseadresse string `json:"postkasseadresse"`
}

// Address is an address block of a printed letter.
type Address struct {
	Navn          string `json:"navn,omitempty"`
	Adresselinje1 string `json:"adresselinje1,omitempty"`
	Adresselinje2 string `json:"adresselinje2,omitempty"`
	Adresselinje3 string `json:"adresselinje3,omitempty"`
	Adresselinje4 string `json:"adresselinje4,omitempty"`
	Postnummer    string `json:"postnummer,omitempty"`
	Poststed      string `json:"poststed,omitempty"`
	Land          string `json:"land,omitempty"`
}

// Norwegian reports whether the address is in Norway (land empty, Norge or
// Norway).
func (a Address) Norwegian() bool {
	l := strings.ToLower(strings.TrimSpace(a.Land))
	return l == "" || l == "norge" || l == "norway" || l == "no"
}

// Fold writes a foreign address the way §4.4 says: postnummer and poststed
// go into the first free line among adresselinje2–4. A Norwegian address
// loses land: the schema allows one form or the other, never both.
func (a Address) Fold() Address {
	if a.Norwegian() {
		a.Land = ""
		return a
	}
	place := strings.TrimSpace(strings.TrimSpace(a.Postnummer) + " " + strings.TrimSpace(a.Poststed))
	a.Postnummer, a.Poststed = "", ""
	if place == "" {
		return a
	}
	for _, l := range []*string{&a.Adresselinje2, &a.Adresselinje3, &a.Adresselinje4} {
		if strings.TrimSpace(*l) == "" {
			*l = place
			return a
		}
	}
	a.Adresselinje4 += " " + place
	return a
}

// Retur says where undeliverable letters go.
type Retur struct {
	Mottaker             Address `json:"mottaker"`
	Returposthaandtering string  `json:"returposthaandtering"`
}

// Utskrift is the business message of a letter to print.
type Utskrift struct {
	Avsender                   Avsender    `json:"avsender"`
	Mottaker                   Address     `json:"mottaker"`
	Dokumentpakkefingeravtrykk Fingerprint `json:"dokumentpakkefingeravtrykk"`
	Maskinportentoken          string      `json:"maskinportentoken"`
	Utskriftstype              string      `json:"utskriftstype"`
	Retur                      Retur       `json:"retur"`
	Posttype                   string      `json:"posttype,omitempty"`
}

// Marshal wraps the header and the body as {"standardBusinessDocument":
// {"standardBusinessDocumentHeader": …, "<type>": …}}.
func Marshal(h Header, body any) ([]byte, error) {
	typ := h.DocumentIdentification.Type
	if typ == "" {
		return nil, fmt.Errorf("dpi: header without a type")
	}
	return json.Marshal(map[string]any{"standardBusinessDocument": map[string]any{
		"standardBusinessDocumentHeader": h, typ: body}})
}

// Sign validates the business message against its schema and signs it as a
// compact JWS, RS256 with x5c = [cert] (§4.3 step 5).
func Sign(doc []byte, key *rsa.PrivateKey, cert *x509.Certificate) ([]byte, error) {
	if _, err := Validate(doc); err != nil {
		return nil, err
	}
	return jws.Sign(key, doc, map[string]any{"x5c": jws.X5CHeader(cert)})
}

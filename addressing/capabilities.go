package addressing

import (
	"context"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/addressing/process"
	"github.com/efm-go/efm/addressing/sr"
)

// Capabilities is the body of GET /api/capabilities/{id} (spec/local-api.md §4,
// spec/addressing.md §8).
type Capabilities struct {
	Capabilities []Capability `json:"capabilities"`
	// NoStore is set for citizens: the answer must carry Cache-Control: no-store and never be
	// cached (§5.3 rule 4).
	NoStore bool `json:"-"`
}

// Capability is one service record as the local API shows it. Field order follows the
// contract's example.
type Capability struct {
	Process            string              `json:"process"`
	ServiceIdentifier  string              `json:"serviceIdentifier"`
	PostAddress        *PostalAddress      `json:"postAddress,omitempty"`
	ReturnAddress      *PostalAddress      `json:"returnAddress,omitempty"`
	DocumentTypes      []DocumentType      `json:"documentTypes"`
	DigitalPostAddress *DigitalPostAddress `json:"digitalPostAddress,omitempty"`
}

// PostalAddress is a DPI print or return address.
type PostalAddress struct {
	Name       string `json:"name,omitempty"`
	Street     string `json:"street,omitempty"`
	PostalCode string `json:"postalCode,omitempty"`
	PostalArea string `json:"postalArea,omitempty"`
	Country    string `json:"country,omitempty"`
}

// DocumentType is one accepted document type.
type DocumentType struct {
	Type     string `json:"type,omitempty"`
	Standard string `json:"standard"`
}

// DigitalPostAddress is the DPI mailbox (or print provider, without address).
type DigitalPostAddress struct {
	Supplier string `json:"supplier,omitempty"`
	Address  string `json:"address,omitempty"`
}

// CapabilitiesQuery holds E1's optional query parameters.
type CapabilitiesQuery struct {
	// Process restricts the answer to one process.
	Process string
	// SecurityLevel is sent to the SR when non-zero.
	SecurityLevel int
}

// Capabilities answers E1 for the identifier as given in the path (0192: prefix allowed). Errors
// map to HTTP with CapabilitiesStatus: invalid identifier 400, unknown receiver (or, with a
// process, a process the receiver lacks) 404, security level not possible 400, registry failure
// 500. A receiver that exists but supports nothing answers an empty list.
func (r *Resolver) Capabilities(ctx context.Context, identifier string, q CapabilitiesQuery) (*Capabilities, error) {
	id, err := r.ParseID(identifier)
	if err != nil {
		return nil, err
	}
	ans, err := r.lookup(ctx, id, q.Process, q.SecurityLevel, "")
	if err != nil {
		return nil, err
	}
	out := &Capabilities{Capabilities: make([]Capability, 0, len(ans.ServiceRecords)),
		NoStore: id.Kind() == ident.KindPerson || id.Kind() == ident.KindFastlege}
	for _, rec := range ans.ServiceRecords {
		out.Capabilities = append(out.Capabilities, capability(rec))
	}
	return out, nil
}

// capability is the table of §8 step 3. No certificate, e-mail, mobile or kanVarsles.
func capability(rec sr.ServiceRecord) Capability {
	c := Capability{Process: rec.Process, ServiceIdentifier: rec.Service.Identifier,
		DocumentTypes: make([]DocumentType, 0, len(rec.DocumentTypes))}
	if c.ServiceIdentifier == "" {
		c.ServiceIdentifier = "UNKNOWN"
	}
	for _, d := range rec.DocumentTypes {
		c.DocumentTypes = append(c.DocumentTypes, DocumentType{Type: process.MessageType(d), Standard: d})
	}
	if rec.Service.Identifier == "DPI" {
		c.PostAddress = postal(rec.PostAddress)
		c.ReturnAddress = postal(rec.ReturnAddress)
		if rec.OrgnrPostkasse != "" || rec.PostkasseAdresse != nil {
			c.DigitalPostAddress = &DigitalPostAddress{Supplier: rec.OrgnrPostkasse}
			if rec.PostkasseAdresse != nil {
				c.DigitalPostAddress.Address = *rec.PostkasseAdresse
			}
		}
	}
	return c
}

func postal(a *sr.PostAddress) *PostalAddress {
	if a == nil {
		return nil
	}
	return &PostalAddress{Name: a.Name, Street: a.Street, PostalCode: a.PostalCode, PostalArea: a.PostalArea, Country: a.Country}
}

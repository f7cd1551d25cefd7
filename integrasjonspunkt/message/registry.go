package message

import (
	"context"
	"errors"
)

// Registry answers which processes, channels and document types a receiver
// supports (local-api.md §4, addressing.md §8). It is declared here, where it
// is used; the addressing resolver satisfies it through a small adapter.
type Registry interface {
	// Capabilities returns the receiver's capabilities in the registry's
	// order. receiver is the primary identifier (bare org number or person
	// number). Errors: ErrUnknownReceiver, ErrInvalidReceiver, or any other
	// error for an unreachable or failing registry.
	Capabilities(ctx context.Context, receiver string, q CapabilityQuery) ([]Capability, error)
}

// ForsendelseTypeLister is implemented by a Registry that can also answer
// which KS SvarUt shipment types an organisation may send with (the SvarUt
// client of the DPF channel); see Config.ForsendelseTyper.
type ForsendelseTypeLister interface {
	ForsendelseTyper(ctx context.Context, org string) ([]string, error)
}

// CapabilityQuery narrows a capabilities lookup.
type CapabilityQuery struct {
	SecurityLevel  int    // 0: any
	Process        string // "": every process
	ConversationID string // for tracing only
}

// Capability is one entry of the E1 answer (local-api.md §4).
type Capability struct {
	Process            string              `json:"process"`
	ServiceIdentifier  string              `json:"serviceIdentifier"`
	PostAddress        *Address            `json:"postAddress,omitempty"`
	ReturnAddress      *Address            `json:"returnAddress,omitempty"`
	DocumentTypes      []DocumentType      `json:"documentTypes"`
	DigitalPostAddress *DigitalPostAddress `json:"digitalPostAddress,omitempty"`
	// Description is the registry's explanation when this process is not
	// offered (e.g. reserved in KRR); never serialised.
	Description string `json:"-"`
}

// DocumentType is one accepted document type.
type DocumentType struct {
	Type     string `json:"type,omitempty"`
	Standard string `json:"standard"`
}

// Address is a postal address of a DPI capability.
type Address struct {
	Name       string `json:"name,omitempty"`
	Street     string `json:"street,omitempty"`
	PostalCode string `json:"postalCode,omitempty"`
	PostalArea string `json:"postalArea,omitempty"`
	Country    string `json:"country,omitempty"`
}

// DigitalPostAddress is a citizen's digital mailbox.
type DigitalPostAddress struct {
	Supplier string `json:"supplier"`
	Address  string `json:"address"`
}

// Registry errors.
var (
	// ErrUnknownReceiver: the registry does not know the receiver (E1 404,
	// E2 400 ReceiverDoesNotAcceptProcessException).
	ErrUnknownReceiver = errors.New("receiver unknown to the service registry")
	// ErrInvalidReceiver: the identifier is malformed (400).
	ErrInvalidReceiver = errors.New("invalid receiver identifier")
)

// Capabilities answers E1.
func (s *Service) Capabilities(ctx context.Context, receiver string, q CapabilityQuery) ([]Capability, error) {
	if s.citizenWithoutDPI(receiver) {
		return []Capability{}, nil
	}
	caps, err := s.cfg.Registry.Capabilities(ctx, receiver, q)
	if err != nil {
		return nil, err
	}
	if caps == nil {
		caps = []Capability{}
	}
	return caps, nil
}

// citizenWithoutDPI: with DPI off the daemon holds none of the scopes the
// registry wants for citizen lookups (addressing.md §3.1), so it does not
// ask; as in the reference, such an installation reaches no citizen, which
// is an answer (no capabilities), not a registry failure.
func (s *Service) citizenWithoutDPI(receiver string) bool {
	if s.cfg.Enabled == nil || s.cfg.Enabled("DPI") {
		return false
	}
	id, err := s.cfg.IDPolicy.ParseID(receiver)
	return err == nil && id.IsPerson()
}

package message

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/efm-go/efm/addressing"
)

// ResolverRegistry adapts the addressing resolver to Registry.
type ResolverRegistry struct {
	Resolver *addressing.Resolver // must not be nil
}

// RegistryError carries the registry's explanation, for the description of
// ReceiverDoesNotAcceptProcessException.
type RegistryError struct {
	Err         error // ErrUnknownReceiver, ErrInvalidReceiver or the cause
	Description string
}

func (e *RegistryError) Error() string { return e.Err.Error() }
func (e *RegistryError) Unwrap() error { return e.Err }

// Capabilities implements Registry.
func (a ResolverRegistry) Capabilities(ctx context.Context, receiver string, q CapabilityQuery) ([]Capability, error) {
	ans, err := a.Resolver.Capabilities(ctx, receiver, addressing.CapabilitiesQuery{Process: q.Process, SecurityLevel: q.SecurityLevel})
	if err != nil {
		status, _ := addressing.CapabilitiesStatus(err)
		kind := err
		switch status {
		case http.StatusNotFound:
			kind = ErrUnknownReceiver
		case http.StatusBadRequest:
			kind = ErrInvalidReceiver
		}
		return nil, &RegistryError{Err: fmt.Errorf("%w: %w", kind, err), Description: addressing.Description(err)}
	}
	out := make([]Capability, 0, len(ans.Capabilities))
	for _, c := range ans.Capabilities {
		mc := Capability{Process: c.Process, ServiceIdentifier: c.ServiceIdentifier, DocumentTypes: make([]DocumentType, 0, len(c.DocumentTypes))}
		for _, dt := range c.DocumentTypes {
			mc.DocumentTypes = append(mc.DocumentTypes, DocumentType{Type: dt.Type, Standard: dt.Standard})
		}
		mc.PostAddress, mc.ReturnAddress = address(c.PostAddress), address(c.ReturnAddress)
		if c.DigitalPostAddress != nil {
			mc.DigitalPostAddress = &DigitalPostAddress{Supplier: c.DigitalPostAddress.Supplier, Address: c.DigitalPostAddress.Address}
		}
		out = append(out, mc)
	}
	return out, nil
}

func address(p *addressing.PostalAddress) *Address {
	if p == nil {
		return nil
	}
	return &Address{Name: p.Name, Street: p.Street, PostalCode: p.PostalCode, PostalArea: p.PostalArea, Country: p.Country}
}

// NoRegistry is the Registry of a daemon without a service registry
// configured: every lookup fails, so E1 answers 500 and E2 400.
type NoRegistry struct{}

// ErrNoRegistry is NoRegistry's answer.
var ErrNoRegistry = errors.New("no service registry configured (difi.move.serviceregistryEndpoint)")

// Capabilities implements Registry.
func (NoRegistry) Capabilities(context.Context, string, CapabilityQuery) ([]Capability, error) {
	return nil, ErrNoRegistry
}

package addressing

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/addressing/sr"
)

// Errors of the catalogue in spec/addressing.md §2.3. Match with errors.Is; an *Error carries the
// registry's explanation for the local API's description field. CapabilitiesStatus and
// SendStatus give the HTTP status and exception of each.
var (
	// ErrInvalidIdentifier is ident.ErrInvalid: rejected offline, before any lookup (400). The
	// ident sentinels (ErrOrgCheckDigit, ErrPersonCheckDigits, ErrSyntheticNotAllowed, ...) say why.
	ErrInvalidIdentifier = ident.ErrInvalid
	// ErrReceiverNotFound: the SR does not know the receiver (E1 404 IdentifierNotFoundException;
	// send 400 ReceiverDoesNotAcceptProcessException).
	ErrReceiverNotFound = errors.New("receiver not found in the service registry")
	// ErrReceiverDeleted: not found, and Enhetsregisteret says it was deleted (§7.3, §7.4). It
	// also matches ErrReceiverNotFound.
	ErrReceiverDeleted = fmt.Errorf("%w: deleted from enhetsregisteret", ErrReceiverNotFound)
	// ErrProcessNotSupported: the receiver has no record for the process.
	ErrProcessNotSupported = errors.New("receiver does not support the process")
	// ErrDocumentTypeNotSupported: the process is supported, the document type is not.
	ErrDocumentTypeNotSupported = errors.New("receiver does not accept the document type for the process")
	// ErrSecurityLevel: the receiver cannot receive at the requested security level (400).
	ErrSecurityLevel = errors.New("receiver cannot receive at the requested security level")
	// ErrCertificateNotFound: a DPO/DPE receiver without a certificate in VirkSert.
	ErrCertificateNotFound = errors.New("receiver certificate not found in virksert")
	// ErrServiceNotEnabled: the chosen channel is disabled locally (400 ServiceNotEnabledException).
	ErrServiceNotEnabled = errors.New("channel not enabled")
	// ErrRegistryUnavailable: the SR (or KRR) is unreachable, slow, answers 5xx, or its
	// signature does not verify (500; the pipeline retries, nothing is stored).
	ErrRegistryUnavailable = errors.New("registry unavailable")
)

// Exception identifiers of spec/local-api.md §15.3.
const (
	exceptionPrefix                = "no.difi.meldingsutveksling.exceptions."
	ExceptionIdentifierNotFound    = exceptionPrefix + "IdentifierNotFoundException"
	ExceptionReceiverDoesNotAccept = exceptionPrefix + "ReceiverDoesNotAcceptProcessException"
	ExceptionServiceNotEnabled     = exceptionPrefix + "ServiceNotEnabledException"
	ExceptionInvalidCertificate    = exceptionPrefix + "InvalidCertificateException"
	// ExceptionInvalidIdentifier is Go-defined: the reference has no offline identifier check
	// (addressing.md §1, project addition).
	ExceptionInvalidIdentifier = exceptionPrefix + "InvalidIdentifierException"
)

// Error is a lookup failure with the registry's explanation. Description never contains a
// person number (sr.Scrub).
type Error struct {
	// Err is one of the package sentinels.
	Err error
	// Description is the SR's error text or our own precise reason, for the local API's
	// description field.
	Description string
	cause       error
}

func (e *Error) Error() string {
	if e.Description == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + ": " + e.Description
}

// Unwrap returns the sentinel and the underlying cause.
func (e *Error) Unwrap() []error {
	if e.cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.cause}
}

// Description returns the registry's explanation of err, or "".
func Description(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Description
	}
	return ""
}

// fromSR classifies an SR client error.
func fromSR(err error) error {
	var se *sr.Error
	if !errors.As(err, &se) {
		return &Error{Err: ErrRegistryUnavailable, cause: err}
	}
	d := se.Description
	switch {
	case se.Status == http.StatusNotFound && (se.Code == "certificate_not_found" || strings.Contains(d, "certificate for")):
		return &Error{Err: ErrCertificateNotFound, Description: d, cause: err}
	case se.Status == http.StatusNotFound && strings.HasPrefix(d, "Process "):
		return &Error{Err: ErrProcessNotSupported, Description: d, cause: err}
	case se.Status == http.StatusNotFound:
		return &Error{Err: ErrReceiverNotFound, Description: d, cause: err}
	case se.Status == http.StatusBadRequest && strings.Contains(d, "security level"):
		return &Error{Err: ErrSecurityLevel, Description: d, cause: err}
	default:
		// 400 for other reasons, 401/403 (our token): nothing the sender can fix by choosing
		// another receiver; an operator must act.
		return &Error{Err: ErrRegistryUnavailable, Description: d, cause: err}
	}
}

// CapabilitiesStatus maps an error of Capabilities to the HTTP status and exception of E1
// (spec/addressing.md §2.3, spec/local-api.md §4).
func CapabilitiesStatus(err error) (status int, exception string) {
	switch {
	case errors.Is(err, ErrInvalidIdentifier):
		return http.StatusBadRequest, ExceptionInvalidIdentifier
	case errors.Is(err, ErrSecurityLevel):
		return http.StatusBadRequest, ExceptionReceiverDoesNotAccept
	case errors.Is(err, ErrReceiverNotFound), errors.Is(err, ErrProcessNotSupported), errors.Is(err, ErrCertificateNotFound):
		return http.StatusNotFound, ExceptionIdentifierNotFound
	default:
		return http.StatusInternalServerError, ""
	}
}

// SendStatus maps an error of Resolve/ResolveMessage at message creation (E2/E5) to its HTTP
// status and exception.
func SendStatus(err error) (status int, exception string) {
	switch {
	case errors.Is(err, ErrInvalidIdentifier):
		return http.StatusBadRequest, ExceptionInvalidIdentifier
	case errors.Is(err, ErrServiceNotEnabled):
		return http.StatusBadRequest, ExceptionServiceNotEnabled
	case errors.Is(err, ErrReceiverNotFound), errors.Is(err, ErrProcessNotSupported), errors.Is(err, ErrDocumentTypeNotSupported),
		errors.Is(err, ErrSecurityLevel), errors.Is(err, ErrCertificateNotFound):
		return http.StatusBadRequest, ExceptionReceiverDoesNotAccept
	default:
		return http.StatusInternalServerError, ""
	}
}

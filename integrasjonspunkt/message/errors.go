package message

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/efm-go/efm/integrasjonspunkt/sbd"
)

// Error is a refusal the local API reports with the body of local-api.md
// §2.7: Name is the §15.3 catalogue's name (a short name gets the
// no.difi.meldingsutveksling.exceptions. prefix), Status the HTTP status.
type Error struct {
	Status      int
	Name        string
	Message     string
	Description string
	Violations  sbd.Violations
}

func (e *Error) Error() string { return e.Message }

// Exception is the value of the error body's exception field.
func (e *Error) Exception() string {
	if e.Name == "" || strings.Contains(e.Name, ".") {
		return e.Name
	}
	return "no.difi.meldingsutveksling.exceptions." + e.Name
}

// Is matches two Errors of the same name, so callers and tests can write
// errors.Is(err, &Error{Name: NameMessageNotFound}).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Name == e.Name
}

// The catalogue names this package produces (local-api.md §15.3).
const (
	NameConstraintViolation          = "jakarta.validation.ConstraintViolationException"
	NameNotReadable                  = "org.springframework.http.converter.HttpMessageNotReadableException"
	NamePropertyReference            = "org.springframework.data.mapping.PropertyReferenceException"
	NameReceiverDoesNotAcceptProcess = "ReceiverDoesNotAcceptProcessException"
	NameUnknownMessageType           = "UnknownMessageTypeException"
	NameMissingMessageType           = "MissingMessageTypeException"
	NameMessageAlreadyExists         = "MessageAlreadyExistsException"
	NameServiceNotEnabled            = "ServiceNotEnabledException"
	NameMissingAddressInformation    = "MissingAddressInformationException"
	NameTypeDoesNotFitDocumentType   = "MessageTypeDoesNotFitDocumentTypeException"
	NameMessageChannelInvalid        = "MessageChannelInvalidException"
	NameNotUUID                      = "NotUUIDException"
	NameMessageNotFound              = "MessageNotFoundException"
	NameMissingHTTPHeader            = "MissingHttpHeaderException"
	NameDuplicateFilename            = "DuplicateFilenameException"
	NameMaxFileSizeExceeded          = "MaxFileSizeExceededException"
	NameMultipartFileTooLarge        = "MultipartFileToLargeException"
	NameMultiplePrimaryDocuments     = "MultiplePrimaryDocumentsNotAllowedException"
	NameMissingFileTitle             = "MissingFileTitleException"
	NameUnmarshalArkivmelding        = "UnmarshalArkivmeldingException"
	NameMessagePersist               = "MessagePersistException"
	NameMissingFile                  = "MissingFileException"
	NameTimeToLive                   = "TimeToLiveException"
	NameMissingArkivmelding          = "MissingArkivmeldingException"
	NameMissingArkivmeldingFile      = "MissingArkivmeldingFileException"
	NameFileNotFound                 = "FileNotFoundException"
	NameMissingPrimaryDocument       = "MissingPrimaryDocumentException"
	NameMessageAlreadySent           = "MessageAlreadySentException"
	NameMessageNotLocked             = "MessageNotLockedException"
	NameAsicRead                     = "AsicReadException"
	NameConversationNotFound         = "ConversationNotFoundException"
	NameIdentifierNotFound           = "IdentifierNotFoundException"
	NameInvalidCertificate           = "InvalidCertificateException"
	NameMissingSvarUtCredentials     = "MissingSvarUtCredentialsException"
	NameForsendelseTypeNotFound      = "ForsendelseTypeNotFoundException"
	NameSender                       = "SenderException"
	NameReceiver                     = "ReceiverException"
	NameInvalidContentType           = "InvalidContentTypeException"
	NameInvalidDocument              = "InvalidDocumentException"
	// Go-defined: a file the channel's container cannot carry (issue 14).
	NameInvalidFilename    = "InvalidFilenameException"
	NameTooManyAttachments = "TooManyAttachmentsException"
)

func bad(name, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Name: name, Message: fmt.Sprintf(format, args...)}
}

func notFound(name, format string, args ...any) *Error {
	return &Error{Status: http.StatusNotFound, Name: name, Message: fmt.Sprintf(format, args...)}
}

// Violation wraps constraint violations as the contract's 400.
func Violation(vs sbd.Violations) *Error {
	return &Error{Status: http.StatusBadRequest, Name: NameConstraintViolation, Message: vs.Error(), Violations: vs}
}

// FromDecode maps an sbd.Decode error to the contract's 400.
func FromDecode(err error) *Error {
	if errors.Is(err, sbd.ErrMissingBusinessMessage) {
		return bad(NameMissingMessageType, "%v", err)
	}
	return bad(NameNotReadable, "JSON parse error: %v", err)
}

func messageNotFound(id string) *Error {
	return notFound(NameMessageNotFound, "Message with messageId=%s not found", id)
}

// Package asic writes and reads ASiC-E containers as eFormidling uses them
// (channels.md §1.9.2–1.9.4): with a detached CAdES signature over META-INF/ASiCManifest.xml
// for DPO, DPE and DPH, and with an XAdES META-INF/signatures.xml for DPI. The reader treats
// every container as hostile: sizes, entry counts, names and duplicates are checked before
// anything is decompressed, and every data entry must be covered by a verified signature.
//
// asic depends on packaging/cms for the CAdES signature and on nothing from the core.
package asic

import (
	"crypto"
	"crypto/x509"
	"errors"
	"io"
)

// MimeType is the container's media type, the content of the mimetype entry.
const MimeType = "application/vnd.etsi.asic-e+zip"

// zipComment is what the reference's library writes as the archive comment.
const zipComment = "mimetype=" + MimeType

var (
	// ErrInvalidContainer is returned for a container that breaks the ASiC-E rules: missing
	// or misplaced mimetype, unsafe or duplicate names, missing signature.
	ErrInvalidContainer = errors.New("asic: invalid container")
	// ErrTooLarge is returned when the container, an entry, or the number of entries exceed
	// the reader's limits (a zip bomb, or simply too much).
	ErrTooLarge = errors.New("asic: container exceeds size limits")
	// ErrDigestMismatch is returned when an entry's bytes differ from its signed digest:
	// the container was altered after signing.
	ErrDigestMismatch = errors.New("asic: entry digest does not match the signed manifest")
	// ErrUnsigned is returned when a data entry is not covered by the signature.
	ErrUnsigned = errors.New("asic: entry not covered by the signature")
	// ErrSignature is returned when the signature itself does not verify or its signer
	// is not trusted; the wrapped error says which (cms.ErrUntrustedSigner, ...).
	ErrSignature = errors.New("asic: signature invalid")
)

// File is one data entry to pack.
type File struct {
	// Name is the entry name, as uploaded; never under META-INF/, no directories.
	Name string
	// MimeType is the entry's media type, written to the manifests.
	MimeType string
	// Content is read once, to the end, while packing.
	Content io.Reader
}

// Signer is the identity that signs a container: the agency's business certificate.
type Signer struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// Chain are the certificates above Cert to include (intermediates; the root optional).
	Chain []*x509.Certificate
}

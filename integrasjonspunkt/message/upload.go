package message

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"slices"

	"github.com/efm-go/efm/integrasjonspunkt/sbd"
	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/internal/logattr"
	"github.com/efm-go/efm/packaging/asic"
)

// Upload is the metadata of one attachment upload (E3).
type Upload struct {
	Filename string
	Title    string
	MimeType string
	// Declared is the body's length as the client declared it
	// (Content-Length), 0 when unknown: E3 refuses a body declared over
	// the limit before reading any of it.
	Declared int64
}

// Staged is a file written to the payload store but not yet owned by a
// message: the one-step send streams its parts first and decides after.
type Staged struct {
	Upload
	File   string // payload file; "" when the content is Inline
	Inline []byte // sealed content of a small file
	Size   int64
	xml    []byte // the content of arkivmelding.xml and the DPH XML documents, kept for parsing
}

// Stage streams r into a new encrypted file, refusing more than max bytes
// with ErrTooLarge. It is E5's first step.
func (s *Service) Stage(r io.Reader, u Upload, max int64) (*Staged, error) {
	w, err := s.cfg.Payloads.CreateSmall()
	if err != nil {
		return nil, &Error{Status: http.StatusInternalServerError, Name: NameMessagePersist, Message: "could not store " + u.Filename}
	}
	var xmlBuf *bytes.Buffer
	src := io.LimitReader(r, max+1)
	if u.Filename == "arkivmelding.xml" || slices.Contains(dphXMLDocuments, u.Filename) {
		xmlBuf = &bytes.Buffer{}
		src = io.TeeReader(src, &limitedBuffer{b: xmlBuf, max: arkivmeldingXMLLimit})
	}
	n, err := w.ReadFrom(src)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		w.Abort()
		s.log.Error("storing attachment", logattr.Err(err))
		return nil, &Error{Status: http.StatusInternalServerError, Name: NameMessagePersist, Message: "could not store " + u.Filename}
	}
	if err != nil {
		w.Abort()
		return nil, fmt.Errorf("receiving %s: %w", u.Filename, err)
	}
	if n > max {
		w.Abort()
		return nil, ErrTooLarge
	}
	if err := w.Close(); err != nil {
		return nil, &Error{Status: http.StatusInternalServerError, Name: NameMessagePersist, Message: "could not store " + u.Filename}
	}
	st := &Staged{Upload: u, File: w.Name(), Inline: w.Inline(), Size: n}
	if xmlBuf != nil {
		st.xml = xmlBuf.Bytes()
	}
	return st, nil
}

// Discard removes staged files that did not become part of a message.
func (s *Service) Discard(staged ...*Staged) {
	var names []string
	for _, st := range staged {
		if st != nil && st.File != "" {
			names = append(names, st.File)
		}
	}
	if err := s.cfg.Payloads.Remove(names...); err != nil {
		s.log.Warn("removing staged files", logattr.Err(err))
	}
}

// ErrTooLarge is Stage refusing a file over its limit.
var ErrTooLarge = errors.New("file larger than the limit")

type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		l.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// UploadFile is E3: stream one attachment of a created message to disk,
// encrypted, within the channel's size limit (local-api.md §5.2).
func (s *Service) UploadFile(ctx context.Context, messageID string, u Upload, body io.Reader) error {
	o, sent, err := s.unsent(ctx, messageID)
	if sent || err != nil {
		return err
	}
	if o.State == store.StateQueued {
		return bad(NameMessageAlreadySent, "Message with messageId=%s has already been sent", messageID)
	}
	doc, err := sbd.Decode(o.SBD)
	if err != nil {
		return fmt.Errorf("reading stored sbd: %w", err)
	}
	atts, err := s.st.Attachments(ctx, messageID)
	if err != nil {
		return err
	}
	if err := checkUpload(doc, o.ServiceIdentifier, u, atts); err != nil {
		return err
	}
	limit := s.sizeLimit(o.ServiceIdentifier)
	var used int64
	for _, a := range atts {
		used += a.Size
	}
	if u.Declared > limit-used {
		return tooLarge(o.ServiceIdentifier, limit)
	}
	st, err := s.Stage(body, u, max(limit-used, 0))
	if errors.Is(err, ErrTooLarge) {
		return tooLarge(o.ServiceIdentifier, limit)
	}
	if err != nil {
		return err
	}
	if err := checkDPHDocument(doc, o.ServiceIdentifier, st); err != nil {
		s.Discard(st)
		return err
	}
	var evs []StatusEvent
	err = s.st.Update(ctx, func(tx *store.Tx) error {
		cur, err := tx.Outgoing(messageID)
		if errors.Is(err, store.ErrNotFound) {
			return messageNotFound(messageID)
		}
		if err != nil {
			return err
		}
		if cur.State == store.StateQueued {
			return bad(NameMessageAlreadySent, "Message with messageId=%s has already been sent", messageID)
		}
		return s.attach(tx, doc, messageID, st)
	})
	if err != nil {
		s.Discard(st)
		if errors.Is(err, store.ErrDuplicate) {
			return bad(NameDuplicateFilename, "A file named %s is already attached", u.Filename)
		}
		return err
	}
	s.after(evs, nil)
	return nil
}

func (s *Service) sizeLimit(svc string) int64 {
	if l, ok := s.cfg.SizeLimits[svc]; ok && l > 0 {
		return l
	}
	return 1 << 30
}

func tooLarge(svc string, limit int64) *Error {
	l := fmt.Sprintf("%d bytes", limit)
	if limit >= 1<<20 {
		l = fmt.Sprintf("%d MB", limit>>20)
	}
	return bad(NameMaxFileSizeExceeded, "The total size of the attachments exceeds the limit of %s for %s", l, svc)
}

// containerServices are the channels whose documents travel in an ASiC-E
// container with a CAdES signature (channels.md §1.9.2).
var containerServices = []string{"DPO", "DPE", "DPH"}

// checkUpload applies E3's checks that need no bytes (local-api.md §5.2).
func checkUpload(doc *sbd.Document, svc string, u Upload, atts []store.Attachment) error {
	if u.Filename == "" {
		return bad(NameMissingHTTPHeader, "Missing header Content-Disposition with a filename")
	}
	for _, a := range atts {
		if a.Filename == u.Filename {
			return bad(NameDuplicateFilename, "A file named %s is already attached", u.Filename)
		}
	}
	main := doc.String("hoveddokument")
	if main != "" && u.Filename == main && slices.ContainsFunc(atts, func(a store.Attachment) bool { return a.Primary }) {
		return bad(NameMultiplePrimaryDocuments, "Multiple primary documents are not allowed")
	}
	if u.Title == "" {
		switch svc {
		case "DPV":
			return bad(NameMissingFileTitle, "A file title is required for %s", svc)
		case "DPI":
			if u.Filename != main && !isMetadataFile(doc, u.Filename) {
				return bad(NameMissingFileTitle, "A file title is required for %s", svc)
			}
		}
	}
	if slices.Contains(containerServices, svc) {
		// Refused here, not by the packer after the send was accepted,
		// where no retry could mend it (issue 14, point 6).
		if err := asic.CheckDocumentName(u.Filename); err != nil {
			return bad(NameInvalidFilename, "The file %q cannot be sent over %s: %v", u.Filename, svc, err)
		}
		// The eFormidling manifest is a data entry too.
		if len(atts)+1 > asic.MaxDataEntries-1 {
			return bad(NameTooManyAttachments, "The file %q is one too many: at most %d files can be sent over %s",
				u.Filename, asic.MaxDataEntries-1, svc)
		}
	}
	if svc == "DPH" && u.Filename != main {
		// Every vedlegg is described in metadataFiler and is a PDF or an
		// image (local-api.md §12.11).
		if _, ok := doc.Object("metadataFiler")[u.Filename]; !ok {
			return bad(NameMissingFileTitle, "A file title is required for %s", svc)
		}
		if !slices.Contains(dphMimeTypes, u.MimeType) {
			return bad(NameInvalidContentType, "Invalid content type: %s", u.MimeType)
		}
	}
	return nil
}

// dphXMLDocuments are the names under which a DPH message carries the
// dialog message and the application receipt as XML (the reference's
// AttachmentNames).
var dphXMLDocuments = []string{"dialogmelding.xml", "kvittering.xml"}

// checkDPHDocument is E3's content check for DPH (local-api.md §12.11): the
// dialog message and application receipt attachments must be readable XML.
// The KITH schemas are not bundled, so this checks well-formedness only.
func checkDPHDocument(doc *sbd.Document, svc string, st *Staged) error {
	if svc != "DPH" || st.Filename == doc.String("hoveddokument") || !slices.Contains(dphXMLDocuments, st.Filename) {
		return nil
	}
	if len(st.xml) >= arkivmeldingXMLLimit {
		return nil // only the head was kept; too large to judge here
	}
	if err := wellFormedXML(st.xml); err != nil {
		return bad(NameInvalidDocument, "%s is not a valid document: %v", st.Filename, err)
	}
	return nil
}

// wellFormedXML reports the first syntax error of b, or that it holds no element.
func wellFormedXML(b []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(b))
	roots := 0
	depth := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			if roots == 0 {
				return errors.New("no root element")
			}
			return nil
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				if roots++; roots > 1 {
					return errors.New("more than one root element")
				}
			}
			for i, a := range t.Attr {
				if slices.ContainsFunc(t.Attr[:i], func(b xml.Attr) bool { return b.Name == a.Name }) {
					return fmt.Errorf("attribute %s repeated", a.Name.Local)
				}
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return errors.New("text outside the root element")
			}
		}
	}
}

// dphMimeTypes are the MIME types a DPH attachment other than the main
// document may have.
var dphMimeTypes = []string{"application/pdf", "image/png", "image/jpeg"}

func isMetadataFile(doc *sbd.Document, name string) bool {
	for _, v := range doc.Object("metadataFiler") {
		if s, _ := v.(string); s == name {
			return true
		}
	}
	return false
}

// attach records a staged file on a message, and for arkivmelding.xml
// updates the conversation's title and reference.
func (s *Service) attach(tx *store.Tx, doc *sbd.Document, messageID string, st *Staged) error {
	return s.attachNo(tx, doc, messageID, st, 0)
}

// attachNo is attach with the file's doc number given (0: the next).
func (s *Service) attachNo(tx *store.Tx, doc *sbd.Document, messageID string, st *Staged, docNo int) error {
	a := &store.Attachment{MessageID: messageID, DocNo: docNo, Filename: st.Filename, Title: st.Title, MimeType: st.MimeType,
		Size: st.Size, Primary: st.Filename == doc.String("hoveddokument") && st.Filename != "", File: st.File, Data: st.Inline}
	if err := tx.InsertAttachment(a); err != nil {
		return err
	}
	if st.Filename != "arkivmelding.xml" {
		return nil
	}
	am, err := parseArkivmelding(st.xml)
	if err != nil {
		return bad(NameUnmarshalArkivmelding, "Could not read arkivmelding.xml: %v", err)
	}
	c, err := tx.Conversation(messageID, Outgoing)
	if err != nil {
		return err
	}
	if am.Title != "" {
		c.MessageTitle = am.Title
	}
	if ref := am.Reference(); ref != "" {
		c.MessageReference = ref
	}
	return tx.UpdateConversation(c)
}

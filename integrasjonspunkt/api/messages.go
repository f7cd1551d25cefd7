package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/efm-go/efm/addressing"
	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/integrasjonspunkt/message"
	"github.com/efm-go/efm/integrasjonspunkt/sbd"
	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/internal/logattr"
)

// Body limits. An SBD or subscription is a few kilobytes; the caps stop a
// client from filling memory with one (413 above them).
const (
	maxJSONBody         = 10 << 20
	defaultMaxMultipart = 500 << 20
	// maxParts caps the parts of one E5 request: the sbd and more files
	// than any channel carries (an ASiC-E container opens 251 documents,
	// DPI 200). Every part is staged before the message is checked, so
	// without a cap 10,000 tiny parts took 1.77 GB (issue 14, point 7).
	maxParts = 300
)

var (
	errNotJSON = &Error{Status: http.StatusUnsupportedMediaType, Exception: "org.springframework.web.HttpMediaTypeNotSupportedException",
		Message: "Content-Type must be application/json"}
	errTooBig = &Error{Status: http.StatusRequestEntityTooLarge, Exception: "org.springframework.web.multipart.MaxUploadSizeExceededException",
		Message: "Request body is larger than allowed"}
)

func mediaType(r *http.Request) string {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return strings.ToLower(mt)
}

func isJSON(mt string) bool { return mt == "application/json" || strings.HasSuffix(mt, "+json") }

// readJSON reads a capped JSON body.
func readJSON(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if !isJSON(mediaType(r)) {
		return nil, errNotJSON
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, errTooBig
	}
	return b, err
}

func notReadable(err error) *Error {
	return &Error{Status: http.StatusBadRequest, Exception: message.NameNotReadable, Message: "JSON parse error: " + err.Error()}
}

// client is the product token of the User-Agent, logged and sent centrally
// with the message (operations.md §5.3).
func client(r *http.Request) string {
	ua := strings.TrimSpace(r.UserAgent())
	if i := strings.IndexAny(ua, "/ "); i >= 0 {
		ua = ua[:i]
	}
	if len(ua) > 64 {
		ua = ua[:64]
	}
	return ua
}

func (s *Server) capabilities(w http.ResponseWriter, r *http.Request) error {
	// The registry validates the identifier under the configured policy
	// (synthetic numbers); here it is only named, masked when a person's.
	rid := strings.TrimPrefix(r.PathValue("receiverIdentifier"), ident.ICDNorwegianOrg+":")
	shown := rid
	if ident.LooksLikePersonNumber(rid) || len(rid) == 11 {
		shown = ident.Mask
	}
	q := message.CapabilityQuery{Process: r.URL.Query().Get("process")}
	if sl := r.URL.Query().Get("securityLevel"); sl != "" {
		n, err := strconv.Atoi(sl)
		if err != nil {
			return &Error{Status: http.StatusBadRequest, Exception: "org.springframework.web.method.annotation.MethodArgumentTypeMismatchException",
				Message: "securityLevel must be an integer"}
		}
		q.SecurityLevel = n
	}
	caps, err := s.d.Messages.Capabilities(r.Context(), rid, q)
	switch {
	case errors.Is(err, message.ErrUnknownReceiver):
		return &Error{Status: http.StatusNotFound, Exception: "no.difi.meldingsutveksling.exceptions." + message.NameIdentifierNotFound,
			Message: "Identifier " + shown + " not found in the service registry"}
	case errors.Is(err, message.ErrInvalidReceiver):
		var re *message.RegistryError
		msg := "receiverIdentifier is not a valid identifier"
		if errors.As(err, &re) && re.Description != "" {
			msg += ": " + re.Description
		}
		return &Error{Status: http.StatusBadRequest, Exception: message.NameConstraintViolation, Message: msg}
	case errors.Is(err, addressing.ErrRegistryUnavailable):
		// 500 as the contract says (local-api.md §4), but with the reason:
		// the client should retry, not look for the receiver elsewhere.
		s.log.WarnContext(r.Context(), "capabilities lookup failed: registry unavailable", logattr.Route(r.Pattern), logattr.Err(err))
		return &Error{Status: http.StatusInternalServerError,
			Message:     "the service registry could not be reached or answered badly; retry later",
			Description: addressing.Description(err)}
	case err != nil:
		return fmt.Errorf("asking the registry for capabilities: %w", err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"capabilities": caps})
	return nil
}

func (s *Server) createMessage(w http.ResponseWriter, r *http.Request) error {
	b, err := readJSON(w, r)
	if err != nil {
		return err
	}
	doc, err := sbd.Decode(b)
	if err != nil {
		return message.FromDecode(err)
	}
	body, err := s.d.Messages.Create(r.Context(), doc, client(r))
	if err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "message created", logattr.MessageID(doc.MessageID()), logattr.Client(client(r)))
	writeRawJSON(w, http.StatusOK, body)
	return nil
}

func (s *Server) uploadFile(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("messageId")
	cd := r.Header.Get("Content-Disposition")
	d := ParseDisposition(cd)
	if cd == "" || d.Filename == "" {
		return &Error{Status: http.StatusBadRequest, Exception: "no.difi.meldingsutveksling.exceptions." + message.NameMissingHTTPHeader,
			Message: "Missing header Content-Disposition with a filename"}
	}
	title := d.Name
	if t := r.URL.Query().Get("title"); t != "" {
		title = t
	}
	u := message.Upload{Filename: d.Filename, Title: title, MimeType: effectiveMIME(r.Header.Get("Content-Type"), d.Filename),
		Declared: max(r.ContentLength, 0)}
	if err := s.d.Messages.UploadFile(r.Context(), id, u, r.Body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) sendMessage(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("messageId")
	if err := s.d.Messages.Send(r.Context(), id); err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "message queued", logattr.MessageID(id), logattr.Client(client(r)))
	w.WriteHeader(http.StatusOK)
	return nil
}

// multipartSend is E5: the parts are streamed to encrypted files first, then
// the message is created, checked and queued in one go; on any refusal the
// staged files are removed and nothing is stored (local-api.md §5.4).
func (s *Server) multipartSend(w http.ResponseWriter, r *http.Request) error {
	if mediaType(r) != "multipart/form-data" {
		return errNotJSON415("multipart/form-data")
	}
	limit := s.d.MaxMultipartBytes
	if limit <= 0 {
		limit = defaultMaxMultipart
	}
	if r.ContentLength > limit {
		// Refused before a byte is read: nothing is staged, and a client
		// that sent Expect: 100-continue never sends the body.
		return errTooBig
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	mr, err := r.MultipartReader()
	if err != nil {
		return multipartError(err)
	}
	doc, staged, err := s.readParts(mr)
	if err != nil {
		s.d.Messages.Discard(staged...)
		return err
	}
	body, err := s.d.Messages.CreateAndSend(r.Context(), doc, staged, client(r))
	if err != nil {
		s.d.Messages.Discard(staged...)
		return err
	}
	s.log.InfoContext(r.Context(), "message created and queued", logattr.MessageID(doc.MessageID()), logattr.Client(client(r)))
	writeRawJSON(w, http.StatusOK, body)
	return nil
}

func errNotJSON415(want string) *Error {
	return &Error{Status: http.StatusUnsupportedMediaType, Exception: "org.springframework.web.HttpMediaTypeNotSupportedException",
		Message: "Content-Type must be " + want}
}

// readParts walks the multipart body once. It returns the staged files even
// with an error, so the caller can remove them.
func (s *Server) readParts(mr *multipart.Reader) (*sbd.Document, []*message.Staged, error) {
	var doc *sbd.Document
	var staged []*message.Staged
	var dups []string
	seen := map[string]bool{}
	for n := 1; ; n++ {
		part, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, staged, partError(err)
		}
		if n > maxParts {
			return nil, staged, &Error{Status: http.StatusBadRequest,
				Exception: "org.apache.tomcat.util.http.fileupload.impl.FileCountLimitExceededException",
				Message:   fmt.Sprintf("The request has more than %d parts, the limit; use the multi-step upload", maxParts)}
		}
		d := ParseDisposition(part.Header.Get("Content-Disposition"))
		switch {
		case d.Name == "sbd":
			// The sbd part is never an attachment, even as a file (D16).
			b, err := io.ReadAll(io.LimitReader(part, maxJSONBody+1))
			if err != nil {
				return nil, staged, partError(err)
			}
			if len(b) > maxJSONBody {
				return nil, staged, errTooBig
			}
			doc, err = sbd.Decode(b)
			if err != nil {
				return nil, staged, message.FromDecode(err)
			}
		case d.Filename == "":
			if _, err := io.Copy(io.Discard, part); err != nil {
				return nil, staged, partError(err)
			}
		default:
			if seen[d.Filename] {
				if !slices.Contains(dups, d.Filename) {
					dups = append(dups, d.Filename)
				}
				if _, err := io.Copy(io.Discard, part); err != nil {
					return nil, staged, partError(err)
				}
				continue
			}
			seen[d.Filename] = true
			u := message.Upload{Filename: d.Filename, Title: d.Name, MimeType: effectiveMIME(part.Header.Get("Content-Type"), d.Filename)}
			st, err := s.d.Messages.Stage(part, u, message.MultipartPartLimit)
			if errors.Is(err, message.ErrTooLarge) {
				return nil, staged, &message.Error{Status: http.StatusBadRequest, Name: message.NameMultipartFileTooLarge,
					Message: fmt.Sprintf("The file %s is larger than the limit of %d bytes (5 MiB); use the multi-step upload", d.Filename, message.MultipartPartLimit)}
			}
			if err != nil {
				return nil, staged, partError(err)
			}
			staged = append(staged, st)
		}
	}
	if len(dups) > 0 {
		return nil, staged, &message.Error{Status: http.StatusBadRequest, Name: message.NameDuplicateFilename,
			Message: "Duplicate file names: " + strings.Join(dups, ", ")}
	}
	if doc == nil {
		return nil, staged, &Error{Status: http.StatusBadRequest, Exception: "org.springframework.web.multipart.support.MissingServletRequestPartException",
			Message: "Required part 'sbd' is not present"}
	}
	return doc, staged, nil
}

func partError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errTooBig
	}
	var me *message.Error
	var e *Error
	if errors.As(err, &me) || errors.As(err, &e) {
		return err
	}
	return multipartError(err)
}

// multipartError is a body that is not well-formed multipart: Spring's
// MultipartException, not the JSON parse error of an SBD that is.
func multipartError(err error) *Error {
	return &Error{Status: http.StatusBadRequest, Exception: "org.springframework.web.multipart.MultipartException",
		Message: "Multipart parse error: " + err.Error()}
}

// messageFilter reads the exact-match filters of E6/E9/E10; processKey is
// processIdentifier for E6 and process for the incoming queue (§5.5, §6.1).
func messageFilter(q url.Values, processKey string) (store.MessageFilter, error) {
	f := store.MessageFilter{
		MessageID: q.Get("messageId"), ConversationID: q.Get("conversationId"), Process: q.Get(processKey),
		Receiver: bareIdentifier(q.Get("receiverIdentifier")), Sender: bareIdentifier(q.Get("senderIdentifier")),
		Service: q.Get("serviceIdentifier"),
	}
	if f.Service != "" && !slices.Contains(message.Channels, f.Service) {
		return f, badParam("serviceIdentifier", f.Service)
	}
	return f, nil
}

func badParam(name, value string) *Error {
	return &Error{Status: http.StatusBadRequest, Exception: "org.springframework.web.method.annotation.MethodArgumentTypeMismatchException",
		Message: fmt.Sprintf("Invalid value for parameter %s: %q", name, value)}
}

// bareIdentifier normalises a 0192:-prefixed filter value (local-api.md §2.5, D4).
func bareIdentifier(v string) string {
	return strings.TrimPrefix(strings.TrimSpace(v), ident.ICDNorwegianOrg+":")
}

func (s *Server) listOutgoing(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f, err := messageFilter(q, "processIdentifier")
	if err != nil {
		return err
	}
	p := pageRequest(q, nil)
	msgs, total, err := s.d.Store.ListOutgoing(r.Context(), f, p)
	if err != nil {
		return err
	}
	content := make([]json.RawMessage, len(msgs))
	for i, m := range msgs {
		content[i] = m.SBD
	}
	writePage(w, content, p, total)
	return nil
}

func (s *Server) getOutgoing(w http.ResponseWriter, r *http.Request) error {
	b, err := s.d.Messages.GetOutgoing(r.Context(), r.PathValue("messageId"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, b)
	return nil
}

func (s *Server) deleteOutgoing(w http.ResponseWriter, r *http.Request) error {
	if err := s.d.Messages.DeleteOutgoing(r.Context(), r.PathValue("messageId")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) listIncoming(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f, err := messageFilter(q, "process")
	if err != nil {
		return err
	}
	p := pageRequest(q, nil)
	msgs, total, err := s.d.Store.ListIncoming(r.Context(), f, p)
	if err != nil {
		return err
	}
	content := make([]json.RawMessage, len(msgs))
	for i, m := range msgs {
		content[i] = m.SBD
	}
	writePage(w, content, p, total)
	return nil
}

func (s *Server) peekIncoming(w http.ResponseWriter, r *http.Request) error {
	f, err := messageFilter(r.URL.Query(), "process")
	if err != nil {
		return err
	}
	b, ok, err := s.d.Messages.Peek(r.Context(), f)
	if err != nil {
		return err
	}
	if !ok {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	writeJSON(w, http.StatusOK, json.RawMessage(b))
	return nil
}

func (s *Server) popIncoming(w http.ResponseWriter, r *http.Request) error {
	rc, err := s.d.Messages.Pop(r.Context(), r.PathValue("messageId"))
	if err != nil {
		return err
	}
	if rc == nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/vnd.etsi.asic-e+zip")
	w.Header().Set("Content-Disposition", "attachment; filename=asic.zip")
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rc); err != nil {
		// The status line is out; all that is left is to cut the body short.
		s.log.WarnContext(r.Context(), "streaming package", logattr.MessageID(r.PathValue("messageId")), logattr.Err(err))
		panic(http.ErrAbortHandler)
	}
	return nil
}

func (s *Server) deleteIncoming(w http.ResponseWriter, r *http.Request) error {
	b, err := s.d.Messages.Acknowledge(r.Context(), r.PathValue("messageId"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, json.RawMessage(b))
	return nil
}

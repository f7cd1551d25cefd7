package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/message"
	"github.com/efm-go/efm/integrasjonspunkt/sbd"
	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/internal/logattr"
)

// Error is an error answer in the body of local-api.md §2.7. Exception is the
// stable identifier from the §15.3 catalogue, verbatim.
type Error struct {
	Status      int
	Exception   string
	Message     string
	Description string
	Errors      []FieldError
}

// FieldError is one constraint violation (local-api.md §2.7 errors[]).
type FieldError struct {
	Codes          []string `json:"codes"`
	Code           string   `json:"code"`
	DefaultMessage string   `json:"defaultMessage"`
	ObjectName     string   `json:"objectName"`
	Field          string   `json:"field"`
	RejectedValue  any      `json:"rejectedValue,omitempty"`
	BindingFailure bool     `json:"bindingFailure"`
}

func (e *Error) Error() string { return e.Message }

type errorBody struct {
	Timestamp   string       `json:"timestamp"`
	Status      int          `json:"status"`
	Error       string       `json:"error"`
	Exception   string       `json:"exception,omitempty"`
	Message     string       `json:"message"`
	Path        string       `json:"path"`
	Description string       `json:"description,omitempty"`
	Errors      []FieldError `json:"errors,omitempty"`
}

// writeError writes err as the contract's error body. Anything that is not an
// *Error is a 500 whose text stays in the log: internal error text never
// reaches a client.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var e *Error
	var me *message.Error
	var se *store.SortError
	switch {
	case slowBody(r) != nil:
		e = slowBody(r)
		w.Header().Set("Connection", "close")
	case errors.As(err, &me):
		e = &Error{Status: me.Status, Exception: me.Exception(), Message: me.Message, Description: me.Description}
		for _, v := range me.Violations {
			e.Errors = append(e.Errors, FieldError{Codes: []string{v.Code}, Code: v.Code, DefaultMessage: v.Message,
				ObjectName: v.Path, Field: fieldPath(v.Path), RejectedValue: v.Rejected})
		}
	case errors.As(err, &se):
		e = &Error{Status: http.StatusBadRequest, Exception: message.NamePropertyReference,
			Message: "No property '" + se.Property + "' found"}
	}
	if e == nil && !errors.As(err, &e) {
		log.ErrorContext(r.Context(), "request failed", logattr.Route(r.Pattern), logattr.Err(err))
		e = &Error{Status: http.StatusInternalServerError, Message: "internal error; see the integration point's log"}
	}
	if e.Status == http.StatusNoContent {
		w.WriteHeader(http.StatusNoContent) // never a body on 204 (local-api.md §2.7, D2)
		return
	}
	writeJSON(w, e.Status, errorBody{
		Timestamp:   sbd.FormatTime(time.Now()),
		Status:      e.Status,
		Error:       http.StatusText(e.Status),
		Exception:   e.Exception,
		Message:     e.Message,
		Path:        r.URL.Path,
		Description: e.Description,
		Errors:      e.Errors,
	})
}

// statusOf is the HTTP status writeError would give err.
func statusOf(err error) int {
	var e *Error
	var me *message.Error
	var se *store.SortError
	switch {
	case errors.As(err, &me):
		return me.Status
	case errors.As(err, &se):
		return http.StatusBadRequest
	case errors.As(err, &e):
		return e.Status
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	if status >= 400 || w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away; nothing left to tell it
}

// writeRawJSON is writeJSON for a value already encoded, compact and with
// HTML escaped as json.Marshal does: the same bytes, without encoding twice.
func writeRawJSON(w http.ResponseWriter, status int, b json.RawMessage) {
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n')) // the client went away; nothing left to tell it
}

// fieldPath strips container element markers ("[0]") from a property path.
func fieldPath(p string) string {
	var b []byte
	depth := 0
	for i := 0; i < len(p); i++ {
		switch {
		case p[i] == '[':
			depth++
		case p[i] == ']' && depth > 0:
			depth--
		case depth == 0:
			b = append(b, p[i])
		}
	}
	return string(b)
}

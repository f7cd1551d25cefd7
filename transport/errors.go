package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
)

// Sentinels the pipeline branches on with errors.Is.
var (
	// ErrRejected marks a final failure: the service refused the request and
	// will refuse it again. The message becomes FEIL without further retries.
	ErrRejected = errors.New("rejected by the service")
	// ErrNotFound is a 404 or 410 on a lookup (DPV: deleted at Altinn, polling stops).
	ErrNotFound = errors.New("not found at the service")
	// ErrUnauthorized is a 401 or 403 that persisted after a fresh credential.
	ErrUnauthorized = errors.New("not authorised by the service")
	// ErrMalformed is incoming data that cannot be read; it is confirmed and
	// discarded, never retried.
	ErrMalformed = errors.New("malformed data from the service")
)

// StatusError is an HTTP answer outside 2xx from a channel's service.
// Title and Detail come from a ProblemDetails body when the service sent one;
// Detail is kept out of Error() because services echo request data in it.
type StatusError struct {
	Op         string // what the client was doing, e.g. "initialising file transfer"
	StatusCode int
	Title      string
	Detail     string
}

func (e *StatusError) Error() string {
	if e.Title != "" {
		return fmt.Sprintf("%s: http %d: %s", e.Op, e.StatusCode, e.Title)
	}
	return fmt.Sprintf("%s: http %d", e.Op, e.StatusCode)
}

// Retryable reports whether the same request may succeed later (§1.3).
func (e *StatusError) Retryable() bool {
	switch {
	case e.StatusCode >= 500:
		return true
	case e.StatusCode == http.StatusRequestTimeout, e.StatusCode == http.StatusTooEarly,
		e.StatusCode == http.StatusTooManyRequests:
		return true
	}
	return false
}

// Is lets errors.Is match the sentinels by status class.
func (e *StatusError) Is(target error) bool {
	switch target {
	case ErrRejected:
		return !e.Retryable() && e.StatusCode >= 400
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound || e.StatusCode == http.StatusGone
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
	}
	return false
}

// Retryable reports whether a failed channel call should be tried again on
// the queue's backoff schedule. It is false for nil, for final rejections,
// for malformed incoming data and when the caller's own context ended (the
// daemon is stopping; the queue redelivers the work anyway).
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrMalformed) || errors.Is(err, context.Canceled) {
		return false
	}
	if se, ok := errors.AsType[*StatusError](err); ok {
		return se.Retryable()
	}
	if errors.Is(err, ErrRejected) || errors.Is(err, ErrUnauthorized) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	// The reference retries every exception it does not know to be final;
	// an unknown failure is more likely transient than a verdict.
	return true
}

// Problem is the RFC 9457 ProblemDetails body Altinn and the simulators use.
type Problem struct {
	Type     string `json:"type,omitempty"`
	Title    string `json:"title,omitempty"`
	Status   int    `json:"status,omitempty"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
}

package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// Body rate defaults: a client must send at least minRate bytes in every
// window, and a window with no byte at all ends the read at once. 8 KB/s
// lets a 1 GB upload through in under 36 hours on the worst line, while a
// slow-body client holds its connection for one window at most.
const (
	defaultBodyWindow  = 30 * time.Second
	defaultBodyMinRate = 8 << 10
)

// errSlowBody is the answer to a body that arrived too slowly. The
// connection is closed after it: the rest of the body is never read.
var errSlowBody = &Error{Status: http.StatusRequestTimeout, Message: "request body arrived too slowly; the connection is closed"}

type slowBodyKey struct{}

// rateBody enforces a minimum transfer rate on a request body. There is no
// server-wide ReadTimeout because an upload may legitimately take hours; a
// read deadline that moves with each window, plus the rate check, frees the
// connection of a client that trickles or stalls.
type rateBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	window  time.Duration
	minRate int64
	need    int64 // bytes due per window
	start   time.Time
	got     int64
	slow    atomic.Bool
	lastSet time.Time
}

// limitBodyRate wraps r's body when it has one; window ≤ 0 turns the check off.
func limitBodyRate(w http.ResponseWriter, r *http.Request, window time.Duration, minRate int64) *http.Request {
	if window <= 0 || r.Body == nil || r.Body == http.NoBody {
		return r
	}
	now := time.Now()
	b := &rateBody{ReadCloser: r.Body, rc: http.NewResponseController(w), window: window,
		minRate: minRate, need: int64(float64(minRate) * window.Seconds()), start: now}
	r = r.WithContext(context.WithValue(r.Context(), slowBodyKey{}, b))
	r.Body = b
	return r
}

func (b *rateBody) Read(p []byte) (int, error) {
	if b.slow.Load() {
		return 0, errSlowBody
	}
	now := time.Now()
	if now.Sub(b.start) >= b.window {
		if b.got < b.need {
			return 0, b.fail()
		}
		b.start, b.got = now, 0
	}
	// Moving the deadline costs a timer update; doing it every eighth of a
	// window keeps it cheap on a fast upload's many small reads.
	if now.Sub(b.lastSet) >= b.window/8 {
		_ = b.rc.SetReadDeadline(now.Add(b.window)) // unsupported writers (tests' recorders) just keep no deadline
		b.lastSet = now
	}
	n, err := b.ReadCloser.Read(p)
	b.got += int64(n)
	switch {
	case err == io.EOF:
		// The server's background read (for a client hanging up) must not
		// trip over this body's deadline while the handler still works.
		_ = b.rc.SetReadDeadline(time.Time{})
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		return n, b.fail()
	}
	return n, err
}

// fail marks the body slow and makes every further read on the connection
// fail, so the server closes it rather than draining the rest.
func (b *rateBody) fail() error {
	b.slow.Store(true)
	_ = b.rc.SetReadDeadline(time.Unix(1, 0))
	return errSlowBody
}

// slowBody reports whether r's body was cut off for being too slow, so the
// answer says so whatever error the handler made of the failed read.
func slowBody(r *http.Request) *Error {
	if b, ok := r.Context().Value(slowBodyKey{}).(*rateBody); ok && b.slow.Load() {
		e := *errSlowBody
		e.Message += " (under " + strconv.FormatInt(b.minRate, 10) + " bytes per second over " + b.window.String() + ")"
		return &e
	}
	return nil
}

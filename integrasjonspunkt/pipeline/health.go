package pipeline

import (
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/efm-go/efm/transport"
)

// Error kinds of efm_channel_errors_total (operations.md §2.2).
const (
	KindAuth      = "auth"
	KindClient4xx = "client_4xx"
	KindServer5xx = "server_5xx"
	KindTimeout   = "timeout"
	KindNetwork   = "network"
	KindOther     = "other"
)

// ChannelState is how one channel's calls have gone since the daemon
// started: health's channel.<service> component and the channel metrics.
type ChannelState struct {
	Service             string
	LastSuccess         time.Time // zero: none yet
	LastFailure         time.Time
	LastErrorKind       string
	ConsecutiveFailures int
	Errors              map[string]uint64 // by kind, since start
}

// channelStates records every call the pipeline makes to a channel's
// service: sends, inbox fetches, status polls and status replies.
type channelStates struct {
	mu sync.Mutex
	m  map[string]*ChannelState
}

func newChannelStates(services []string) *channelStates {
	c := &channelStates{m: map[string]*ChannelState{}}
	for _, s := range services {
		c.m[s] = &ChannelState{Service: s, Errors: map[string]uint64{}}
	}
	return c
}

// observe records one call's outcome. A call cut short by our own stop and
// a refusal of the message itself (malformed data) say nothing about the
// service's health.
func (c *channelStates) observe(ctx context.Context, service string, err error, now time.Time) {
	if err != nil && (ctx.Err() != nil || errors.Is(err, transport.ErrMalformed)) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.m[service]
	if !ok {
		st = &ChannelState{Service: service, Errors: map[string]uint64{}}
		c.m[service] = st
	}
	if err == nil {
		st.LastSuccess, st.ConsecutiveFailures = now, 0
		return
	}
	kind := ErrorKind(err)
	st.Errors[kind]++
	if kind != KindAuth && !transport.Retryable(err) {
		// The service answered and refused this one message: it is
		// working, the message is not.
		return
	}
	st.LastFailure, st.LastErrorKind = now, kind
	st.ConsecutiveFailures++
}

func (c *channelStates) list() []ChannelState {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ChannelState, 0, len(c.m))
	for _, name := range slices.Sorted(maps.Keys(c.m)) {
		st := *c.m[name]
		st.Errors = maps.Clone(st.Errors)
		out = append(out, st)
	}
	return out
}

// ErrorKind sorts a channel error into the kinds operators alert on.
func ErrorKind(err error) string {
	if errors.Is(err, transport.ErrUnauthorized) {
		return KindAuth
	}
	if se, ok := errors.AsType[*transport.StatusError](err); ok {
		switch {
		case se.StatusCode >= 500:
			return KindServer5xx
		case se.StatusCode == 408:
			return KindTimeout
		case se.StatusCode >= 400:
			return KindClient4xx
		}
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	case errors.As(err, &ne), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return KindNetwork
	}
	return KindOther
}

// Channels reports each registered channel's state.
func (p *Pipeline) Channels() []ChannelState { return p.states.list() }

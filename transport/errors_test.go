package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRetryable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"503", &StatusError{Op: "x", StatusCode: 503}, true},
		{"500 wrapped", fmt.Errorf("sending: %w", &StatusError{StatusCode: 500}), true},
		{"429", &StatusError{StatusCode: 429}, true},
		{"408", &StatusError{StatusCode: 408}, true},
		{"400", &StatusError{StatusCode: 400}, false},
		{"401", &StatusError{StatusCode: 401}, false},
		{"404", &StatusError{StatusCode: 404}, false},
		{"malformed", fmt.Errorf("reading: %w", ErrMalformed), false},
		{"canceled", context.Canceled, false},
		{"deadline", fmt.Errorf("post: %w", context.DeadlineExceeded), true},
		{"net", &net.OpError{Op: "dial", Err: errors.New("refused")}, true},
		{"eof", io.ErrUnexpectedEOF, true},
		{"rejected sentinel", fmt.Errorf("x: %w", ErrRejected), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Retryable(tt.err))
		})
	}
}

func TestStatusError_Is(t *testing.T) {
	assert.ErrorIs(t, &StatusError{StatusCode: 400}, ErrRejected)
	assert.NotErrorIs(t, &StatusError{StatusCode: 503}, ErrRejected)
	assert.ErrorIs(t, &StatusError{StatusCode: 410}, ErrNotFound)
	assert.ErrorIs(t, &StatusError{StatusCode: 403}, ErrUnauthorized)
	assert.Equal(t, "uploading: http 409: Conflict", (&StatusError{Op: "uploading", StatusCode: 409, Title: "Conflict", Detail: "secret"}).Error())
}

package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"

	"github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
)

// TestDiskFullErrorsAnswer507: a write that fails for want of space, in the
// file system or in SQLite, is named as such whatever the free-space check
// said before it started.
func TestDiskFullErrorsAnswer507(t *testing.T) {
	s := New(Deps{Logger: slog.New(slog.DiscardHandler), Health: nil, Info: func() any { return nil }})
	for _, err := range []error{
		fmt.Errorf("storing vedlegg.pdf: %w", syscall.ENOSPC),
		fmt.Errorf("committing: %w", sqlite3.Error{Code: sqlite3.ErrFull}),
	} {
		w := httptest.NewRecorder()
		h := s.handle(func(http.ResponseWriter, *http.Request) error { return err })
		h.ServeHTTP(w, httptest.NewRequest("POST", "/api/messages/out", nil))
		assert.Equal(t, 507, w.Code, "%v: %s", err, w.Body)
		assert.Contains(t, w.Body.String(), nameInsufficientStorage)
	}
}

package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/store"
)

// nameInsufficientStorage is Go-defined: the reference has no disk-full
// answer (local-api.md §15.3 lists only MessagePersistException, a 500).
const nameInsufficientStorage = "no.difi.meldingsutveksling.exceptions.InsufficientStorageException"

// diskFull reports whether the data dir's free space is below
// efm.disk.min-free (operations.md §1.6), and how much is left.
func (s *Server) diskFull() (free int64, full bool) {
	if s.d.DiskFree == nil || s.d.DiskMinFree <= 0 {
		return 0, false
	}
	free, err := s.d.DiskFree()
	if err != nil {
		return 0, false
	}
	return free, free < s.d.DiskMinFree
}

func (s *Server) diskFullError(free int64) *Error {
	return &Error{Status: http.StatusInsufficientStorage, Exception: nameInsufficientStorage,
		Message: "the integration point's disk is full (" + formatBytes(free) + " free, efm.disk.min-free is " +
			formatBytes(s.d.DiskMinFree) + "); nothing was stored; retry when space has been freed"}
}

// refuseWhenDiskFull answers writes to the local API with 507 while the disk
// is below its minimum, before a byte of the body is stored: a half-written
// message is worse than a clear refusal the client can retry.
func (s *Server) refuseWhenDiskFull(w http.ResponseWriter, r *http.Request) bool {
	if (r.Method != http.MethodPost && r.Method != http.MethodPut) || !strings.HasPrefix(r.URL.Path, "/api/") {
		return false
	}
	if rd := s.roomy.Load(); rd != nil && time.Since(rd.at) < roomyFor {
		return false
	}
	free, full := s.diskFull()
	if full {
		writeError(w, r, s.log, s.diskFullError(free))
	} else if free-s.d.DiskMinFree >= roomyMargin {
		s.roomy.Store(&diskReading{at: time.Now()})
	}
	return full
}

// A reading this far above the minimum stands for the next writes for
// roomyFor: a statfs per request was 1.5 % of the CPU an accepted message
// costs, and no disk takes roomyMargin in roomyFor. Readings closer to the
// minimum are never reused, and the error path (asDiskFull) always reads.
const (
	roomyFor    = 100 * time.Millisecond
	roomyMargin = 1 << 30
)

type diskReading struct{ at time.Time }

// asDiskFull turns a storage failure into the disk-full answer when the disk
// is the cause: the error itself says so, or a 500 came while space is short
// (the message core reports a failed write as MessagePersistException).
func (s *Server) asDiskFull(err error) error {
	if store.IsDiskFull(err) {
		free, _ := s.diskFull()
		return s.diskFullError(free)
	}
	if free, full := s.diskFull(); full && statusOf(err) == http.StatusInternalServerError {
		return s.diskFullError(free)
	}
	return err
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + " GB"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MB"
	default:
		return strconv.FormatInt(n, 10) + " bytes"
	}
}

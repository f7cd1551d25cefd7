package store

import (
	"errors"
	"syscall"

	"github.com/mattn/go-sqlite3"
)

// IsDiskFull reports whether err is the file system or SQLite running out of
// space, so callers answer "disk full" rather than a generic failure.
func IsDiskFull(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) && se.Code == sqlite3.ErrFull {
		return true
	}
	return errors.Is(err, syscall.ENOSPC) || isPlatformDiskFull(err)
}

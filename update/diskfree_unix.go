//go:build unix

package update

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// checkFreeSpace refuses to stage when dir's file system has less than need bytes free.
func checkFreeSpace(dir string, need int64) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return nil // unknown is not a reason to refuse; the write itself will fail if full
	}
	free := int64(st.Bavail) * int64(st.Bsize) //nolint:unconvert // field types differ per OS
	if free < need {
		return fmt.Errorf("%w: %d bytes free, %d needed", ErrDiskFull, free, need)
	}
	return nil
}

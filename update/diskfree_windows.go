//go:build windows

package update

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// checkFreeSpace refuses to stage when dir's volume has less than need bytes free.
func checkFreeSpace(dir string, need int64) error {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return nil
	}
	var free, total, totalFree uint64
	if err := windows.GetDiskFreeSpaceEx(p, &free, &total, &totalFree); err != nil {
		return nil // unknown is not a reason to refuse; the write itself will fail if full
	}
	if int64(free) < need {
		return fmt.Errorf("%w: %d bytes free, %d needed", ErrDiskFull, free, need)
	}
	return nil
}

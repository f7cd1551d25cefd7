//go:build unix

package store

import "golang.org/x/sys/unix"

// FreeSpace is what an unprivileged process may still write below dir.
func FreeSpace(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil //nolint:unconvert // field types differ by OS
}

func isPlatformDiskFull(error) bool { return false }

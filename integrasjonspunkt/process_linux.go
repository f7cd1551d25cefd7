package integrasjonspunkt

import (
	"bytes"
	"os"
	"strconv"
)

// processStats reads the resident set and open descriptors from /proc: the
// numbers that showed the slow-body leak (issue 14) and that operators
// watch.
func processStats() (rss, fds int64, ok bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, 0, false
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0, 0, false
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return 0, 0, false
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, 0, false
	}
	return pages * int64(os.Getpagesize()), int64(len(ents)), true
}

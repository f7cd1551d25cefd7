//go:build !linux

package integrasjonspunkt

// processStats has no portable source outside Linux; the Go runtime's own
// numbers (heap, goroutines) are still reported.
func processStats() (rss, fds int64, ok bool) { return 0, 0, false }

package update

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// ErrInsecureURL refuses a manifest or artifact location that is not HTTPS
// (operations.md §4.4 step 2). The signatures would catch a tampered file,
// but plain HTTP still tells anyone on the path which version runs where
// and lets them hold an installation back on an old, vulnerable release.
var ErrInsecureURL = errors.New("update location must be https://")

// CheckURL accepts an https URL, and plain http only to a loopback host:
// the sandbox's and the tests' local release servers.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w: %q is not an absolute URL", ErrInsecureURL, raw)
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if loopbackHost(u.Hostname()) {
			return nil
		}
	}
	return fmt.Errorf("%w: %q (plain http is accepted for loopback only)", ErrInsecureURL, redact(raw))
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// checkRedirect keeps a redirect from taking a download off HTTPS.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return CheckURL(req.URL.String())
}

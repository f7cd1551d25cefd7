// Package baseurl checks a register's configured base URL the same way for
// every client in addressing.
package baseurl

import (
	"fmt"
	"net/url"
	"strings"
)

// Check returns raw without trailing slashes when it is an absolute http(s)
// URL with a host; service names the register in the error.
func Check(service, raw string) (string, error) {
	trimmed := strings.TrimRight(raw, "/")
	u, err := url.Parse(trimmed)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%s url %q: want an absolute http(s) url", service, raw)
	}
	return trimmed, nil
}

package transport

import (
	"fmt"
	"net/url"
	"strings"
)

// BaseURL parses a channel client's configured base URL, without trailing
// slashes; it must be absolute with a host. channel and key name the client
// and the property in the error, so the operator knows what to fix.
func BaseURL(channel, key, raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if raw == "" || err != nil || u.Host == "" {
		return nil, fmt.Errorf("%s: BaseURL %q must be an absolute URL (%s)", channel, raw, key)
	}
	return u, nil
}

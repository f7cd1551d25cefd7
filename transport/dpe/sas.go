package dpe

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// SASLifetime is how long a signature is valid; the reference signs each
// request for now + 20 s (spec channels.md §7.1).
const SASLifetime = 20 * time.Second

// Signature computes the Service Bus shared access signature header value
// for resourceURI (the full URL of the call) expiring at expiry.
func Signature(resourceURI, keyName, key string, expiry time.Time) string {
	sr := url.QueryEscape(resourceURI)
	se := strconv.FormatInt(expiry.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(sr + "\n" + se))
	sig := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	return "SharedAccessSignature sr=" + sr + "&sig=" + url.QueryEscape(sig) + "&se=" + se + "&skn=" + url.QueryEscape(keyName)
}

// SAS is a parsed shared access signature.
type SAS struct {
	Resource string // decoded sr
	Sig      []byte // decoded signature
	Expiry   time.Time
	KeyName  string
	signed   string // the exact string that was signed
}

// ParseSAS reads an Authorization header value produced by Signature.
func ParseSAS(header string) (SAS, error) {
	rest, ok := strings.CutPrefix(header, "SharedAccessSignature ")
	if !ok {
		return SAS{}, fmt.Errorf("not a shared access signature")
	}
	var s SAS
	var rawSR, rawSE string
	seen := map[string]bool{}
	for _, kv := range strings.Split(rest, "&") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || seen[k] {
			return SAS{}, fmt.Errorf("malformed signature field")
		}
		seen[k] = true
		dec, err := url.QueryUnescape(v)
		if err != nil {
			return SAS{}, fmt.Errorf("signature field %s: %w", k, err)
		}
		switch k {
		case "sr":
			rawSR, s.Resource = v, dec
		case "sig":
			if s.Sig, err = base64.StdEncoding.DecodeString(dec); err != nil {
				return SAS{}, fmt.Errorf("signature encoding: %w", err)
			}
		case "se":
			n, err := strconv.ParseInt(dec, 10, 64)
			if err != nil || n < 0 {
				return SAS{}, fmt.Errorf("signature expiry %q", dec)
			}
			rawSE, s.Expiry = dec, time.Unix(n, 0)
		case "skn":
			s.KeyName = dec
		}
	}
	if rawSR == "" || s.Sig == nil || rawSE == "" || s.KeyName == "" {
		return SAS{}, fmt.Errorf("signature lacks sr, sig, se or skn")
	}
	// The signed string uses the encoded resource as sent; normalise it the
	// way the signer encodes, so equivalent encodings verify alike.
	s.signed = url.QueryEscape(s.Resource) + "\n" + rawSE
	return s, nil
}

// Valid reports whether the signature was made with key.
func (s SAS) Valid(key string) bool {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(s.signed))
	return hmac.Equal(mac.Sum(nil), s.Sig)
}

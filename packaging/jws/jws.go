// Package jws signs and verifies compact JSON Web Signatures with RS256 (RFC 7515, RFC 7518
// §3.3), the only algorithm the eFormidling services use for signed answers: the Service
// Registry's records and certificates, KRR's person answers, and the sandbox's simulators of
// them. It also reads and writes JWK sets (RFC 7517) of RSA public keys.
//
// The API is deliberately small: Sign, Verify, the unverified Header for picking a key by kid or
// x5c, and the JWK set codec. Anything but RS256 is refused, so an attacker cannot pick "none" or
// an HMAC algorithm keyed with the public key.
//
// This package is a leaf: it imports only the standard library.
package jws

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// Errors callers branch on. ErrSignature means well-formed but not signed by any given key;
// a lookup that gets it must fail, never be treated as "not found".
var (
	ErrMalformed = errors.New("malformed jws")
	ErrAlgorithm = errors.New("jws algorithm is not RS256")
	ErrSignature = errors.New("jws signature does not verify")
	ErrNoKey     = errors.New("no key to verify jws")
)

// MaxTokenSize caps what Verify and Header accept (16 MiB): SR answers are a few kilobytes,
// a VirkSert certificate chain a few more; the cap keeps a hostile peer from making us decode
// gigabytes.
const MaxTokenSize = 16 << 20

var b64 = base64.RawURLEncoding.Strict()

// Sign returns the compact serialisation of payload signed with key. header adds fields to the
// protected header (typically "kid" and "x5c"); "alg" is always RS256 whatever header says.
// header may be nil.
func Sign(key *rsa.PrivateKey, payload []byte, header map[string]any) ([]byte, error) {
	if key == nil {
		return nil, ErrNoKey
	}
	h := make(map[string]any, len(header)+1)
	for k, v := range header {
		h[k] = v
	}
	h["alg"] = "RS256"
	hj, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encoding jws header: %w", err)
	}
	signingInput := make([]byte, 0, b64.EncodedLen(len(hj))+1+b64.EncodedLen(len(payload)))
	signingInput = b64.AppendEncode(signingInput, hj)
	signingInput = append(signingInput, '.')
	signingInput = b64.AppendEncode(signingInput, payload)
	digest := sha256.Sum256(signingInput)
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:])
	if err != nil {
		return nil, fmt.Errorf("signing jws: %w", err)
	}
	out := append(signingInput, '.')
	return b64.AppendEncode(out, sig), nil
}

type parts struct {
	header       map[string]any
	signingInput []byte
	payload      []byte
	sig          []byte
}

func split(token []byte) (parts, error) {
	if len(token) > MaxTokenSize {
		return parts{}, fmt.Errorf("%w: larger than %d bytes", ErrMalformed, MaxTokenSize)
	}
	token = bytes.TrimSpace(token)
	i := bytes.IndexByte(token, '.')
	if i < 0 {
		return parts{}, fmt.Errorf("%w: not three dot-separated parts", ErrMalformed)
	}
	j := bytes.IndexByte(token[i+1:], '.')
	if j < 0 {
		return parts{}, fmt.Errorf("%w: not three dot-separated parts", ErrMalformed)
	}
	j += i + 1
	if bytes.IndexByte(token[j+1:], '.') >= 0 {
		return parts{}, fmt.Errorf("%w: more than three parts (JWE?)", ErrMalformed)
	}
	hj, err := b64.DecodeString(string(token[:i]))
	if err != nil {
		return parts{}, fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	var p parts
	if err := json.Unmarshal(hj, &p.header); err != nil || p.header == nil {
		return parts{}, fmt.Errorf("%w: header is not a json object", ErrMalformed)
	}
	if p.payload, err = b64.DecodeString(string(token[i+1 : j])); err != nil {
		return parts{}, fmt.Errorf("%w: payload: %w", ErrMalformed, err)
	}
	if p.sig, err = b64.DecodeString(string(token[j+1:])); err != nil {
		return parts{}, fmt.Errorf("%w: signature: %w", ErrMalformed, err)
	}
	p.signingInput = token[:j]
	return p, nil
}

// Header returns the protected header WITHOUT verifying anything, to choose the key (by "kid",
// or the certificate in "x5c") before calling Verify. Never trust its content otherwise.
func Header(token []byte) (map[string]any, error) {
	p, err := split(token)
	if err != nil {
		return nil, err
	}
	return p.header, nil
}

// Verify checks an RS256 compact JWS against each key in turn and returns the payload and the
// protected header of the first that verifies. nil keys are skipped.
func Verify(token []byte, keys ...*rsa.PublicKey) (payload []byte, header map[string]any, err error) {
	p, err := split(token)
	if err != nil {
		return nil, nil, err
	}
	if alg, _ := p.header["alg"].(string); alg != "RS256" {
		return nil, nil, ErrAlgorithm
	}
	if crit, ok := p.header["crit"]; ok && crit != nil {
		// RFC 7515 §4.1.11: we understand no extensions, so a token that demands one is refused.
		return nil, nil, fmt.Errorf("%w: unsupported crit header", ErrMalformed)
	}
	digest := sha256.Sum256(p.signingInput)
	tried := false
	for _, k := range keys {
		if k == nil {
			continue
		}
		tried = true
		if rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], p.sig) == nil {
			return p.payload, p.header, nil
		}
	}
	if !tried {
		return nil, nil, ErrNoKey
	}
	return nil, nil, ErrSignature
}

// X5C returns the certificates of a header's "x5c" chain (standard base64 DER, leaf first).
// It checks neither the chain nor the validity period; that is the caller's trust decision.
func X5C(header map[string]any) ([]*x509.Certificate, error) {
	raw, ok := header["x5c"].([]any)
	if !ok || len(raw) == 0 {
		return nil, fmt.Errorf("%w: no x5c header", ErrMalformed)
	}
	out := make([]*x509.Certificate, 0, len(raw))
	for i, r := range raw {
		s, ok := r.(string)
		if !ok {
			return nil, fmt.Errorf("%w: x5c[%d] is not a string", ErrMalformed, i)
		}
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%w: x5c[%d]: %w", ErrMalformed, i, err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: x5c[%d]: %w", ErrMalformed, i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// X5CHeader returns the "x5c" value for certificates (leaf first), for Sign's header.
func X5CHeader(certs ...*x509.Certificate) []string {
	out := make([]string, len(certs))
	for i, c := range certs {
		out[i] = base64.StdEncoding.EncodeToString(c.Raw)
	}
	return out
}

// JWK is one RSA public key of a JWK set.
type JWK struct {
	KeyID string
	Key   *rsa.PublicKey
	// Use is "sig" for signing keys; empty means unspecified.
	Use string
}

type jwkJSON struct {
	Kty string `json:"kty"`
	Kid string `json:"kid,omitempty"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

// ParseJWKSet decodes {"keys": [...]} and returns its RSA keys in order; keys of other types are
// skipped (the SR takes the first RSA key), malformed RSA keys are an error.
func ParseJWKSet(b []byte) ([]JWK, error) {
	var set struct {
		Keys []jwkJSON `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("%w: jwk set: %w", ErrMalformed, err)
	}
	var out []JWK
	for i, k := range set.Keys {
		if k.Kty != "RSA" {
			continue
		}
		n, err1 := base64.RawURLEncoding.DecodeString(k.N)
		e, err2 := base64.RawURLEncoding.DecodeString(k.E)
		if err1 != nil || err2 != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 {
			return nil, fmt.Errorf("%w: jwk set: keys[%d]: bad n or e", ErrMalformed, i)
		}
		ev := int(new(big.Int).SetBytes(e).Int64())
		nv := new(big.Int).SetBytes(n)
		if ev < 3 || nv.BitLen() < 1024 {
			return nil, fmt.Errorf("%w: jwk set: keys[%d]: rsa key too weak", ErrMalformed, i)
		}
		out = append(out, JWK{KeyID: k.Kid, Use: k.Use, Key: &rsa.PublicKey{N: nv, E: ev}})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: jwk set has no rsa key", ErrNoKey)
	}
	return out, nil
}

// MarshalJWKSet encodes keys as a JWK set with "alg" RS256.
func MarshalJWKSet(keys ...JWK) ([]byte, error) {
	set := struct {
		Keys []jwkJSON `json:"keys"`
	}{Keys: make([]jwkJSON, 0, len(keys))}
	for _, k := range keys {
		if k.Key == nil {
			return nil, ErrNoKey
		}
		set.Keys = append(set.Keys, jwkJSON{
			Kty: "RSA", Kid: k.KeyID, Use: k.Use, Alg: "RS256",
			N: base64.RawURLEncoding.EncodeToString(k.Key.N.Bytes()),
			E: base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.Key.E)).Bytes()),
		})
	}
	return json.Marshal(set)
}

// Thumbprint returns the RFC 7638 SHA-256 thumbprint of an RSA key, base64url: a stable "kid".
func Thumbprint(k *rsa.PublicKey) string {
	// Members in lexicographic order, no whitespace, as RFC 7638 §3 requires.
	j := fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`,
		base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
		base64.RawURLEncoding.EncodeToString(k.N.Bytes()))
	sum := sha256.Sum256([]byte(j))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

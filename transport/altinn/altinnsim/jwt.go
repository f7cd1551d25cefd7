package altinnsim

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

var b64 = base64.RawURLEncoding

// sign makes a compact RS256 JWS of claims.
func sign(key *rsa.PrivateKey, kid string, claims any) (string, error) {
	hdr, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": kid})
	if err != nil {
		return "", err
	}
	body, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := b64.EncodeToString(hdr) + "." + b64.EncodeToString(body)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return input + "." + b64.EncodeToString(sig), nil
}

var errBadToken = errors.New("bad token")

// verify checks an RS256 compact JWS with the key its kid names (or the
// only key when there is one) and decodes its claims into out.
func verify(token string, keys func(kid string) (*rsa.PublicKey, error), out any) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return fmt.Errorf("%w: not a compact jws", errBadToken)
	}
	hb, err := b64.DecodeString(parts[0])
	if err != nil {
		return fmt.Errorf("%w: header encoding", errBadToken)
	}
	var hdr struct{ Alg, Kid string }
	if err := json.Unmarshal(hb, &hdr); err != nil || hdr.Alg != "RS256" {
		return fmt.Errorf("%w: header must name RS256", errBadToken)
	}
	key, err := keys(hdr.Kid)
	if err != nil {
		return err
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return fmt.Errorf("%w: signature encoding", errBadToken)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig); err != nil {
		return fmt.Errorf("%w: signature", errBadToken)
	}
	body, err := b64.DecodeString(parts[1])
	if err != nil {
		return fmt.Errorf("%w: claims encoding", errBadToken)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%w: claims: %v", errBadToken, err)
	}
	return nil
}

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
	N   string `json:"n"`
	E   string `json:"e"`
}

func toJWK(kid string, k *rsa.PublicKey) jwk {
	return jwk{Kty: "RSA", Kid: kid, Alg: "RS256", Use: "sig",
		N: b64.EncodeToString(k.N.Bytes()), E: b64.EncodeToString(big.NewInt(int64(k.E)).Bytes())}
}

func fromJWK(j jwk) (*rsa.PublicKey, error) {
	if j.Kty != "RSA" {
		return nil, fmt.Errorf("jwk %q is not RSA", j.Kid)
	}
	n, err := b64.DecodeString(j.N)
	if err != nil {
		return nil, fmt.Errorf("jwk %q modulus: %w", j.Kid, err)
	}
	e, err := b64.DecodeString(j.E)
	if err != nil {
		return nil, fmt.Errorf("jwk %q exponent: %w", j.Kid, err)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
}

package altinnsim

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/efm-go/efm/internal/simfault"
	"github.com/google/uuid"
)

// Issuer signs access tokens of the shape Maskinporten issues (spec
// channels.md §1.7: scope, consumer, authorization_details). Tests and the
// sandbox use it where no Maskinporten simulator is mounted; it checks no
// grant, so it never stands in for Maskinporten's own rules.
type Issuer struct {
	key *rsa.PrivateKey
	kid string
}

// NewIssuer returns an Issuer with a fresh key.
func NewIssuer() (*Issuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generating issuer key: %w", err)
	}
	return &Issuer{key: key, kid: "mp-" + uuid.NewString()[:8]}, nil
}

// Keys returns the issuer's public key by kid, for Options.MaskinportenKeys.
func (i *Issuer) Keys() map[string]*rsa.PublicKey {
	return map[string]*rsa.PublicKey{i.kid: &i.key.PublicKey}
}

// JWKS serves the public key as a JWK set.
func (i *Issuer) JWKS() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		simfault.WriteJSON(w, http.StatusOK, map[string]any{"keys": []jwk{toJWK(i.kid, &i.key.PublicKey)}})
	})
}

// Grant is what a Maskinporten token is issued for.
type Grant struct {
	ConsumerOrg    string // organisation number
	Scopes         []string
	SystemUserOrg  string // organisation number; "" for no system user
	SystemUserName string
	Lifetime       time.Duration // default 120 s
}

// Token signs a Maskinporten-shaped access token for g.
func (i *Issuer) Token(g Grant) (string, error) {
	now := time.Now()
	if g.Lifetime == 0 {
		g.Lifetime = 120 * time.Second
	}
	c := mpClaims{Iss: "maskinporten-sim", Scope: strings.Join(g.Scopes, " "),
		Consumer: &party{Authority: "iso6523-actorid-upis", ID: "0192:" + g.ConsumerOrg},
		Iat:      now.Unix(), Exp: now.Add(g.Lifetime).Unix(), Jti: uuid.NewString()}
	if g.SystemUserOrg != "" {
		c.AuthorizationDetails = []authzDetail{{Type: "urn:altinn:systemuser",
			SystemUserOrg: &party{Authority: "iso6523-actorid-upis", ID: "0192:" + g.SystemUserOrg},
			ExternalRef:   g.SystemUserName}}
	}
	return sign(i.key, i.kid, c)
}

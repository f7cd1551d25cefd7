package check

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"

	"github.com/efm-go/efm/addressing/sr"
	"github.com/efm-go/efm/packaging/maskinporten"
	"github.com/efm-go/efm/transport"
)

// Explain turns a failed part's error into the fix, one sentence. Known
// remote error codes come first; then the transport-level failures every
// part shares. The sentences name the keys of integrasjonspunkt-local.properties.
func Explain(part string, err error) string {
	var mp *maskinporten.Error
	if errors.As(err, &mp) {
		return explainMaskinporten(mp)
	}
	switch {
	case errors.Is(err, sr.ErrNotFound):
		return "The Service Registry does not know this organisation: its business certificate must be registered in Virksert and the organisation in ELMA; ask servicedesk@digdir.no."
	case errors.Is(err, sr.ErrUnauthorized):
		return "The Service Registry refused the token: the Maskinporten client needs the eformidling scopes of the enabled channels; add them in Samarbeidsportalen."
	case errors.Is(err, sr.ErrUnavailable):
		return "The Service Registry answers with server errors or not at all: try again later, and see status.digdir.no if it lasts."
	}
	if errors.Is(err, sr.ErrBadSignature) {
		return "The Service Registry's answer did not verify: check difi.move.sign.jwkUrl and that nothing between here and Digdir rewrites answers."
	}
	var st *transport.StatusError
	if errors.As(err, &st) {
		return explainStatus(part, st)
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "No answer in time from " + part + ": open the firewall (outbound 443) to it, or check the proxy."
	case errors.As(err, &ne), strings.Contains(err.Error(), "connection refused"), strings.Contains(err.Error(), "no such host"):
		return "Cannot reach " + part + ": check the URL in the configuration and open the firewall (outbound 443) to it."
	case errors.Is(err, transport.ErrMalformed):
		return part + " answered something that is not its protocol: check the URL in the configuration points at the service itself, not a proxy page."
	}
	return "Unexpected failure at " + part + ": see the error above, and the daemon's log for this part."
}

func explainMaskinporten(e *maskinporten.Error) string {
	d := strings.ToLower(e.Description)
	switch {
	case e.Code == "invalid_client":
		return "Maskinporten does not know this client or its certificate: set difi.move.oidc.clientId to the integration's client id in Samarbeidsportalen and register the business certificate (or its organisation) there."
	case e.Code == "invalid_scope":
		return "The Maskinporten client lacks a scope this installation needs: add the scopes of the enabled channels to the integration in Samarbeidsportalen, or ask Digdir for access to them."
	case e.Code == "invalid_grant" && (strings.Contains(d, "iat") || strings.Contains(d, "exp") || strings.Contains(d, "clock") || strings.Contains(d, "time")):
		return "Maskinporten refused the grant's timestamps: this machine's clock is off; turn on NTP time synchronisation."
	case e.Code == "invalid_grant":
		return "Maskinporten refused the grant: check difi.move.oidc.audience for the environment and that the business certificate is valid and registered."
	case e.StatusCode >= 500:
		return "Maskinporten answers with server errors: try again later, and see status.digdir.no if it lasts."
	}
	return "Maskinporten refused the token request: see the error code above and the integration in Samarbeidsportalen."
}

func explainStatus(part string, e *transport.StatusError) string {
	p := strings.ToLower(part)
	auth := e.StatusCode == 401 || e.StatusCode == 403
	switch {
	case auth && strings.Contains(p, "token exchange"):
		return "Altinn refused the Maskinporten token: the organisation needs an Altinn system user for the integration point (difi.move.dpo.systemUser.*) that the organisation has approved in Altinn."
	case auth && strings.Contains(p, "broker"):
		return "The Altinn system user may not use the broker resource: give it access to difi.move.dpo.resource in Altinn's resource registry."
	case auth && strings.Contains(p, "correspondence"):
		return "Altinn refused the correspondence call: the organisation must be on Digdir's DPV access list; ask servicedesk@digdir.no."
	case auth && strings.Contains(p, "svarinn"):
		return "SvarInn refused the user name or password: check difi.move.fiks.inn.username and difi.move.fiks.inn.password against the receiving system in KS FIKS."
	case auth && (strings.Contains(p, "svarut") || strings.Contains(p, "fiks")):
		return "SvarUt refused the user name or password: check difi.move.fiks.ut.username and difi.move.fiks.ut.password against the account in KS FIKS."
	case auth:
		return part + " refused the credentials: check the credentials for it in the configuration."
	case e.StatusCode == 404:
		return part + " has no such address: check its URL in the configuration."
	case e.StatusCode >= 500:
		return part + " answers with server errors: it is down or overloaded; try again later."
	}
	return part + " rejected the request (HTTP " + strconv.Itoa(e.StatusCode) + "): see the error above."
}

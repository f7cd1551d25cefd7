package manifest

import "slices"

// centralKeys are the configuration keys a signed manifest may set as
// defaults (operations.md §4.3 config_defaults): endpoint addresses Digdir or
// KS move now and then. Never a secret, never a switch that changes what the
// installation sends or who may call it, never the update source itself (a
// manifest that could redirect the next manifest would outlive its key).
var centralKeys = []string{
	"difi.move.serviceregistryEndpoint",
	"difi.move.oidc.url",
	"difi.move.oidc.audience",
	"difi.move.dpo.altinnTokenExchangeUrl",
	"difi.move.dpo.brokerserviceUrl",
	"difi.move.dpv.altinnTokenExchangeUrl",
	"difi.move.dpv.correspondenceServiceUrl",
	"difi.move.dpv.health-check-url",
	"difi.move.dpi.uri",
	"difi.move.dpi.oidc.url",
	"difi.move.dpi.krr-print-url",
	"difi.move.dph.uri",
	"difi.move.fiks.inn.baseUrl",
	"difi.move.fiks.io.api-host",
	"difi.move.fiks.io.host",
	"difi.move.fiks.ut.endpointUrl",
	"difi.move.fiks.ut.rest.endpointUrl",
	"difi.move.fiks.ut.rest.maskinporten.token-uri",
	"difi.move.fiks.ut.ws.endpointUrl",
	"difi.move.nextmove.serviceBus.baseUrl",
	"difi.move.sign.jwkUrl",
	"difi.move.ntp.host",
	"efm.events.url",
}

// ConfigKeyAllowed reports whether a manifest may carry a default for key.
// Keys compare exactly as spelled in the reference; relaxed forms are the
// config loader's business, after this filter.
func ConfigKeyAllowed(key string) bool { return slices.Contains(centralKeys, key) }

// ConfigKeys returns the allow-list, for `config check` and documentation.
func ConfigKeys() []string { return slices.Clone(centralKeys) }

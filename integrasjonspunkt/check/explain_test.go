package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/efm-go/efm/addressing/sr"
	"github.com/efm-go/efm/packaging/maskinporten"
	"github.com/efm-go/efm/transport"
)

// Each known remote refusal gets its own sentence, naming what to change.
func TestExplain_KnownCodes(t *testing.T) {
	tests := []struct {
		name, part string
		err        error
		want       string
	}{
		{"maskinporten invalid_client", "maskinporten", &maskinporten.Error{StatusCode: 400, Code: "invalid_client"}, "difi.move.oidc.clientId"},
		{"maskinporten invalid_scope", "maskinporten", &maskinporten.Error{StatusCode: 400, Code: "invalid_scope"}, "scopes"},
		{"maskinporten clock skew", "maskinporten", &maskinporten.Error{StatusCode: 400, Code: "invalid_grant", Description: "Invalid assertion. Client authentication failed. iat is in the future"}, "clock"},
		{"maskinporten other grant", "maskinporten", &maskinporten.Error{StatusCode: 400, Code: "invalid_grant", Description: "bad audience"}, "difi.move.oidc.audience"},
		{"maskinporten down", "maskinporten", fmt.Errorf("wrapped: %w", &maskinporten.Error{StatusCode: 503}), "server errors"},
		{"registry does not know us", "service registry", fmt.Errorf("x: %w", sr.ErrNotFound), "Virksert"},
		{"registry refuses token", "service registry", fmt.Errorf("x: %w", sr.ErrUnauthorized), "scopes"},
		{"registry signature", "service registry", fmt.Errorf("x: %w", sr.ErrBadSignature), "difi.move.sign.jwkUrl"},
		{"altinn exchange 401", "altinn token exchange (DPO)", &transport.StatusError{Op: "exchanging", StatusCode: 401}, "system user"},
		{"broker 403", "altinn broker (DPO)", &transport.StatusError{Op: "listing", StatusCode: 403}, "difi.move.dpo.resource"},
		{"correspondence 403", "altinn correspondence (DPV)", &transport.StatusError{Op: "polling", StatusCode: 403}, "access list"},
		{"svarut 401", "svarut (DPF)", &transport.StatusError{Op: "sending", StatusCode: 401}, "difi.move.fiks.ut.password"},
		{"svarinn 401", "svarinn (DPF)", &transport.StatusError{Op: "listing", StatusCode: 401}, "difi.move.fiks.inn.password"},
		{"a 404", "altinn broker (DPO)", &transport.StatusError{Op: "listing", StatusCode: 404}, "URL"},
		{"a 502", "altinn broker (DPO)", &transport.StatusError{Op: "listing", StatusCode: 502}, "server errors"},
		{"timeout", "krr", fmt.Errorf("x: %w", context.DeadlineExceeded), "firewall"},
		{"refused", "krr", &net.OpError{Op: "dial", Err: errors.New("connect: connection refused")}, "firewall"},
		{"malformed", "krr", fmt.Errorf("x: %w", transport.ErrMalformed), "not its protocol"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Explain(tt.part, tt.err)
			assert.Contains(t, got, tt.want)
			assert.NotContains(t, got, "Unexpected failure")
		})
	}
	assert.Contains(t, Explain("krr", errors.New("something new")), "Unexpected failure at krr")
}

package addressing

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/addressing/internal/simauth"
	"github.com/efm-go/efm/addressing/process"
	"github.com/efm-go/efm/addressing/sr"
)

// withDPH is an IP with difi.move.feature.enableBetaFeatures and DPH enabled: the SR client
// sends X-Enable-Beta-Features and the token carries eformidling:dph (§3.1).
func withDPH(t testing.TB) envOpt {
	key := maskinportenKey(t)
	return func(_ *Config, c *sr.Config) {
		c.BetaFeatures = true
		c.Token = func(context.Context) (string, error) {
			return simauth.Mint(key, sender, append(slices.Clone(ipScopes), "eformidling:dph"), time.Minute)
		}
	}
}

// TestResolveMessage_DPH resolves health receivers through the SR simulator's NHN address
// register (§4.6): her-id and fastlege-for reach the seeded GP office on DPH; without the beta
// header the same receiver is unknown.
func TestResolveMessage_DPH(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, sender, withDPH(t))
	for _, receiver := range []string{"her-id:8142519", "fastlege-for:06068700602", "910088009"} {
		t.Run(receiver, func(t *testing.T) {
			rt, err := e.res.ResolveMessage(ctx, Request{Receiver: mustID(t, receiver), Process: process.Helse, DocumentType: process.DocDialogmelding})
			require.NoError(t, err)
			assert.Equal(t, "DPH", rt.Service)
			assert.Equal(t, process.Helse, rt.Process)
			assert.Equal(t, "8142519", rt.Record.HerID)
			assert.Equal(t, "910088009", rt.Record.OrganisationNumber.Reveal())
			require.NotNil(t, rt.Certificate, "the address register's certificate")
			if receiver == "fastlege-for:06068700602" {
				require.NotNil(t, rt.Record.Patient)
				assert.Equal(t, "Nora", rt.Record.Patient.FirstName)
				assert.NotContains(t, fmt.Sprintf("%v %+v %v", rt, rt.Receiver, *rt.Record.Patient), "06068700602")
			}
		})
	}
	info, err := e.sr.Info(ctx, mustID(t, "her-id:8143154"))
	require.NoError(t, err)
	assert.Equal(t, sender, info.OrganizationNumber, "the own HER-id belongs to the sender")

	_, err = e.res.ResolveMessage(ctx, Request{Receiver: mustID(t, "910075918"), Process: process.Helse, DocumentType: process.DocDialogmelding})
	require.ErrorIs(t, err, ErrProcessNotSupported, "an organisation outside NHN's register")

	plain := newEnv(t, sender)
	_, err = plain.res.ResolveMessage(ctx, Request{Receiver: mustID(t, "her-id:8142519"), Process: process.Helse, DocumentType: process.DocDialogmelding})
	require.ErrorIs(t, err, ErrReceiverNotFound, "DPH records need X-Enable-Beta-Features")
}

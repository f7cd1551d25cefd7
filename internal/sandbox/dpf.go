package sandbox

import (
	"crypto/rsa"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/google/uuid"

	"github.com/efm-go/efm/addressing/seed"
	"github.com/efm-go/efm/transport/dpf/dpfsim"
)

// The KS integration every sandbox daemon uses for SvarUt REST, and the
// password of every seeded organisation's SvarInn receiving system.
const (
	dpfIntegrasjonID      = "sandbox-integrasjon"
	dpfIntegrasjonPassord = "sandbox-integrasjon-passord"
	dpfInnPassword        = "sandbox-svarinn"
	dpfSvarUtPassword     = "sandbox-svarut"
)

// dpfNamespace makes each organisation's SvarUt account id stable across
// starts, so generated properties files stay valid.
var dpfNamespace = uuid.MustParse("6f2b1c9e-5d1a-4c1e-9b7a-2f0d8e4c3a10")

// SvarUtAccount is the SvarUt REST account id (kontoid) of an organisation
// in the sandbox.
func SvarUtAccount(org string) string { return uuid.NewSHA1(dpfNamespace, []byte(org)).String() }

// DPFKeys are the keys that point a daemon of org at the KS FIKS simulator:
// its own SvarUt account and SvarInn receiving system. Overrides holds them
// for OwnOrg; a daemon of another seeded organisation adds its own.
func (sb *Sandbox) DPFKeys(org string) map[string]string {
	return map[string]string{
		"difi.move.fiks.ut.rest.kontoid": SvarUtAccount(org),
		"difi.move.fiks.ut.username":     "svarut-" + org,
		"difi.move.fiks.inn.username":    "svarinn-" + org,
		"difi.move.fiks.inn.orgnr":       org,
	}
}

// svarInnOrgs are the seeded organisations on SvarUt: each gets a test
// certificate, so a daemon can play it and receive from its SvarInn.
func svarInnOrgs(sd *seed.Seed) []string {
	var out []string
	for _, o := range sd.Orgs {
		if len(o.SvarUt) > 0 {
			out = append(out, o.Organisasjonsnummer)
		}
	}
	return out
}

// startDPF starts KS SvarUt and SvarInn (DPF): every seeded organisation has
// a SvarUt account and a SvarInn receiving system, so a shipment one sandbox
// daemon sends to another's organisation arrives at its SvarInn.
func (sb *Sandbox) startDPF(mpKey *rsa.PublicKey, log *slog.Logger) error {
	ks := sb.PKI.Orgs[sb.Seed.SvarUtOrganisation]
	if ks == nil {
		return fmt.Errorf("the seed names no svarUtOrganisation with a certificate")
	}
	var rest []dpfsim.RESTAccount
	var inn []dpfsim.InnAccount
	var soap []dpfsim.SOAPAccount
	for _, org := range slices.Sorted(maps.Keys(sb.PKI.Orgs)) {
		rest = append(rest, dpfsim.RESTAccount{KontoID: SvarUtAccount(org), Org: org})
		soap = append(soap, dpfsim.SOAPAccount{Username: "svarut-" + org, Password: dpfSvarUtPassword, Org: org})
		inn = append(inn, dpfsim.InnAccount{Username: "svarinn-" + org, Password: dpfInnPassword, Org: org, Cert: sb.PKI.Orgs[org].Cert})
	}
	sim, err := dpfsim.New(dpfsim.Options{MaskinportenKey: mpKey, Key: ks.Key, Cert: ks.Cert,
		IntegrasjonID: dpfIntegrasjonID, IntegrasjonPassord: dpfIntegrasjonPassord, REST: rest, SOAP: soap, SvarInn: inn,
		ForsendelseTyper: []string{"Brev", "Vedtak", "Byggesøknad", "Innkommende dokument"}})
	if err != nil {
		return fmt.Errorf("starting the ks fiks simulator: %w", err)
	}
	sb.closers = append(sb.closers, func() error { sim.Close(); return nil })
	if _, err := sb.serve(simulator{
		name: "ks-fiks", description: "KS SvarUt (REST, and SOAP V9 with difi.move.fiks.ut.type=ws) and SvarInn (DPF); a shipment to a seeded organisation waits in its SvarInn",
		handler: sim,
		keys: map[string]string{
			"difi.move.fiks.ut.rest.endpointUrl": "",
			"difi.move.fiks.ut.endpointUrl":      "",
			"difi.move.fiks.inn.baseUrl":         dpfsim.InnBase,
		},
		credentials: map[string]string{"svarinn": "svarinn-<orgnr> / " + dpfInnPassword, "kontoid": "SvarUtAccount(<orgnr>)"},
	}, log); err != nil {
		return err
	}
	maps.Copy(sb.Overrides, sb.DPFKeys(OwnOrg))
	maps.Copy(sb.Overrides, map[string]string{
		"difi.move.feature.enableDPF":               "true",
		"difi.move.fiks.ut.type":                    "rest",
		"difi.move.fiks.ut.rest.integrasjonId":      dpfIntegrasjonID,
		"difi.move.fiks.ut.rest.integrasjonPassord": dpfIntegrasjonPassord,
		"difi.move.fiks.ut.password":                dpfSvarUtPassword,
		"difi.move.fiks.inn.password":               dpfInnPassword,
		"difi.move.fiks.inn.enable":                 "true",
	})
	return nil
}

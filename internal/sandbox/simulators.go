package sandbox

import (
	"crypto/rsa"
	"fmt"
	"log/slog"

	"github.com/efm-go/efm/addressing/regsim"
	"github.com/efm-go/efm/packaging/maskinporten/maskinportensim"
	"github.com/efm-go/efm/packaging/testpki"
	"github.com/efm-go/efm/transport/altinn/altinnsim"
)

// digdirOrg owns the simulated central services' signing certificates.
const digdirOrg = "991825827"

// sandboxScopes are every scope a sandbox daemon may ask for: the Service
// Registry's per channel (addressing.md §3.1) and the channels' own
// (channels.md §1.7).
var sandboxScopes = []string{
	"eformidling:dpo", "eformidling:dpe", "eformidling:dpv", "eformidling:dpf", "eformidling:dpi", "eformidling:dph",
	"move/dpo.read", "move/dpe.read", "move/dpi.read", "move/dpf.read", "move/dpv.read",
	"digitalpostinnbygger:send", "global/kontaktinformasjon.read", "global/sikkerdigitalpost.read",
	"global/varslingsstatus.read", "global/sertifikat.read", "global/navn.read", "global/postadresse.read",
	"krr:global/kontaktinformasjon.read", "krr:global/digitalpost.read",
	"altinn:broker.write", "altinn:broker.read", "ks:fiks",
}

// startSimulators starts what exists, Maskinporten first: every other
// simulator checks the tokens it issues.
func (sb *Sandbox) startSimulators(log *slog.Logger) error {
	var clients []maskinportensim.Client
	certs := map[string][]byte{}
	for org, id := range sb.PKI.Orgs {
		clients = append(clients, maskinportensim.Client{ID: "MOVE_IP_" + org, OrgNumber: org, Scopes: sandboxScopes})
		certs[org] = id.CertPEM
	}
	if sb.PKI.Print != nil {
		certs[sb.PKI.Print.OrgNumber] = sb.PKI.Print.CertPEM
	}
	// The simulators' own signing keys are kept in the PKI dir: generating
	// RSA keys at every start would cost most of the start-up time.
	signer := map[string]*testpki.Identity{}
	for _, name := range []string{"maskinporten", "service-registry", "krr"} {
		id, err := sb.PKI.Issue(digdirOrg, name, name)
		if err != nil {
			return fmt.Errorf("making the %s signing key: %w", name, err)
		}
		signer[name] = id
	}
	mp, err := maskinportensim.New(maskinportensim.Options{Roots: sb.PKI.Pool(), Clients: clients, SigningKey: signer["maskinporten"].Key})
	if err != nil {
		return fmt.Errorf("starting the maskinporten simulator: %w", err)
	}
	mpURL, err := sb.serve(simulator{
		name: "maskinporten", description: "Maskinporten: JWT-bearer grants with the business certificate (x5c)",
		handler:     mp,
		keys:        map[string]string{"difi.move.oidc.url": "/token", "difi.move.oidc.audience": "/"},
		credentials: map[string]string{"clientId": "MOVE_IP_<orgnr>", "keystore": "the organisation's test certificate"},
	}, log)
	if err != nil {
		return err
	}
	sb.Overrides["difi.move.oidc.clientId"] = "MOVE_IP_" + OwnOrg

	regs, err := regsim.Start(regsim.Options{
		Seed:                  sb.Seed,
		OrgCertificates:       certs,
		MaskinportenKeys:      []*rsa.PublicKey{mp.PublicKey()},
		SRSigningKey:          signer["service-registry"].Key,
		SRSigningCertificate:  signer["service-registry"].Cert,
		KRRSigningKey:         signer["krr"].Key,
		KRRSigningCertificate: signer["krr"].Cert,
	})
	if err != nil {
		return fmt.Errorf("starting the register simulators: %w", err)
	}
	sb.closers = append(sb.closers, func() error { regs.Close(); return nil })
	sb.add(simulator{name: "service-registry", description: "Service Registry: identifier lookups, signed answers (jose)",
		keys: map[string]string{"difi.move.serviceregistryEndpoint": "", "difi.move.sign.jwkUrl": "/jwk"}}, regs.SRURL)
	sb.add(simulator{name: "krr", description: "KRR: contact and reservation register, print certificate",
		keys: map[string]string{"difi.move.dpi.krr-print-url": regs.KRRPrintURL[len(regs.KRRURL):]}}, regs.KRRURL)
	sb.add(simulator{name: "elma", description: "ELMA: the Peppol SMP of eFormidling (asked by the SR)"}, regs.ELMAURL)
	sb.add(simulator{name: "enhetsregisteret", description: "Enhetsregisteret (asked by the SR)"}, regs.BrregURL)
	sb.add(simulator{name: "folkeregister", description: "Folkeregister gateway (asked by the SR)"}, regs.FolkeregURL)
	sb.add(simulator{name: "svarut-lookup", description: "KS SvarUt address lookup (asked by the SR)"}, regs.SvarUtURL)

	alt, err := altinnsim.New(altinnsim.Options{MaskinportenJWKS: mpURL + "/jwks"})
	if err != nil {
		return fmt.Errorf("starting the altinn token exchange simulator: %w", err)
	}
	if _, err := sb.serve(simulator{
		name: "altinn-authentication", description: "Altinn token exchange: Maskinporten token in, Altinn token out",
		handler: alt,
		keys: map[string]string{
			"difi.move.dpo.altinnTokenExchangeUrl": altinnsim.ExchangePath,
			"difi.move.dpv.altinnTokenExchangeUrl": altinnsim.ExchangePath,
		},
	}, log); err != nil {
		return err
	}
	return nil
}

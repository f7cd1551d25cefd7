package sandbox

import (
	"bytes"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/efm-go/efm/addressing/regsim"
	"github.com/efm-go/efm/packaging/asic"
	"github.com/efm-go/efm/packaging/cms"
	"github.com/efm-go/efm/packaging/maskinporten/maskinportensim"
	"github.com/efm-go/efm/packaging/testpki"
	"github.com/efm-go/efm/transport/altinn/altinnsim"
	"github.com/efm-go/efm/transport/dpe/dpesim"
	"github.com/efm-go/efm/transport/dpo/dposim"
	"github.com/efm-go/efm/transport/dpv/dpvsim"
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

// ClientID is the Maskinporten client the simulator registers for org.
func ClientID(org string) string { return "MOVE_IP_" + org }

// startSimulators starts what exists, Maskinporten first: every other
// simulator checks the tokens it issues.
func (sb *Sandbox) startSimulators(log *slog.Logger) error {
	var clients []maskinportensim.Client
	certs := map[string][]byte{}
	for org, id := range sb.PKI.Orgs {
		clients = append(clients, maskinportensim.Client{ID: ClientID(org), OrgNumber: org, Scopes: sandboxScopes})
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
	var systemUsers []string
	for org := range sb.PKI.Orgs {
		systemUsers = append(systemUsers, org)
	}
	mp, err := maskinportensim.New(maskinportensim.Options{Roots: sb.PKI.Pool(), Clients: clients, SigningKey: signer["maskinporten"].Key,
		SystemUsers: systemUsers})
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
	sb.Overrides["difi.move.oidc.clientId"] = ClientID(OwnOrg)

	personCerts, mailboxes, err := sb.citizenKeys()
	if err != nil {
		return err
	}
	regs, err := regsim.Start(regsim.Options{
		Seed:                  sb.Seed,
		OrgCertificates:       certs,
		PersonCertificates:    personCerts,
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
	if err := sb.startDPI(mp.PublicKey(), mailboxes, log); err != nil {
		return err
	}
	if err := sb.startChannels(alt, log); err != nil {
		return err
	}
	return sb.startDPF(mp.PublicKey(), log)
}

// startChannels starts the channel simulators. Every seeded organisation
// but the daemons' own is a simulated peer that answers with receipts.
func (sb *Sandbox) startChannels(alt *altinnsim.Sim, log *slog.Logger) error {
	real := map[string]bool{OwnOrg: true}
	for _, org := range sb.daemons {
		real[org] = true
	}
	var peers []string
	for org := range sb.PKI.Orgs {
		if !real[org] {
			peers = append(peers, org)
		}
	}
	broker, err := dposim.New(dposim.Options{Auth: alt, Peers: peers, Open: sb.openAs})
	if err != nil {
		return fmt.Errorf("starting the altinn broker simulator: %w", err)
	}
	sb.closers = append(sb.closers, func() error { broker.Close(); return nil })
	if _, err := sb.serve(simulator{
		name: "altinn-broker", description: "Altinn 3 Broker (DPO) and the integration points of the other seeded organisations",
		handler: broker,
		keys:    map[string]string{"difi.move.dpo.brokerserviceUrl": dposim.BasePath},
	}, log); err != nil {
		return err
	}
	corr, err := dpvsim.New(dpvsim.Options{Auth: alt})
	if err != nil {
		return fmt.Errorf("starting the altinn correspondence simulator: %w", err)
	}
	if _, err := sb.serve(simulator{
		name: "altinn-correspondence", description: "Altinn 3 Correspondence behind the eFormidling proxy (DPV)",
		handler: corr,
		keys:    map[string]string{"difi.move.dpv.correspondenceServiceUrl": dpvsim.BasePath},
	}, log); err != nil {
		return err
	}
	// The key the SR simulator's /sastoken hands out (srsim's default).
	bus, err := dpesim.New(dpesim.Options{Keys: map[string]string{"MoveDPE-pilotPolicy": "sandbox-sas-key"}, Peers: peers})
	if err != nil {
		return fmt.Errorf("starting the service bus simulator: %w", err)
	}
	sb.closers = append(sb.closers, func() error { bus.Close(); return nil })
	if _, err := sb.serve(simulator{
		name: "service-bus", description: "Azure Service Bus and the eInnsyn integration point behind it (DPE)",
		handler: bus,
		keys:    map[string]string{"difi.move.nextmove.serviceBus.baseUrl": ""},
	}, log); err != nil {
		return err
	}
	return nil
}

// openAs opens a package the way a peer's integration point does: decrypt
// with the peer's key from the test PKI, verify the container's signature
// and digests against the test CA, and check the eFormidling manifest names
// the peer. A container over peerMemory bytes is spooled to a temporary
// file, as a receiving daemon spools it: a 1 GiB package is never held in
// memory. A smaller one stays in memory: a file created, written, read and
// removed for every message cost more than the zip and XML work of opening it.
func (sb *Sandbox) openAs(org string, _ []byte, pkg io.Reader) error {
	if pkg == nil {
		return nil
	}
	id := sb.PKI.Orgs[org]
	if id == nil {
		return fmt.Errorf("no test certificate for %s", org)
	}
	plain := &spool{limit: peerMemory}
	defer plain.close()
	info, err := cms.Decrypt(plain, pkg, id.Key, cms.DecryptOptions{Cert: id.Cert, FirstRecipient: true, MaxSize: 2 << 30})
	if err != nil {
		return fmt.Errorf("decrypting: %w", err)
	}
	c, err := asic.Open(plain.readerAt(), info.Size, asic.ReadOptions{Roots: sb.PKI.Pool()})
	if err != nil {
		return fmt.Errorf("verifying container: %w", err)
	}
	if c.Manifest == nil || c.Manifest.Receiver.OrgNumber() != org {
		return errors.New("manifest does not name the receiver")
	}
	return nil
}

// peerMemory is the largest decrypted container a simulated peer keeps in
// memory (the broker simulator's own limit for an upload).
const peerMemory = 4 << 20

// spool holds what is written in memory up to limit bytes and moves it to
// a temporary file when it grows past that.
type spool struct {
	limit int
	buf   []byte
	f     *os.File
	err   error
}

func (s *spool) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.f == nil && len(s.buf)+len(p) <= s.limit {
		s.buf = append(s.buf, p...)
		return len(p), nil
	}
	if s.f == nil {
		if s.f, s.err = os.CreateTemp("", "efm-sandbox-peer-*.asice"); s.err != nil {
			return 0, s.err
		}
		if _, s.err = s.f.Write(s.buf); s.err != nil {
			return 0, s.err
		}
		s.buf = nil
	}
	n, err := s.f.Write(p)
	s.err = err
	return n, err
}

func (s *spool) readerAt() io.ReaderAt {
	if s.f != nil {
		return s.f
	}
	return bytes.NewReader(s.buf)
}

func (s *spool) close() {
	if s.f != nil {
		s.f.Close()
		os.Remove(s.f.Name())
	}
}

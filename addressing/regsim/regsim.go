// Package regsim assembles the Service Registry simulator and the register simulators behind
// it — Enhetsregisteret, ELMA, KS SvarUt's address lookup, KRR and the Folkeregister gateway —
// from one seed, each on its own loopback port, wired to each other over HTTP as the real
// services are (spec/channels.md §9.2). The sandbox (cmd/efm-sandbox) and the addressing tests
// start them through Start.
//
// The daemon needs two of the URLs: SRURL (difi.move.serviceregistryEndpoint; the JWK set is at
// SRURL + "/jwk", difi.move.sign.jwkUrl) and KRRPrintURL (difi.move.dpi.krr-print-url).
package regsim

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/efm-go/efm/addressing/brreg/brregsim"
	"github.com/efm-go/efm/addressing/elma/elmasim"
	"github.com/efm-go/efm/addressing/folkereg/folkeregsim"
	"github.com/efm-go/efm/addressing/krr/krrsim"
	"github.com/efm-go/efm/addressing/seed"
	"github.com/efm-go/efm/addressing/sr/srsim"
	"github.com/efm-go/efm/addressing/svarut/svarutsim"
)

// Options configure Start.
type Options struct {
	// Seed must not be nil; seed.Default() is the usual one.
	Seed *seed.Seed
	// OrgCertificates are business certificates (PEM) by organisation number, for every number in
	// Seed.Organisations(): VirkSert in the SR, the print provider's certificate in KRR and
	// SvarUt's on DPF records. Missing ones are made up, except VirkSert entries: an organisation
	// without a certificate here has none in VirkSert (the "no certificate" row of §10).
	OrgCertificates map[string][]byte
	// PersonCertificates are encryption certificates (PEM) by person number, for every person of
	// Seed.CertificatePersons(); missing ones are made up.
	PersonCertificates map[string][]byte
	// MaskinportenKeys or MaskinportenJWKSURL verify bearer tokens at the SR and KRR; with neither
	// the simulators read token claims unverified.
	MaskinportenKeys    []*rsa.PublicKey
	MaskinportenJWKSURL string
	// SRSigningKey/SRSigningCertificate and KRRSigningKey/KRRSigningCertificate sign jose answers;
	// made up when nil.
	SRSigningKey          *rsa.PrivateKey
	SRSigningCertificate  *x509.Certificate
	KRRSigningKey         *rsa.PrivateKey
	KRRSigningCertificate *x509.Certificate
	// Host to listen on; default 127.0.0.1. Ports are chosen by the system unless Addrs names them.
	Host string
	// Addrs fixes listen addresses ("127.0.0.1:9101"); empty fields get a free loopback port.
	Addrs Addrs
}

// Addrs are optional fixed listen addresses, one per simulator.
type Addrs struct {
	SR, KRR, ELMA, Brreg, Folkereg, SvarUt string
}

// Set is a running assembly.
type Set struct {
	SR       *srsim.Server
	KRR      *krrsim.Server
	ELMA     *elmasim.Server
	Brreg    *brregsim.Server
	Folkereg *folkeregsim.Server
	SvarUt   *svarutsim.Server

	SRURL, KRRURL, KRRPrintURL, ELMAURL, BrregURL, FolkeregURL, SvarUtURL string

	servers []*http.Server
}

// Start starts the six simulators. Close stops them.
func Start(opts Options) (*Set, error) {
	if opts.Seed == nil {
		return nil, errors.New("regsim: Options.Seed must not be nil")
	}
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	s := &Set{}
	var err error
	if s.Brreg, err = brregsim.New(brregsim.Options{Seed: opts.Seed}); err != nil {
		return nil, err
	}
	if s.ELMA, err = elmasim.New(elmasim.Options{Seed: opts.Seed}); err != nil {
		return nil, err
	}
	if s.SvarUt, err = svarutsim.New(svarutsim.Options{Seed: opts.Seed}); err != nil {
		return nil, err
	}
	if s.Folkereg, err = folkeregsim.New(folkeregsim.Options{Seed: opts.Seed}); err != nil {
		return nil, err
	}
	if s.KRR, err = krrsim.New(krrsim.Options{Seed: opts.Seed, PersonCertificates: opts.PersonCertificates,
		PrintCertificate: opts.OrgCertificates[opts.Seed.PrintProvider], SigningKey: opts.KRRSigningKey,
		SigningCertificate: opts.KRRSigningCertificate, MaskinportenKeys: opts.MaskinportenKeys,
		MaskinportenJWKSURL: opts.MaskinportenJWKSURL}); err != nil {
		return nil, err
	}
	serve := func(h http.Handler, addr string) (string, error) {
		if addr == "" {
			addr = net.JoinHostPort(host, "0")
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return "", fmt.Errorf("regsim: listening: %w", err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		s.servers = append(s.servers, srv)
		go func() { _ = srv.Serve(ln) }()
		return "http://" + ln.Addr().String(), nil
	}
	for _, x := range []struct {
		h    http.Handler
		addr string
		dst  *string
	}{{s.Brreg, opts.Addrs.Brreg, &s.BrregURL}, {s.ELMA, opts.Addrs.ELMA, &s.ELMAURL}, {s.SvarUt, opts.Addrs.SvarUt, &s.SvarUtURL},
		{s.Folkereg, opts.Addrs.Folkereg, &s.FolkeregURL}, {s.KRR, opts.Addrs.KRR, &s.KRRURL}} {
		if *x.dst, err = serve(x.h, x.addr); err != nil {
			s.Close()
			return nil, err
		}
	}
	s.BrregURL += "/enhetsregisteret/api"
	s.KRRPrintURL = s.KRRURL + "/rest/v2/printSertifikat"
	virksert := map[string][]byte{}
	for _, org := range opts.Seed.Organisations() {
		if p, ok := opts.OrgCertificates[org]; ok {
			virksert[org] = p
		}
	}
	// NHN's address register (DPH) is seeded on the organisations and persons.
	var nhn []srsim.HealthParty
	for _, o := range opts.Seed.Orgs {
		if o.HerID != "" {
			nhn = append(nhn, srsim.HealthParty{HerID: o.HerID, OrganisationNumber: o.Organisasjonsnummer, Name: o.Navn,
				Certificate: opts.OrgCertificates[o.Organisasjonsnummer]})
		}
	}
	fastleger := map[string]string{}
	for _, p := range opts.Seed.Persons {
		if p.Fastlege != "" {
			fastleger[p.Personidentifikator] = p.Fastlege
		}
	}
	if s.SR, err = srsim.New(srsim.Options{
		BrregURL: s.BrregURL, ELMAURL: s.ELMAURL, KRRURL: s.KRRURL, FolkeregURL: s.FolkeregURL, SvarUtURL: s.SvarUtURL,
		Certificates: virksert, SvarUtCertificate: opts.OrgCertificates[opts.Seed.SvarUtOrganisation],
		HealthParties: nhn, Fastleger: fastleger,
		SigningKey: opts.SRSigningKey, SigningCertificate: opts.SRSigningCertificate,
		MaskinportenKeys: opts.MaskinportenKeys, MaskinportenJWKSURL: opts.MaskinportenJWKSURL,
	}); err != nil {
		s.Close()
		return nil, err
	}
	if s.SRURL, err = serve(s.SR, opts.Addrs.SR); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close stops every simulator.
func (s *Set) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, srv := range s.servers {
		_ = srv.Shutdown(ctx)
	}
}

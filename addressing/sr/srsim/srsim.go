// Package srsim simulates the Service Registry (spec/channels.md §9.5). It stores no service
// records: every answer is computed by the composition rules of spec/addressing.md §4 from the
// register simulators, reached over HTTP with their own wire formats — Enhetsregisteret
// (brregsim), ELMA (elmasim), KS SvarUt's address lookup (svarutsim), KRR (krrsim) and the
// Folkeregister gateway (folkeregsim). Seeding a test therefore means seeding the registers, and
// a wrong routing rule shows up as a wrong answer.
//
// Endpoints: GET /identifier/{id}, GET /identifier/{id}/process/{process} (securityLevel,
// conversationId, print), GET /info/{id}, GET /virksert/{orgnr}, GET /sastoken, GET /jwk. JSON
// or compact JWS (RS256, x5c and kid) by Accept. A Maskinporten token with a consumer is
// required (simauth); citizen lookups need the DPI scope, and the token is forwarded to KRR.
// Error bodies are {"error_code", "error_description"}; the citizen 404 is
// {"message": "No service record found for citizen"} without the number (project rule).
//
// Control API: the /_sim/ endpoints of internal/simfault plus
// POST /_sim/badsignature {"times": n}, which signs the next n answers with a key that is not in
// /jwk (the daemon must refuse them).
//
// DPH (§4.6) is a beta feature of the SR: only with X-Enable-Beta-Features: true and a token
// with eformidling:dph. her-id:<n> and fastlege-for:<fnr> are looked up in the simulated NHN
// address register (Options.HealthParties, Options.Fastleger); fastlege-for adds the patient
// from the Folkeregister gateway. The answer is one DPH record for the health process, with
// herId and the register's certificate; the info record is entity type NorskHelsenett with
// herId and organizationNumber. An organisation number whose organisation has a HER-id gets the
// same DPH record beside its other records. Without the header or scope, her-id and
// fastlege-for answer 404 and organisations get no DPH record. The info record of a
// fastlege-for lookup names the GP's her-id, so the patient's number is only in patient.fnr.
package srsim

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/efm-go/efm/addressing/brreg"
	"github.com/efm-go/efm/addressing/elma"
	"github.com/efm-go/efm/addressing/folkereg"
	"github.com/efm-go/efm/addressing/internal/simauth"
	"github.com/efm-go/efm/addressing/internal/simcert"
	"github.com/efm-go/efm/addressing/krr"
	"github.com/efm-go/efm/addressing/sr"
	"github.com/efm-go/efm/addressing/svarut"
	"github.com/efm-go/efm/internal/simfault"
	"github.com/efm-go/efm/packaging/jws"
)

// Options configure a Server. The five register URLs are required.
type Options struct {
	// BrregURL is the Enhetsregisteret API base up to /api (brregsim URL + "/enhetsregisteret/api").
	BrregURL string
	// ELMAURL is the SMP base URL.
	ELMAURL string
	// KRRURL is the KRR base URL (persons and printSertifikat).
	KRRURL string
	// FolkeregURL is the Folkeregister gateway base URL; FolkeregAPIKey its X-API-Key.
	FolkeregURL, FolkeregAPIKey string
	// SvarUtURL is the SvarUt address lookup base URL, with its integration credentials.
	SvarUtURL                          string
	SvarUtIntegrasjonID, SvarUtPassord string

	// Certificates are VirkSert: organisation number → business certificate (PEM). A DPO or DPE
	// receiver without one gets 404 certificate_not_found, as in the real SR.
	Certificates map[string][]byte
	// SvarUtCertificate goes on DPF records (PEM); made up when nil.
	SvarUtCertificate []byte

	// SigningKey signs jose answers, SigningCertificate goes in x5c; made up when nil.
	SigningKey         *rsa.PrivateKey
	SigningCertificate *x509.Certificate
	// MaskinportenKeys or MaskinportenJWKSURL verify bearer tokens (the Maskinporten
	// simulator's keys); with neither, token claims are read unverified.
	MaskinportenKeys    []*rsa.PublicKey
	MaskinportenJWKSURL string
	// SASKey is what /sastoken returns; default "sandbox-sas-key".
	SASKey string
	// DPOEndpoint, DPFEndpoint, DPVEndpoint and DPHEndpoint are the informational endpointUrl
	// values.
	DPOEndpoint, DPFEndpoint, DPVEndpoint, DPHEndpoint string
	// HealthParties are NHN's address register (DPH), one entry per HER-id.
	HealthParties []HealthParty
	// Fastleger maps a person number to the HER-id of the person's regular GP; each HER-id must
	// be one of HealthParties.
	Fastleger map[string]string
	// HTTPClient calls the registers; default 5 s timeout (the SR's).
	HTTPClient *http.Client
	// Now defaults to time.Now (deletion dates).
	Now func() time.Time
}

// HealthParty is a communication party in NHN's address register.
type HealthParty struct {
	HerID              string
	OrganisationNumber string
	Name               string
	// ParentHerID and ParentName name the party's parent, if it has one.
	ParentHerID, ParentName string
	// Certificate is the party's certificate (PEM) as the register holds it; may be nil.
	Certificate []byte
}

// Server is the simulator; an http.Handler with the promoted simfault methods.
type Server struct {
	*simfault.Injector
	handler http.Handler
	opts    Options
	auth    *simauth.Verifier

	brreg    *brreg.Client
	elma     *elma.Client
	krr      *krr.Client
	folkereg *folkereg.Client
	svarut   *svarut.Client

	key      *rsa.PrivateKey
	signCert *x509.Certificate
	kid      string
	jwk      []byte
	wrongKey *rsa.PrivateKey
	svarCert string
	// nhn and nhnByOrg index Options.HealthParties, with armoured certificates.
	nhn      map[string]HealthParty
	nhnByOrg map[string]HealthParty

	mu       sync.Mutex
	certs    map[string]string
	badSigns int
}

// New returns a simulator that asks the registers at the given URLs.
func New(opts Options) (*Server, error) {
	var errs []error
	for name, u := range map[string]string{"BrregURL": opts.BrregURL, "ELMAURL": opts.ELMAURL, "KRRURL": opts.KRRURL,
		"FolkeregURL": opts.FolkeregURL, "SvarUtURL": opts.SvarUtURL} {
		if u == "" {
			errs = append(errs, fmt.Errorf("srsim: Options.%s is required", name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SASKey == "" {
		opts.SASKey = "sandbox-sas-key"
	}
	if opts.DPOEndpoint == "" {
		opts.DPOEndpoint = "https://platform.tt02.altinn.no/broker/api/v1"
	}
	if opts.DPFEndpoint == "" {
		opts.DPFEndpoint = "https://svarut.ks.no/tjenester/forsendelseservice/ForsendelsesServiceV9"
	}
	if opts.DPHEndpoint == "" {
		opts.DPHEndpoint = "https://test.eformidling.no/nhn-adapter/api"
	}
	if opts.DPVEndpoint == "" {
		opts.DPVEndpoint = "https://platform.tt02.altinn.no/correspondence/api/v1"
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second}
	}
	s := &Server{Injector: simfault.New(simfault.Options{StatusAnswer: simfault.ErrorCodeJSON}), opts: opts, certs: map[string]string{}, key: opts.SigningKey, signCert: opts.SigningCertificate}
	var err error
	if s.brreg, err = brreg.New(brreg.Config{BaseURL: opts.BrregURL, HTTPClient: hc}); err != nil {
		return nil, fmt.Errorf("srsim: %w", err)
	}
	if s.elma, err = elma.New(elma.Config{BaseURL: opts.ELMAURL, HTTPClient: hc}); err != nil {
		return nil, fmt.Errorf("srsim: %w", err)
	}
	// The SR must see each KRR answer fresh, so the print certificate cache is the only cache.
	if s.krr, err = krr.New(krr.Config{BaseURL: opts.KRRURL, HTTPClient: hc, PrintAttempts: 1}); err != nil {
		return nil, fmt.Errorf("srsim: %w", err)
	}
	if s.folkereg, err = folkereg.New(folkereg.Config{BaseURL: opts.FolkeregURL, APIKey: opts.FolkeregAPIKey, HTTPClient: hc}); err != nil {
		return nil, fmt.Errorf("srsim: %w", err)
	}
	if s.svarut, err = svarut.New(svarut.Config{BaseURL: opts.SvarUtURL, IntegrasjonID: opts.SvarUtIntegrasjonID,
		IntegrasjonPassord: opts.SvarUtPassord, HTTPClient: hc}); err != nil {
		return nil, fmt.Errorf("srsim: %w", err)
	}
	if s.key == nil || s.signCert == nil {
		if s.key, err = simcert.Key(); err != nil {
			return nil, fmt.Errorf("srsim: %w", err)
		}
		if _, s.signCert, err = simcert.SelfSigned("Service Registry simulator", "991825827"); err != nil {
			return nil, fmt.Errorf("srsim: %w", err)
		}
	}
	s.kid = jws.Thumbprint(&s.key.PublicKey)
	if s.jwk, err = jws.MarshalJWKSet(jws.JWK{KeyID: s.kid, Key: &s.key.PublicKey, Use: "sig"}); err != nil {
		return nil, fmt.Errorf("srsim: %w", err)
	}
	for org, p := range opts.Certificates {
		if _, err := sr.ParsePEM(p); err != nil {
			return nil, fmt.Errorf("srsim: certificate of %s: %w", org, err)
		}
		s.certs[org] = string(sr.ArmourPEM(string(p)))
	}
	s.nhn, s.nhnByOrg = map[string]HealthParty{}, map[string]HealthParty{}
	for _, h := range opts.HealthParties {
		if h.HerID == "" || h.OrganisationNumber == "" {
			return nil, errors.New("srsim: a health party needs HerID and OrganisationNumber")
		}
		if _, dup := s.nhn[h.HerID]; dup {
			return nil, fmt.Errorf("srsim: HER-id %s listed twice", h.HerID)
		}
		if h.Certificate != nil {
			if _, err := sr.ParsePEM(h.Certificate); err != nil {
				return nil, fmt.Errorf("srsim: certificate of HER-id %s: %w", h.HerID, err)
			}
			h.Certificate = sr.ArmourPEM(string(h.Certificate))
		}
		s.nhn[h.HerID] = h
		if _, ok := s.nhnByOrg[h.OrganisationNumber]; !ok {
			s.nhnByOrg[h.OrganisationNumber] = h
		}
	}
	for _, herID := range opts.Fastleger {
		if _, ok := s.nhn[herID]; !ok {
			// The map key is a person number: never in an error.
			return nil, fmt.Errorf("srsim: fastlege HER-id %s is no health party", herID)
		}
	}
	svarPEM := opts.SvarUtCertificate
	if svarPEM == nil {
		if svarPEM, _, err = simcert.SelfSigned("KS SvarUt", "971032146"); err != nil {
			return nil, fmt.Errorf("srsim: %w", err)
		}
	}
	s.svarCert = string(sr.ArmourPEM(string(svarPEM)))
	s.auth = &simauth.Verifier{Keys: opts.MaskinportenKeys, JWKSURL: opts.MaskinportenJWKSURL}

	mux := http.NewServeMux()
	s.Injector.Routes(mux)
	mux.HandleFunc("POST /_sim/badsignature", s.simBadSignature)
	mux.HandleFunc("GET /identifier/{id}", s.identifier)
	mux.HandleFunc("GET /identifier/{id}/process/{process}", s.identifier)
	mux.HandleFunc("GET /info/{id}", s.info)
	mux.HandleFunc("GET /virksert/{orgnr}", s.virksert)
	mux.HandleFunc("GET /sastoken", s.sastoken)
	mux.HandleFunc("GET /jwk", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.jwk)
	})
	s.handler = s.Injector.Wrap(mux)
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// SetCertificate adds, replaces (pem non-nil) or removes (nil) an organisation's VirkSert
// certificate at run time.
func (s *Server) SetCertificate(orgnr string, pemCert []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pemCert == nil {
		delete(s.certs, orgnr)
		return
	}
	s.certs[orgnr] = string(sr.ArmourPEM(string(pemCert)))
}

// BadSignatureNext signs the next n answers with a key that is not in /jwk.
func (s *Server) BadSignatureNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.badSigns = n
}

// JWKSet is the body of /jwk.
func (s *Server) JWKSet() []byte { return s.jwk }

func (s *Server) simBadSignature(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Times int `json:"times"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10)).Decode(&b); err != nil || b.Times < 0 {
		http.Error(w, `want {"times": <n>}`, http.StatusBadRequest)
		return
	}
	s.BadSignatureNext(b.Times)
	w.WriteHeader(http.StatusNoContent)
}

// srError is an SR error answer.
type srError struct {
	status      int
	code, descr string
	citizen     bool
}

func (e *srError) Error() string { return e.descr }

func notFound(descr string) *srError {
	return &srError{status: http.StatusNotFound, code: "not_found", descr: descr}
}

func citizenNotFound() *srError {
	return &srError{status: http.StatusNotFound, citizen: true, descr: "No service record found for citizen"}
}

func (s *Server) writeError(w http.ResponseWriter, e *srError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	if e.citizen {
		_ = json.NewEncoder(w).Encode(map[string]string{"message": e.descr})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"error_code": e.code, "error_description": e.descr})
}

// write answers v as JSON, or as a compact JWS when the client accepts application/jose.
func (s *Server) write(w http.ResponseWriter, r *http.Request, payload []byte, plainType string) {
	accept := r.Header.Get("Accept")
	if plainType == "" || strings.Contains(accept, "application/jose") {
		key := s.key
		s.mu.Lock()
		if s.badSigns > 0 {
			s.badSigns--
			s.mu.Unlock()
			if s.wrongKey == nil {
				k, err := rsa.GenerateKey(rand.Reader, 2048)
				if err != nil {
					s.writeError(w, &srError{status: 500, code: "server_error", descr: "key"})
					return
				}
				s.wrongKey = k
			}
			key = s.wrongKey
		} else {
			s.mu.Unlock()
		}
		tok, err := jws.Sign(key, payload, map[string]any{"kid": s.kid, "x5c": jws.X5CHeader(s.signCert)})
		if err != nil {
			s.writeError(w, &srError{status: 500, code: "server_error", descr: "signing failed"})
			return
		}
		w.Header().Set("Content-Type", "application/jose")
		_, _ = w.Write(tok)
		return
	}
	w.Header().Set("Content-Type", plainType)
	_, _ = w.Write(payload)
}

func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.writeError(w, &srError{status: 500, code: "server_error", descr: "encoding failed"})
		return
	}
	s.write(w, r, b, "application/json")
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) (*simauth.Token, bool) {
	tok, err := s.auth.Verify(r)
	if err != nil {
		s.writeError(w, &srError{status: http.StatusUnauthorized, code: "unauthorized", descr: "a valid Maskinporten token with a consumer is required"})
		return nil, false
	}
	return tok, true
}

func (s *Server) virksert(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r); !ok {
		return
	}
	s.mu.Lock()
	p, ok := s.certs[r.PathValue("orgnr")]
	s.mu.Unlock()
	if !ok {
		s.writeError(w, &srError{status: http.StatusNotFound, code: "certificate_not_found",
			descr: "Unable to find certificate for: " + r.PathValue("orgnr")})
		return
	}
	s.write(w, r, []byte(p), "text/plain")
}

func (s *Server) sastoken(w http.ResponseWriter, r *http.Request) {
	tok, ok := s.authorize(w, r)
	if !ok {
		return
	}
	if !tok.HasAny("eformidling:dpe", "move/dpe.read") {
		s.writeError(w, &srError{status: http.StatusUnauthorized, code: "insufficient_scope", descr: "the DPE scope is required"})
		return
	}
	s.write(w, r, []byte(s.opts.SASKey), "")
}

func (s *Server) certificateOf(orgnr string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.certs[orgnr]
	return p, ok
}

func pemOf(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

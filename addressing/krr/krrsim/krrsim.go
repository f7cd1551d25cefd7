// Package krrsim simulates KRR (spec/channels.md §9.6) from a seed: POST /rest/v1/personer and
// /rest/v2/personer (1–1000 numbers, Maskinporten token with a KRR scope of either family, JSON
// or, for Accept: application/jose, a JWS with x5c; scope and notifiability filtering), and
// GET /rest/v2/printSertifikat; plus the /_sim/ control API of internal/simfault.
//
// The simulator never logs request bodies or person numbers.
package krrsim

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/efm-go/efm/addressing/internal/simauth"
	"github.com/efm-go/efm/addressing/internal/simcert"
	"github.com/efm-go/efm/addressing/krr"
	"github.com/efm-go/efm/addressing/seed"
	"github.com/efm-go/efm/internal/simfault"
	"github.com/efm-go/efm/packaging/jws"
)

// Scope families KRR accepts (spec/addressing.md §5.1).
var (
	contactScopes = []string{"krr:global/kontaktinformasjon.read", "global/kontaktinformasjon.read"}
	digitalScopes = []string{"krr:global/digitalpost.read", "global/sikkerdigitalpost.read", "global/digitalpost.read"}
)

// Options configure a Server.
type Options struct {
	// Seed must not be nil.
	Seed *seed.Seed
	// PersonCertificates are the encryption certificates (PEM) of persons with
	// "krr.certificate": true, keyed by person number. A missing one is made up (simcert).
	PersonCertificates map[string][]byte
	// PrintCertificate is the print provider's certificate (PEM); made up when nil.
	PrintCertificate []byte
	// SigningKey and SigningCertificate sign jose answers (x5c); made up when nil.
	SigningKey         *rsa.PrivateKey
	SigningCertificate *x509.Certificate
	// MaskinportenKeys or MaskinportenJWKSURL verify bearer tokens (the Maskinporten
	// simulator's keys); with neither, token claims are read unverified.
	MaskinportenKeys    []*rsa.PublicKey
	MaskinportenJWKSURL string
}

// Server is the simulator; an http.Handler with the promoted simfault methods.
type Server struct {
	*simfault.Injector
	handler  http.Handler
	auth     *simauth.Verifier
	key      *rsa.PrivateKey
	signCert *x509.Certificate
	printOrg string
	printDER []byte

	mu      sync.RWMutex
	persons map[string]krr.WirePerson
}

// New returns a simulator seeded from opts.Seed.
func New(opts Options) (*Server, error) {
	if opts.Seed == nil {
		return nil, errors.New("krrsim: Options.Seed must not be nil")
	}
	s := &Server{Injector: simfault.New(simfault.Options{StatusAnswer: simfault.ErrorCodeJSON}), auth: &simauth.Verifier{Keys: opts.MaskinportenKeys, JWKSURL: opts.MaskinportenJWKSURL}, key: opts.SigningKey, signCert: opts.SigningCertificate,
		printOrg: opts.Seed.PrintProvider, persons: map[string]krr.WirePerson{}}
	if s.key == nil || s.signCert == nil {
		k, err := simcert.Key()
		if err != nil {
			return nil, fmt.Errorf("krrsim: %w", err)
		}
		_, c, err := simcert.SelfSigned("KRR simulator", "")
		if err != nil {
			return nil, fmt.Errorf("krrsim: %w", err)
		}
		s.key, s.signCert = k, c
	}
	printPEM := opts.PrintCertificate
	if printPEM == nil {
		var err error
		if printPEM, _, err = simcert.SelfSigned("print provider", opts.Seed.PrintProvider); err != nil {
			return nil, fmt.Errorf("krrsim: %w", err)
		}
	}
	pc, err := simcert.ParsePEM(printPEM)
	if err != nil {
		return nil, fmt.Errorf("krrsim: print certificate: %w", err)
	}
	s.printDER = pc.Raw
	for i, p := range opts.Seed.Persons {
		if p.KRR == nil {
			continue
		}
		w := krr.WirePerson{Personidentifikator: p.Personidentifikator, Reservasjon: p.KRR.Reservasjon, Status: p.KRR.Status,
			Varslingsstatus: p.KRR.Varslingsstatus, Spraak: p.KRR.Spraak}
		if p.KRR.Epostadresse != "" || p.KRR.Mobiltelefonnummer != "" {
			w.Kontaktinformasjon = &krr.Kontaktinformasjon{Epostadresse: p.KRR.Epostadresse, Mobiltelefonnummer: p.KRR.Mobiltelefonnummer}
		}
		if dp := p.KRR.DigitalPost; dp != nil {
			w.DigitalPost = &krr.DigitalPost{Postkasseadresse: dp.Postkasseadresse, Postkasseleverandoeradresse: dp.Postkasseleverandoeradresse}
		}
		if p.KRR.Certificate {
			pemCert := opts.PersonCertificates[p.Personidentifikator]
			if pemCert == nil {
				if pemCert, _, err = simcert.SelfSigned("person certificate", ""); err != nil {
					return nil, fmt.Errorf("krrsim: %w", err)
				}
			}
			c, err := simcert.ParsePEM(pemCert)
			if err != nil {
				// The message names the seed position, never the number.
				return nil, fmt.Errorf("krrsim: certificate of persons[%d]: %w", i, err)
			}
			w.Sertifikat = base64.StdEncoding.EncodeToString(c.Raw)
		}
		s.persons[p.Personidentifikator] = w
	}
	mux := http.NewServeMux()
	s.Injector.Routes(mux)
	mux.HandleFunc("POST /rest/v1/personer", s.personer)
	mux.HandleFunc("POST /rest/v2/personer", s.personer)
	mux.HandleFunc("GET /rest/v2/printSertifikat", s.printSertifikat)
	s.handler = s.Injector.Wrap(mux)
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// SetPerson replaces a person's KRR entry at run time (a reservation made between two sends).
func (s *Server) SetPerson(p krr.WirePerson) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.persons[p.Personidentifikator] = p
}

// SigningCertificate is the certificate whose key signs jose answers.
func (s *Server) SigningCertificate() *x509.Certificate { return s.signCert }

func (s *Server) personer(w http.ResponseWriter, r *http.Request) {
	tok, err := s.auth.Verify(r)
	if err != nil {
		writeErr(w, http.StatusUnauthorized, "invalid_token", "a valid Maskinporten token is required")
		return
	}
	contact, digital := tok.HasAny(contactScopes...), tok.HasAny(digitalScopes...)
	if !contact && !digital {
		writeErr(w, http.StatusForbidden, "insufficient_scope", "a KRR scope is required")
		return
	}
	var req struct {
		IDs []string `json:"personidentifikatorer"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "invalid_request", "body must be {\"personidentifikatorer\": [...]}")
		return
	}
	if len(req.IDs) < 1 || len(req.IDs) > 1000 {
		writeErr(w, http.StatusBadRequest, "invalid_request", "1 to 1000 personidentifikatorer")
		return
	}
	out := struct {
		Personer []krr.WirePerson `json:"personer"`
	}{Personer: make([]krr.WirePerson, 0, len(req.IDs))}
	s.mu.RLock()
	for _, id := range req.IDs {
		p, ok := s.persons[id]
		if !ok {
			out.Personer = append(out.Personer, krr.WirePerson{Personidentifikator: id, Reservasjon: "NEI", Status: "IKKE_REGISTRERT"})
			continue
		}
		notifiable := p.Varslingsstatus == "KAN_VARSLES"
		if !contact || !notifiable {
			p.Kontaktinformasjon = nil
		}
		if !digital || !notifiable {
			p.DigitalPost, p.Sertifikat = nil, ""
		}
		out.Personer = append(out.Personer, p)
	}
	s.mu.RUnlock()
	body, err := json.Marshal(out)
	if err != nil {
		writeErr(w, http.StatusInternalServerError, "server_error", "encoding")
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "application/jose") {
		tok, err := jws.Sign(s.key, body, map[string]any{"x5c": jws.X5CHeader(s.signCert)})
		if err != nil {
			writeErr(w, http.StatusInternalServerError, "server_error", "signing")
			return
		}
		w.Header().Set("Content-Type", "application/jose")
		_, _ = w.Write(tok)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (s *Server) printSertifikat(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{
		"postkasseleverandoerAdresse": s.printOrg,
		"x509Sertifikat":              base64.StdEncoding.EncodeToString(s.printDER),
	})
}

func writeErr(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

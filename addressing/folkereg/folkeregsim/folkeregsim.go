// Package folkeregsim simulates the Folkeregister gateway behind the Service Registry
// (spec/channels.md §9.9): GET /person/personadresse/{pid} with X-API-Key → name and postal
// address, no postadresse for secret addresses, 404 for unknown persons; plus the /_sim/ control
// API of internal/simfault.
package folkeregsim

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/efm-go/efm/addressing/folkereg"
	"github.com/efm-go/efm/addressing/seed"
	"github.com/efm-go/efm/internal/simfault"
)

// Options configure a Server.
type Options struct {
	// Seed must not be nil.
	Seed *seed.Seed
	// APIKey, when set, must be sent as X-API-Key (401 otherwise).
	APIKey string
}

// Server is the simulator; an http.Handler with the promoted simfault methods.
type Server struct {
	*simfault.Injector
	handler http.Handler
	apiKey  string
	persons map[string]seed.Folkeregister
}

// New returns a simulator seeded from opts.Seed.
func New(opts Options) (*Server, error) {
	if opts.Seed == nil {
		return nil, errors.New("folkeregsim: Options.Seed must not be nil")
	}
	s := &Server{Injector: simfault.New(simfault.Options{StatusAnswer: simfault.ErrorCodeJSON}), apiKey: opts.APIKey, persons: map[string]seed.Folkeregister{}}
	for _, p := range opts.Seed.Persons {
		if p.Folkeregister != nil {
			s.persons[p.Personidentifikator] = *p.Folkeregister
		}
	}
	mux := http.NewServeMux()
	s.Injector.Routes(mux)
	mux.HandleFunc("GET /person/personadresse/{pid}", s.person)
	s.handler = s.Injector.Wrap(mux)
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) person(w http.ResponseWriter, r *http.Request) {
	if s.apiKey != "" && r.Header.Get("X-API-Key") != s.apiKey {
		http.Error(w, `{"message":"invalid api key"}`, http.StatusUnauthorized)
		return
	}
	f, ok := s.persons[r.PathValue("pid")]
	if !ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"message":"person not found"}`))
		return
	}
	out := struct {
		Personidentifikator string                `json:"personIdentifikator"`
		Navn                folkereg.Name         `json:"navn"`
		Postadresse         *folkereg.Postadresse `json:"postadresse,omitempty"`
	}{Personidentifikator: r.PathValue("pid"), Navn: folkereg.Name{Fornavn: f.Fornavn, Mellomnavn: f.Mellomnavn, Etternavn: f.Etternavn}}
	if a := f.Postadresse; a != nil {
		out.Postadresse = &folkereg.Postadresse{Adresselinje: a.Adresselinje, Postnummer: a.Postnummer, Poststed: a.Poststed, Landkode: a.Landkode}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

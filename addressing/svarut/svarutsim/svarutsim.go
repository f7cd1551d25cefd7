// Package svarutsim simulates KS SvarUt's address lookup behind the Service Registry
// (spec/channels.md §9.9): GET /api/v2/mottakersystem?organisasjonsnummer=<orgnr> with a bearer
// token and the IntegrasjonId/IntegrasjonPassord headers; plus the /_sim/ control API of
// internal/simfault.
package svarutsim

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/efm-go/efm/addressing/seed"
	"github.com/efm-go/efm/addressing/svarut"
	"github.com/efm-go/efm/internal/simfault"
)

// Options configure a Server.
type Options struct {
	// Seed must not be nil.
	Seed *seed.Seed
	// IntegrasjonID and IntegrasjonPassord, when set, must match the request headers (401).
	IntegrasjonID, IntegrasjonPassord string
}

// Server is the simulator; an http.Handler with the promoted simfault methods.
type Server struct {
	*simfault.Injector
	handler http.Handler
	opts    Options
	systems map[string][]svarut.MottakerSystem
}

// New returns a simulator seeded from opts.Seed.
func New(opts Options) (*Server, error) {
	if opts.Seed == nil {
		return nil, errors.New("svarutsim: Options.Seed must not be nil")
	}
	s := &Server{Injector: simfault.New(simfault.Options{StatusAnswer: simfault.ErrorCodeJSON}), opts: opts, systems: map[string][]svarut.MottakerSystem{}}
	for _, o := range opts.Seed.Orgs {
		for _, m := range o.SvarUt {
			s.systems[o.Organisasjonsnummer] = append(s.systems[o.Organisasjonsnummer], svarut.MottakerSystem{
				ID: m.ID, Navn: m.Navn, Organisasjonsnummer: o.Organisasjonsnummer, ForsendelseType: m.ForsendelseType, Niva: m.Niva})
		}
	}
	mux := http.NewServeMux()
	s.Injector.Routes(mux)
	mux.HandleFunc("GET /api/v2/mottakersystem", s.lookup)
	s.handler = s.Injector.Wrap(mux)
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) lookup(w http.ResponseWriter, r *http.Request) {
	if s.opts.IntegrasjonID != "" && (r.Header.Get("IntegrasjonId") != s.opts.IntegrasjonID ||
		r.Header.Get("IntegrasjonPassord") != s.opts.IntegrasjonPassord) {
		http.Error(w, `{"message":"invalid integration credentials"}`, http.StatusUnauthorized)
		return
	}
	orgnr := r.URL.Query().Get("organisasjonsnummer")
	if orgnr == "" {
		http.Error(w, `{"message":"organisasjonsnummer is required"}`, http.StatusBadRequest)
		return
	}
	out := struct {
		Systems []svarut.MottakerSystem `json:"mottakersystemer"`
	}{Systems: s.systems[orgnr]}
	if out.Systems == nil {
		out.Systems = []svarut.MottakerSystem{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// Package brregsim simulates the open Enhetsregisteret API (spec/channels.md §9.8) from a seed:
// GET /enhetsregisteret/api/enheter/{orgnr} and /underenheter/{orgnr}, 200 JSON with the v2
// media types, 404 for unknown numbers, 410 for removed units; plus the /_sim/ control API of
// internal/simfault.
package brregsim

import (
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/efm-go/efm/addressing/brreg"
	"github.com/efm-go/efm/addressing/seed"
	"github.com/efm-go/efm/internal/simfault"
)

// Options configure a Server.
type Options struct {
	// Seed must not be nil.
	Seed *seed.Seed
}

// Server is the simulator; an http.Handler. The promoted simfault methods (FailNext, SetDelay,
// AddFault, Requests, Reset) drive it from tests.
type Server struct {
	*simfault.Injector
	handler http.Handler

	mu    sync.RWMutex
	units map[string]seed.Organisation
}

// New returns a simulator seeded from opts.Seed.
func New(opts Options) (*Server, error) {
	if opts.Seed == nil {
		return nil, errors.New("brregsim: Options.Seed must not be nil")
	}
	s := &Server{Injector: simfault.New(simfault.Options{StatusAnswer: simfault.ErrorCodeJSON}), units: map[string]seed.Organisation{}}
	for _, o := range opts.Seed.Orgs {
		s.units[o.Organisasjonsnummer] = o
	}
	mux := http.NewServeMux()
	s.Injector.Routes(mux)
	mux.HandleFunc("GET /enhetsregisteret/api/enheter/{orgnr}", func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, false) })
	mux.HandleFunc("GET /enhetsregisteret/api/underenheter/{orgnr}", func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, true) })
	s.handler = s.Injector.Wrap(mux)
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Put adds or replaces a unit at run time (tests that need a register change between lookups).
func (s *Server) Put(o seed.Organisation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.units[o.Organisasjonsnummer] = o
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, sub bool) {
	orgnr := r.PathValue("orgnr")
	if len(orgnr) != 9 || !allDigits(orgnr) {
		writeError(w, r, http.StatusBadRequest, "Ugyldig organisasjonsnummer")
		return
	}
	s.mu.RLock()
	o, ok := s.units[orgnr]
	s.mu.RUnlock()
	if !ok || o.Enhetsregisteret == seed.ERAbsent || (o.OverordnetEnhet != "") != sub {
		writeError(w, r, http.StatusNotFound, "Ingen enhet med organisasjonsnummer "+orgnr+" ble funnet")
		return
	}
	media := brreg.MediaEnhet
	if sub {
		media = brreg.MediaUnderenhet
	}
	w.Header().Set("Content-Type", media+";charset=UTF-8")
	if o.Enhetsregisteret == seed.ERRemoved {
		w.WriteHeader(http.StatusGone)
		_ = json.NewEncoder(w).Encode(map[string]string{"organisasjonsnummer": orgnr, "slettedato": o.Slettedato})
		return
	}
	e := brreg.Enhet{
		Organisasjonsnummer:  orgnr,
		Navn:                 o.Navn,
		Organisasjonsform:    &brreg.Form{Kode: o.Organisasjonsform, Beskrivelse: formNames[o.Organisasjonsform]},
		Postadresse:          addr(o.Postadresse),
		Forretningsadresse:   addr(o.Forretningsadresse),
		Slettedato:           o.Slettedato,
		Konkurs:              o.Konkurs,
		UnderAvvikling:       o.UnderAvvikling,
		UnderTvangsavvikling: o.UnderTvangsavvikling,
	}
	if sub {
		e.OverordnetEnhet = o.OverordnetEnhet
		e.Beliggenhetsadresse, e.Forretningsadresse = e.Forretningsadresse, nil
	}
	_ = json.NewEncoder(w).Encode(e)
}

var formNames = map[string]string{
	"ORGL": "Organisasjonsledd", "KOMM": "Kommune", "AS": "Aksjeselskap", "BEDR": "Underenhet til næringsdrivende og offentlig forvaltning",
	"IKS": "Interkommunalt selskap", "STI": "Stiftelse", "FLI": "Forening/lag/innretning", "STAT": "Staten", "FYLK": "Fylkeskommune",
}

func addr(a *seed.Address) *brreg.Address {
	if a == nil {
		return nil
	}
	return &brreg.Address{Adresse: a.Adresse, Postnummer: a.Postnummer, Poststed: a.Poststed, Land: a.Land,
		Landkode: a.Landkode, Kommune: a.Kommune, Kommunenummer: a.Kommunenummer}
}

func writeError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"timestamp": time.Now().UTC().Format(time.RFC3339), "status": status, "error": http.StatusText(status),
		"message": msg, "path": r.URL.Path,
	})
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Package elmasim simulates ELMA, the Peppol SMP of eFormidling (spec/channels.md §9.7), from a
// seed: GET /{participant} → ServiceGroup, GET /{participant}/services/{doctype} →
// SignedServiceMetadata (unsigned: the SR does not check it), 404 for unknown participants or
// document types; plus the /_sim/ control API of internal/simfault.
package elmasim

import (
	"encoding/xml"
	"errors"
	"net/http"
	"strings"
	"sync"

	"github.com/efm-go/efm/addressing/elma"
	"github.com/efm-go/efm/addressing/seed"
	"github.com/efm-go/efm/internal/simfault"
)

// Options configure a Server.
type Options struct {
	// Seed must not be nil.
	Seed *seed.Seed
	// EndpointURL is the access point address put in Endpoint elements (informational).
	EndpointURL string
}

// Server is the simulator; an http.Handler with the promoted simfault methods.
type Server struct {
	*simfault.Injector
	handler  http.Handler
	endpoint string

	mu   sync.RWMutex
	regs map[string][]seed.ELMA // orgnr → registrations
}

// New returns a simulator seeded from opts.Seed.
func New(opts Options) (*Server, error) {
	if opts.Seed == nil {
		return nil, errors.New("elmasim: Options.Seed must not be nil")
	}
	s := &Server{Injector: simfault.New(simfault.Options{StatusAnswer: simfault.ErrorCodeJSON}), regs: map[string][]seed.ELMA{}, endpoint: opts.EndpointURL}
	if s.endpoint == "" {
		s.endpoint = "https://ap.example.test/as4"
	}
	for _, o := range opts.Seed.Orgs {
		if len(o.ELMA) > 0 {
			s.regs[o.Organisasjonsnummer] = o.ELMA
		}
	}
	mux := http.NewServeMux()
	s.Injector.Routes(mux)
	mux.HandleFunc("GET /{participant}", s.serviceGroup)
	mux.HandleFunc("GET /{participant}/services/{doctype}", s.serviceMetadata)
	s.handler = s.Injector.Wrap(mux)
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Register replaces an organisation's registrations at run time; nil removes it.
func (s *Server) Register(orgnr string, regs []seed.ELMA) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if regs == nil {
		delete(s.regs, orgnr)
		return
	}
	s.regs[orgnr] = regs
}

func (s *Server) lookup(participant string) (string, []seed.ELMA, bool) {
	scheme, value, ok := strings.Cut(participant, "::")
	if !ok || !strings.EqualFold(scheme, elma.ParticipantScheme) {
		return "", nil, false
	}
	orgnr, ok := strings.CutPrefix(value, "0192:")
	if !ok {
		return "", nil, false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	regs, ok := s.regs[orgnr]
	return orgnr, regs, ok
}

func (s *Server) serviceGroup(w http.ResponseWriter, r *http.Request) {
	orgnr, regs, ok := s.lookup(r.PathValue("participant"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	base := "http://" + r.Host
	sg := elma.ServiceGroup{Participant: elma.Identifier{Scheme: elma.ParticipantScheme, Value: "0192:" + orgnr}}
	for _, reg := range regs {
		sg.References = append(sg.References, elma.Reference{
			Href: base + "/" + elma.ParticipantSegment(orgnr) + "/services/" + elma.DocumentSegment(reg.DocumentType)})
	}
	writeXML(w, sg)
}

func (s *Server) serviceMetadata(w http.ResponseWriter, r *http.Request) {
	orgnr, regs, ok := s.lookup(r.PathValue("participant"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	scheme, docType, _ := strings.Cut(r.PathValue("doctype"), "::")
	if scheme != elma.DocumentScheme {
		http.NotFound(w, r)
		return
	}
	for _, reg := range regs {
		if reg.DocumentType != docType {
			continue
		}
		si := elma.ServiceInformation{
			Participant: elma.Identifier{Scheme: elma.ParticipantScheme, Value: "0192:" + orgnr},
			Document:    elma.Identifier{Scheme: elma.DocumentScheme, Value: docType},
		}
		for _, p := range reg.Processes {
			si.Processes = append(si.Processes, elma.Process{
				Identifiers: []elma.Identifier{{Scheme: elma.ProcessScheme, Value: p}},
				Endpoints: []elma.Endpoint{{
					TransportProfile: "bdxr-transport-ebms3-as4-v1p0", Address: s.endpoint,
					ServiceActivationDate: "2020-01-01T00:00:00Z", ServiceExpirationDate: "2099-12-31T00:00:00Z",
					ServiceDescription: "eFormidling sandbox", TechnicalContactURL: "mailto:sandbox@example.test",
				}},
			})
		}
		writeXML(w, elma.SignedServiceMetadata{ServiceMetadata: elma.ServiceMetadata{ServiceInformation: si}})
		return
	}
	http.NotFound(w, r)
}

func writeXML(w http.ResponseWriter, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, "encoding smp xml", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=UTF-8")
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(b)
}

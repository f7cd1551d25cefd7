package dposim

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"

	"github.com/efm-go/efm/internal/simfault"
	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/dpo"
)

// DeliveryReport is GET /_sim/deliveries.
type DeliveryReport struct {
	// Deliveries counts published business messages by messageId.
	Deliveries map[string]int `json:"deliveries"`
	// Statuses lists published status messages by the messageId they report on.
	Statuses map[string][]string `json:"statuses"`
	// Duplicates are the messageIds published more than once.
	Duplicates []string `json:"duplicates"`
	// PeerErrors are packages a peer could not open, by messageId.
	PeerErrors map[string]string `json:"peerErrors"`
}

// Report returns the delivery counters.
func (s *Sim) Report() DeliveryReport {
	rep := DeliveryReport{Deliveries: s.Deliveries(), Statuses: s.Statuses(), Duplicates: []string{}}
	for id, n := range rep.Deliveries {
		if n > 1 {
			rep.Duplicates = append(rep.Duplicates, id)
		}
	}
	slices.Sort(rep.Duplicates)
	s.mu.Lock()
	rep.PeerErrors = make(map[string]string, len(s.peerErrors))
	for k, v := range s.peerErrors {
		rep.PeerErrors[k] = v
	}
	s.mu.Unlock()
	return rep
}

// SendRequest is POST /_sim/send: a message a peer originates.
type SendRequest struct {
	Sender    string          `json:"sender"`
	Recipient string          `json:"recipient"`
	SBD       json.RawMessage `json:"sbd"`
	ASiC      string          `json:"asic,omitempty"` // base64 of the CMS bytes
	Reference string          `json:"reference,omitempty"`
}

// Send publishes a message from a peer to recipient, as the peer's
// integration point would. It returns the fileTransferId.
func (s *Sim) Send(req SendRequest) (string, error) {
	var asic []byte
	if req.ASiC != "" {
		var err error
		if asic, err = base64.StdEncoding.DecodeString(req.ASiC); err != nil {
			return "", err
		}
	}
	if _, err := transport.ParseHeader(req.SBD); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.originateLocked(norm(req.Sender), norm(req.Recipient), req.Reference, req.SBD, asic, nil)
	if err != nil {
		return "", err
	}
	return t.id, nil
}

func norm(org string) string {
	if o := transport.OrgNumber(org); o != "" {
		return "0192:" + o
	}
	return org
}

func (s *Sim) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /_sim/config", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		simfault.WriteJSON(w, http.StatusOK, s.sched)
	})
	mux.HandleFunc("POST /_sim/config", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		sc := s.sched
		s.mu.Unlock()
		// Fields left out keep their value.
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&sc); err != nil {
			http.Error(w, "body must be a schedule", http.StatusBadRequest)
			return
		}
		s.SetSchedule(sc)
		simfault.WriteJSON(w, http.StatusOK, sc)
	})
	mux.HandleFunc("GET /_sim/peers", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		peers := []string{}
		for p := range s.peers {
			peers = append(peers, p)
		}
		slices.Sort(peers)
		simfault.WriteJSON(w, http.StatusOK, peers)
	})
	mux.HandleFunc("POST /_sim/peers", func(w http.ResponseWriter, r *http.Request) {
		var p struct{ Org string }
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil || transport.OrgNumber(p.Org) == "" {
			http.Error(w, `body must be {"org": "<orgnr>"}`, http.StatusBadRequest)
			return
		}
		s.AddPeer(p.Org)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_sim/deliveries", func(w http.ResponseWriter, r *http.Request) {
		simfault.WriteJSON(w, http.StatusOK, s.Report())
	})
	mux.HandleFunc("GET /_sim/transfers", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		out := make([]dpo.Overview, 0, len(s.order))
		for _, t := range s.order {
			out = append(out, s.overviewLocked(t))
		}
		simfault.WriteJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /_sim/send", func(w http.ResponseWriter, r *http.Request) {
		var req SendRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<20)).Decode(&req); err != nil {
			http.Error(w, "body must be a send request", http.StatusBadRequest)
			return
		}
		id, err := s.Send(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		simfault.WriteJSON(w, http.StatusOK, map[string]string{"fileTransferId": id})
	})
}

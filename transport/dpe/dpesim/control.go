package dpesim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/efm-go/efm/internal/simfault"
	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/dpe"
)

// DeliveryReport is GET /_sim/deliveries.
type DeliveryReport struct {
	Deliveries   map[string]int      `json:"deliveries"`
	Statuses     map[string][]string `json:"statuses"`
	Duplicates   []string            `json:"duplicates"`
	Deduplicated int                 `json:"deduplicated"`
}

// Report returns the delivery counters: business messages enqueued by
// messageId (after duplicate detection), status messages by the messageId
// they report on, and how many sends duplicate detection dropped.
func (s *Sim) Report() DeliveryReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	rep := DeliveryReport{Deliveries: map[string]int{}, Statuses: map[string][]string{}, Duplicates: []string{},
		Deduplicated: s.deduplicated}
	for k, v := range s.deliveries {
		rep.Deliveries[k] = v
		if v > 1 {
			rep.Duplicates = append(rep.Duplicates, k)
		}
	}
	for k, v := range s.statuses {
		rep.Statuses[k] = append([]string(nil), v...)
	}
	slices.Sort(rep.Duplicates)
	return rep
}

// SendRequest is POST /_sim/send: a message eInnsyn originates, such as an innsynskrav.
type SendRequest struct {
	Queue string          `json:"queue"`
	SBD   json.RawMessage `json:"sbd"`
	ASiC  string          `json:"asic,omitempty"` // base64 of the CMS
}

// Send enqueues a message as a peer would.
func (s *Sim) Send(req SendRequest) error {
	var cms []byte
	if req.ASiC != "" {
		var err error
		if cms, err = base64.StdEncoding.DecodeString(req.ASiC); err != nil {
			return fmt.Errorf("asic: %w", err)
		}
	}
	h, err := transport.ParseHeader(req.SBD)
	if err != nil {
		return err
	}
	body, err := dpe.EncodeEnvelope(req.SBD, cms)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.enqueueLocked(req.Queue, dpe.BrokerProperties{MessageID: dpe.DedupID(h)}, body)
	return nil
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
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&sc); err != nil {
			http.Error(w, "body must be a schedule", http.StatusBadRequest)
			return
		}
		s.SetSchedule(sc)
		simfault.WriteJSON(w, http.StatusOK, sc)
	})
	mux.HandleFunc("GET /_sim/deliveries", func(w http.ResponseWriter, r *http.Request) {
		simfault.WriteJSON(w, http.StatusOK, s.Report())
	})
	mux.HandleFunc("GET /_sim/queues", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		out := map[string]int{}
		for name, q := range s.queues {
			out[name] = len(q.messages)
		}
		simfault.WriteJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /_sim/send", func(w http.ResponseWriter, r *http.Request) {
		var req SendRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 16<<20)).Decode(&req); err != nil || req.Queue == "" {
			http.Error(w, "body must be a send request with a queue", http.StatusBadRequest)
			return
		}
		if err := s.Send(req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

package dpvsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/efm-go/efm/internal/simfault"
	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/dpv"
	"github.com/google/uuid"
)

// maxUpload bounds what the simulator holds in memory per request; DPV's
// own limit is 250 MB (difi.move.dpv.upload-size-limit).
const maxUpload = 256 << 20

var recipientURN = regexp.MustCompile(`^urn:altinn:(organization:identifier-no:\d{9}|person:identifier-no:\d{11})$`)

func (s *Sim) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+BasePath+"/correspondence/upload", s.upload)
	mux.HandleFunc("GET "+BasePath+"/correspondence", s.search)
	mux.HandleFunc("GET "+BasePath+"/correspondence/{id}", s.overview)
	mux.HandleFunc("GET "+BasePath+"/correspondence/{id}/details", s.details)
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("Healthy"))
	})
	s.controlRoutes(mux)
}

func problem(w http.ResponseWriter, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(transport.Problem{Type: "about:blank", Title: title, Status: status, Detail: detail})
}

func (s *Sim) auth(w http.ResponseWriter, r *http.Request) bool {
	c, err := s.opts.Auth.VerifyRequest(r)
	if err != nil {
		problem(w, http.StatusUnauthorized, "Unauthorized", "invalid token")
		return false
	}
	if !c.HasScope(dpv.Scope) {
		problem(w, http.StatusForbidden, "Forbidden", "token lacks "+dpv.Scope)
		return false
	}
	return true
}

// validate applies Altinn's checks (§9.11) to the lower-cased fields.
func validate(f map[string]string) error {
	var errs []error
	for _, k := range []string{"recipients[0]", "idempotentkey", "correspondence.resourceid", "correspondence.sendersreference",
		"correspondence.content.language", "correspondence.content.messagetitle", "correspondence.content.messagesummary",
		"correspondence.content.messagebody", "correspondence.notification.notificationtemplate"} {
		if strings.TrimSpace(f[k]) == "" {
			errs = append(errs, fmt.Errorf("%s is required", k))
		}
	}
	for k, max := range map[string]int{"correspondence.notification.emailbody": 1024, "correspondence.notification.smsbody": 160,
		"correspondence.notification.emailsubject": 128, "correspondence.content.messagetitle": 255,
		"correspondence.sendersreference": 4096} {
		if len([]rune(f[k])) > max {
			errs = append(errs, fmt.Errorf("%s is longer than %d characters", k, max))
		}
	}
	for k, v := range f {
		if strings.HasPrefix(k, "recipients[") && !recipientURN.MatchString(v) {
			errs = append(errs, fmt.Errorf("%s is not a recipient urn", k))
		}
	}
	if v := f["idempotentkey"]; v != "" {
		if _, err := uuid.Parse(v); err != nil {
			errs = append(errs, errors.New("idempotentKey must be a uuid"))
		}
	}
	return errors.Join(errs...)
}

func (s *Sim) upload(w http.ResponseWriter, r *http.Request) {
	if !s.auth(w, r) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxUpload)
	mr, err := r.MultipartReader()
	if err != nil {
		problem(w, http.StatusBadRequest, "Bad Request", "body must be multipart/form-data")
		return
	}
	fields := map[string]string{}
	var atts []*Attachment
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return // the request broke off: nothing is created
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return
		}
		if p.FormName() == "attachments" {
			atts = append(atts, &Attachment{ID: uuid.NewString(), FileName: p.FileName(), Size: len(data), data: data})
			continue
		}
		// Altinn binds names case-insensitively.
		fields[strings.ToLower(p.FormName())] = string(data)
	}
	if err := validate(fields); err != nil {
		problem(w, http.StatusBadRequest, "One or more validation errors occurred.", err.Error())
		return
	}
	var declared int
	for k := range fields {
		if strings.HasPrefix(k, "correspondence.content.attachments[") && strings.HasSuffix(k, "].filename") {
			declared++
		}
	}
	if declared != len(atts) {
		problem(w, http.StatusBadRequest, "Bad Request", "attachment metadata does not match the uploaded files")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := fields["idempotentkey"]
	if _, used := s.keys[key]; used {
		problem(w, http.StatusConflict, "Conflict", "The idempotency key has already been used")
		return
	}
	now := s.opts.Now().UTC()
	c := &correspondence{ID: uuid.NewString(), Fields: fields, Attachments: atts, Created: now,
		publishAt: now.Add(time.Duration(s.sched.Publish))}
	if !s.sched.NeverRead {
		c.readAt = c.publishAt.Add(time.Duration(s.sched.Read))
	}
	s.keys[key] = c.ID
	s.byID[c.ID] = c
	s.order = append(s.order, c)
	s.deliveries[fields["correspondence.sendersreference"]]++
	resp := map[string]any{
		"correspondences": []map[string]any{{
			"correspondenceId": c.ID, "status": dpv.StatusInitialized, "recipient": fields["recipients[0]"],
			"notifications": []map[string]any{{"orderId": uuid.NewString(), "isReminder": false, "status": "Success"}},
		}},
		"attachmentIds": attachmentIDs(atts),
	}
	simfault.WriteJSON(w, http.StatusOK, resp)
}

func attachmentIDs(atts []*Attachment) []string {
	ids := []string{}
	for _, a := range atts {
		ids = append(ids, a.ID)
	}
	return ids
}

// overviewLocked derives the state from the timeline at now.
func (s *Sim) overviewLocked(c *correspondence) dpv.Overview {
	now := s.opts.Now().UTC()
	ov := dpv.Overview{CorrespondenceID: c.ID, Status: dpv.StatusInitialized, StatusChanged: c.Created, Created: c.Created,
		ResourceID: c.Fields["correspondence.resourceid"], SendersReference: c.Fields["correspondence.sendersreference"],
		Recipient: c.Fields["recipients[0]"]}
	if !now.Before(c.publishAt) {
		t := c.publishAt
		ov.Status, ov.StatusChanged, ov.Published = dpv.StatusPublished, t, &t
	}
	if !c.readAt.IsZero() && !now.Before(c.readAt) {
		t := c.readAt
		ov.Status, ov.StatusChanged, ov.Read = dpv.StatusRead, t, &t
	}
	if c.purged != "" {
		ov.Status, ov.StatusChanged = c.purged, c.purgedAt
	}
	return ov
}

func (s *Sim) find(w http.ResponseWriter, r *http.Request) (*correspondence, bool) {
	c := s.byID[r.PathValue("id")]
	if c == nil {
		problem(w, http.StatusNotFound, "Not Found", "correspondence not found")
		return nil, false
	}
	if c.gone != 0 {
		problem(w, c.gone, http.StatusText(c.gone), "correspondence deleted")
		return nil, false
	}
	return c, true
}

func (s *Sim) overview(w http.ResponseWriter, r *http.Request) {
	if !s.auth(w, r) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.find(w, r)
	if !ok {
		return
	}
	simfault.WriteJSON(w, http.StatusOK, s.overviewLocked(c))
}

func (s *Sim) details(w http.ResponseWriter, r *http.Request) {
	if !s.auth(w, r) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.find(w, r)
	if !ok {
		return
	}
	simfault.WriteJSON(w, http.StatusOK, struct {
		dpv.Overview
		Attachments []*Attachment `json:"attachments"`
	}{s.overviewLocked(c), c.Attachments})
}

func (s *Sim) search(w http.ResponseWriter, r *http.Request) {
	if !s.auth(w, r) {
		return
	}
	ref := r.URL.Query().Get("sendersReference")
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := []string{}
	for _, c := range s.order {
		if ref == "" || c.Fields["correspondence.sendersreference"] == ref {
			ids = append(ids, c.ID)
		}
	}
	simfault.WriteJSON(w, http.StatusOK, map[string][]string{"ids": ids})
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
	mux.HandleFunc("POST /_sim/correspondences/{id}/purge", func(w http.ResponseWriter, r *http.Request) {
		var b struct{ By string }
		_ = json.NewDecoder(io.LimitReader(r.Body, 1<<10)).Decode(&b)
		if !s.Purge(r.PathValue("id"), b.By) {
			http.Error(w, "unknown correspondence", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /_sim/correspondences/{id}/delete", func(w http.ResponseWriter, r *http.Request) {
		b := struct{ Status int }{Status: http.StatusNotFound}
		_ = json.NewDecoder(io.LimitReader(r.Body, 1<<10)).Decode(&b)
		if b.Status != http.StatusNotFound && b.Status != http.StatusGone {
			http.Error(w, "status must be 404 or 410", http.StatusBadRequest)
			return
		}
		if !s.Delete(r.PathValue("id"), b.Status) {
			http.Error(w, "unknown correspondence", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_sim/correspondences", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		simfault.WriteJSON(w, http.StatusOK, s.order)
	})
	mux.HandleFunc("GET /_sim/deliveries", func(w http.ResponseWriter, r *http.Request) {
		d := s.Deliveries()
		dups := []string{}
		for k, n := range d {
			if n > 1 {
				dups = append(dups, k)
			}
		}
		slices.Sort(dups)
		simfault.WriteJSON(w, http.StatusOK, map[string]any{"deliveries": d, "duplicates": dups})
	})
}

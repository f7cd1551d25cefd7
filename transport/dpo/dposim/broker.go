package dposim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/efm-go/efm/internal/simfault"
	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/altinn/altinnsim"
	"github.com/efm-go/efm/transport/dpo"
)

var party = regexp.MustCompile(`^\d{4}:\d{9}$`)

func (s *Sim) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+BasePath+"/filetransfer", s.initialize)
	mux.HandleFunc("POST "+BasePath+"/filetransfer/{id}/upload", s.upload)
	mux.HandleFunc("GET "+BasePath+"/filetransfer", s.list)
	mux.HandleFunc("GET "+BasePath+"/filetransfer/{id}", s.overview)
	mux.HandleFunc("GET "+BasePath+"/filetransfer/{id}/details", s.details)
	mux.HandleFunc("GET "+BasePath+"/filetransfer/{id}/download", s.download)
	mux.HandleFunc("POST "+BasePath+"/filetransfer/{id}/confirmdownload", s.confirm)
	s.controlRoutes(mux)
}

func problem(w http.ResponseWriter, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(transport.Problem{Type: "about:blank", Title: title, Status: status, Detail: detail})
}

// auth verifies the token and its scope and returns the caller's org as
// "0192:<orgnr>".
func (s *Sim) auth(w http.ResponseWriter, r *http.Request, scopes ...string) (string, bool) {
	c, err := s.opts.Auth.VerifyRequest(r)
	if err != nil {
		problem(w, http.StatusUnauthorized, "Unauthorized", "invalid altinn token")
		return "", false
	}
	if !slices.ContainsFunc(scopes, c.HasScope) {
		problem(w, http.StatusForbidden, "Forbidden", "token lacks the broker scope")
		return "", false
	}
	org := c.SystemUserOrg
	if org == "" {
		org = c.ConsumerOrg
	}
	return "0192:" + org, true
}

func (s *Sim) initialize(w http.ResponseWriter, r *http.Request) {
	caller, ok := s.auth(w, r, dpo.ScopeWrite)
	if !ok {
		return
	}
	var req dpo.InitializeRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		problem(w, http.StatusBadRequest, "Bad Request", "body is not a file transfer initialisation")
		return
	}
	var errs []error
	if req.FileName == "" {
		errs = append(errs, errors.New("fileName is required"))
	}
	if !party.MatchString(req.Sender) {
		errs = append(errs, errors.New(`sender must match ^\d{4}:\d{9}$`))
	}
	if len(req.Recipients) == 0 {
		errs = append(errs, errors.New("recipients is required"))
	}
	for _, rc := range req.Recipients {
		if !party.MatchString(rc) {
			errs = append(errs, errors.New(`recipients must match ^\d{4}:\d{9}$`))
		}
	}
	if len(req.SendersFileTransferReference) > 4096 {
		errs = append(errs, errors.New("sendersFileTransferReference too long"))
	}
	if err := errors.Join(errs...); err != nil {
		problem(w, http.StatusBadRequest, "One or more validation errors occurred.", err.Error())
		return
	}
	s.mu.Lock()
	_, served := s.resources[req.ResourceID]
	s.mu.Unlock()
	if !served {
		problem(w, http.StatusForbidden, "Forbidden",
			"The resource needs to be registered as an Altinn 3 resource and it has to be associated with a service owner")
		return
	}
	if req.Sender != caller {
		problem(w, http.StatusUnauthorized, "Unauthorized",
			"You must use a bearer token that represents the sender of the file transfer")
		return
	}
	s.mu.Lock()
	t := s.newTransferLocked(req)
	s.mu.Unlock()
	simfault.WriteJSON(w, http.StatusOK, dpo.InitializeResponse{FileTransferID: t.id})
}

// lookup finds a transfer the caller may see: as sender, or as recipient.
func (s *Sim) lookup(w http.ResponseWriter, r *http.Request, caller string, asRecipient bool) (*transfer, bool) {
	t := s.transfers[r.PathValue("id")]
	if t == nil {
		problem(w, http.StatusNotFound, "Not Found", "The requested file transfer was not found")
		return nil, false
	}
	if asRecipient && t.recipientLocked(caller) == nil ||
		!asRecipient && t.sender != caller && t.recipientLocked(caller) == nil {
		problem(w, http.StatusUnauthorized, "Unauthorized", "You do not have access to this file transfer")
		return nil, false
	}
	return t, true
}

func (t *transfer) recipientLocked(org string) *recipient {
	for _, r := range t.recipients {
		if r.org == org {
			return r
		}
	}
	return nil
}

func (s *Sim) upload(w http.ResponseWriter, r *http.Request) {
	caller, ok := s.auth(w, r, dpo.ScopeWrite)
	if !ok {
		return
	}
	s.mu.Lock()
	t := s.transfers[r.PathValue("id")]
	var status string
	var res Resource
	if t != nil {
		status, res = t.status, s.resources[t.resourceID]
	}
	s.mu.Unlock()
	// The broker's checks, in its order, all before the body is read.
	if t == nil {
		problem(w, http.StatusNotFound, "Not Found", "The requested file transfer was not found")
		return
	}
	if t.sender != caller {
		problem(w, http.StatusUnauthorized, "Unauthorized", "You must use a bearer token that represents the sender of the file transfer")
		return
	}
	if status != dpo.StatusInitialized {
		alreadyUploaded(w)
		return
	}
	if r.ContentLength < 0 {
		contentLengthRequired(w)
		return
	}
	if r.ContentLength > res.limit() {
		fileSizeTooBig(w)
		return
	}
	file, sum, err := s.receive(r.Body, r.ContentLength)
	if err != nil {
		return // the connection broke: nothing was uploaded
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.status != dpo.StatusInitialized {
		file.remove()
		alreadyUploaded(w)
		return
	}
	s.storeLocked(t, file, sum)
	simfault.WriteJSON(w, http.StatusOK, s.overviewLocked(t))
}

func alreadyUploaded(w http.ResponseWriter) {
	problem(w, http.StatusConflict, "Conflict",
		"A file transfer has already been, or attempted to be, created. Create a new file transfer resource to try again.")
}

func (s *Sim) overviewLocked(t *transfer) dpo.Overview {
	ov := dpo.Overview{FileTransferID: t.id, ResourceID: t.resourceID, FileName: t.fileName,
		SendersFileTransferReference: t.ref, Checksum: t.checksum, FileTransferSize: t.size,
		FileTransferStatus: t.status, FileTransferStatusChanged: t.changed, Created: t.created,
		ExpirationTime: t.expires, Sender: t.sender, PropertyList: t.props}
	for _, rc := range t.recipients {
		ov.Recipients = append(ov.Recipients, dpo.RecipientStatus{Recipient: rc.org,
			CurrentRecipientFileTransferStatusCode: rc.status, CurrentRecipientFileTransferStatusChanged: rc.changed})
	}
	return ov
}

func (s *Sim) overview(w http.ResponseWriter, r *http.Request) {
	caller, ok := s.auth(w, r, dpo.ScopeRead, dpo.ScopeWrite)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.lookup(w, r, caller, false)
	if !ok {
		return
	}
	simfault.WriteJSON(w, http.StatusOK, s.overviewLocked(t))
}

func (s *Sim) details(w http.ResponseWriter, r *http.Request) {
	caller, ok := s.auth(w, r, dpo.ScopeRead, dpo.ScopeWrite)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.lookup(w, r, caller, false)
	if !ok {
		return
	}
	simfault.WriteJSON(w, http.StatusOK, struct {
		dpo.Overview
		FileTransferStatusHistory []statusEvent `json:"fileTransferStatusHistory"`
	}{s.overviewLocked(t), t.history})
}

func (s *Sim) list(w http.ResponseWriter, r *http.Request) {
	caller, ok := s.auth(w, r, dpo.ScopeRead)
	if !ok {
		return
	}
	q := r.URL.Query()
	s.mu.Lock()
	_, served := s.resources[q.Get("resourceId")]
	s.mu.Unlock()
	if !served {
		problem(w, http.StatusBadRequest, "Bad Request", "resourceId must name a configured resource")
		return
	}
	var from, to time.Time
	for key, dst := range map[string]*time.Time{"from": &from, "to": &to} {
		if v := q.Get(key); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				problem(w, http.StatusBadRequest, "Bad Request", key+" must be a date-time")
				return
			}
			*dst = t
		}
	}
	status, rstatus := q.Get("status"), q.Get("recipientStatus")
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := []string{}
	if status == dpo.StatusPublished && rstatus == dpo.RecipientInitialized {
		var ts []*transfer
		for t := range s.waiting[caller] {
			if t.status == dpo.StatusPublished && (from.IsZero() || !t.created.Before(from)) && (to.IsZero() || !t.created.After(to)) {
				ts = append(ts, t)
			}
		}
		slices.SortFunc(ts, func(a, b *transfer) int { return b.created.Compare(a.created) })
		for _, t := range ts[:min(len(ts), 100)] {
			ids = append(ids, t.id)
		}
		simfault.WriteJSON(w, http.StatusOK, ids)
		return
	}
	for i := len(s.order) - 1; i >= 0 && len(ids) < 100; i-- {
		t := s.order[i]
		rc := t.recipientLocked(caller)
		if rc == nil && (rstatus != "" || t.sender != caller) {
			continue
		}
		if status != "" && t.status != status ||
			rstatus != "" && rc.status != rstatus ||
			!from.IsZero() && t.created.Before(from) ||
			!to.IsZero() && t.created.After(to) {
			continue
		}
		ids = append(ids, t.id)
	}
	simfault.WriteJSON(w, http.StatusOK, ids)
}

func (s *Sim) download(w http.ResponseWriter, r *http.Request) {
	caller, ok := s.auth(w, r, dpo.ScopeRead)
	if !ok {
		return
	}
	s.mu.Lock()
	t, ok := s.lookup(w, r, caller, true)
	if !ok {
		s.mu.Unlock()
		return
	}
	if t.status != dpo.StatusPublished && t.status != dpo.StatusAllConfirmedDownloaded {
		s.mu.Unlock()
		problem(w, http.StatusBadRequest, "Bad Request", "No file uploaded yet")
		return
	}
	if t.file == nil {
		s.mu.Unlock()
		problem(w, http.StatusGone, "Gone", "The file has been purged after every recipient confirmed the download")
		return
	}
	// A file in memory is written as it is: copied through a section
	// reader, each download cost a fresh 32 KiB buffer, a sixth of all the
	// sandbox allocated under efm-bench row 4. The slice stays valid after
	// a purge, as a handle would.
	data, inMemory := t.file.data, t.file.path == ""
	var rd readerAt
	if !inMemory {
		var err error
		if rd, err = t.file.open(); err != nil {
			s.mu.Unlock()
			problem(w, http.StatusInternalServerError, "Internal Server Error", "the stored file cannot be read")
			return
		}
		defer rd.Close()
	}
	rc := t.recipientLocked(caller)
	if rc.status == dpo.RecipientInitialized {
		s.setRecipientLocked(t, rc, dpo.RecipientDownloadStarted)
	}
	size := t.size
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="`+t.fileName+`"`)
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	if inMemory {
		_, _ = w.Write(data[:size])
		return
	}
	_, _ = io.Copy(w, io.NewSectionReader(rd, 0, size))
}

func (s *Sim) confirm(w http.ResponseWriter, r *http.Request) {
	caller, ok := s.auth(w, r, dpo.ScopeRead)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.lookup(w, r, caller, true)
	if !ok {
		return
	}
	if t.status != dpo.StatusPublished && t.status != dpo.StatusAllConfirmedDownloaded {
		problem(w, http.StatusBadRequest, "Bad Request", "No file uploaded yet")
		return
	}
	rc := t.recipientLocked(caller)
	s.setRecipientLocked(t, rc, dpo.RecipientDownloadConfirmed)
	s.allConfirmedLocked(t)
	w.WriteHeader(http.StatusOK)
}

var _ Verifier = (*altinnsim.Sim)(nil)

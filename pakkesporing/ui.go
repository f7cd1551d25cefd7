package pakkesporing

import (
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/internal/logattr"
)

//go:embed templates/*.html
var templateFS embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"ts": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"tsp": func(t *time.Time) string {
		if t == nil {
			return "–"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"statusClass": func(s string) string {
		switch events.Status(s) {
		case events.Feil, events.LevetidUtlopt:
			return "bad"
		case events.Levert, events.Lest, events.InnkommendeLevert:
			return "good"
		}
		return ""
	},
	"join":       strings.Join,
	"pathEscape": url.PathEscape,
}).ParseFS(templateFS, "templates/*.html"))

type page struct {
	Title string
	Query string
	Now   time.Time
	Data  any
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, name string, p page) {
	p.Now = s.cfg.Now().UTC()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	w.WriteHeader(code)
	if err := templates.ExecuteTemplate(w, name, p); err != nil {
		s.log.ErrorContext(r.Context(), "rendering page", logattr.Route(r.Pattern), logattr.Err(err))
	}
}

// homeData is the dashboard: daily counts, the fleet, expiring certificates.
type homeData struct {
	Days      []string
	Counts    []countRow
	Versions  []versionRow
	Installs  []Installation
	Expiring  []Installation
	Silent    []Installation
	Retention []RetentionRun
}

type countRow struct {
	Service, Status string
	PerDay          []int
	Total           int
}

type versionRow struct {
	Version string
	Count   int
}

func (s *Server) uiHome(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := s.cfg.Now().UTC()
	from := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -13)
	buckets, err := s.db.stats(ctx, []string{"service", "status"}, from, now.Add(time.Hour))
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	var d homeData
	dayIdx := map[string]int{}
	for i := range 14 {
		day := from.AddDate(0, 0, i).Format(time.DateOnly)
		dayIdx[day] = i
		d.Days = append(d.Days, day)
	}
	rows := map[[2]string]*countRow{}
	for _, b := range buckets {
		k := [2]string{b.Service, b.Status}
		if rows[k] == nil {
			rows[k] = &countRow{Service: b.Service, Status: b.Status, PerDay: make([]int, 14)}
		}
		if i, ok := dayIdx[b.Day]; ok {
			rows[k].PerDay[i] += b.Count
			rows[k].Total += b.Count
		}
	}
	for _, c := range rows {
		d.Counts = append(d.Counts, *c)
	}
	sort.Slice(d.Counts, func(i, j int) bool {
		if d.Counts[i].Service != d.Counts[j].Service {
			return d.Counts[i].Service < d.Counts[j].Service
		}
		return d.Counts[i].Status < d.Counts[j].Status
	})
	if d.Installs, err = s.db.installations(ctx, `1=1`); err != nil {
		s.internalError(w, r, err)
		return
	}
	versions := map[string]int{}
	for _, in := range d.Installs {
		versions[in.Version]++
		if in.CertificateNotAfter != nil && in.CertificateNotAfter.Sub(now) < CertificateWarning {
			d.Expiring = append(d.Expiring, in)
		}
		if now.Sub(in.LastSeen) > SilentAfter {
			d.Silent = append(d.Silent, in)
		}
	}
	if d.Retention, err = s.db.retentionRuns(ctx, 5); err != nil {
		s.internalError(w, r, err)
		return
	}
	for _, v := range sortedKeys(versions) {
		d.Versions = append(d.Versions, versionRow{v, versions[v]})
	}
	s.render(w, r, http.StatusOK, "home.html", page{Title: "Pakkesporing", Data: d})
}

// uiSearch decides what the query is: an org number, a message id, or a
// conversation id, in that order.
func (s *Server) uiSearch(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	ctx := r.Context()
	switch {
	case q == "":
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	case ident.ValidOrgNumber(q):
		http.Redirect(w, r, "/ui/orgs/"+q, http.StatusSeeOther)
		return
	}
	convs, err := s.db.conversations(ctx, `message_id = ?`, q)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if len(convs) > 0 {
		http.Redirect(w, r, "/ui/messages/"+url.PathEscape(q), http.StatusSeeOther)
		return
	}
	byConv, err := s.db.conversations(ctx, `conversation_id = ?`, q)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	ids := map[string]bool{}
	for _, c := range byConv {
		ids[c.MessageID] = true
	}
	if len(ids) == 1 {
		http.Redirect(w, r, "/ui/messages/"+url.PathEscape(byConv[0].MessageID), http.StatusSeeOther)
		return
	}
	code := http.StatusOK
	if len(byConv) == 0 {
		code = http.StatusNotFound
	}
	s.render(w, r, code, "search.html", page{Title: "Search", Query: q, Data: byConv})
}

// roadStep is one event on a message's road.
type roadStep struct {
	At             time.Time
	Side           string // sender or receiver
	OrgNr          string
	Direction      string
	Service        string
	Status         string
	Reason         string
	InstallationID string
	Version        string
	ReceiverType   string
}

type messageData struct {
	MessageID      string
	ConversationID string
	Sides          []sideData
	Road           []roadStep
}

type sideData struct {
	Label string
	Conv  Conversation
	Steps []roadStep
}

func (s *Server) uiMessage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("message_id")
	v, err := s.db.message(r.Context(), id)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if len(v.Events) == 0 {
		s.render(w, r, http.StatusNotFound, "search.html", page{Title: "Not found", Query: id})
		return
	}
	d := messageData{MessageID: id}
	sides := map[string]*sideData{}
	for _, c := range v.Conversations {
		label := "Sender"
		if c.Direction == string(events.Incoming) {
			label = "Receiver"
		}
		d.ConversationID = c.ConversationID
		sides[c.OrgNr+"/"+c.Direction] = &sideData{Label: label, Conv: c}
	}
	for _, e := range v.Events {
		var ms events.MessageStatus
		if json.Unmarshal(e.Event, &ms) != nil {
			continue
		}
		st := roadStep{At: ms.OccurredAt, OrgNr: ms.OrgNr, Direction: string(ms.Direction),
			Service: string(ms.ServiceIdentifier), Status: string(ms.Status), Reason: string(ms.ReasonCode),
			InstallationID: ms.InstallationID, Version: ms.IPVersion, ReceiverType: string(ms.ReceiverType)}
		st.Side = "sender"
		if ms.Direction == events.Incoming {
			st.Side = "receiver"
		}
		d.Road = append(d.Road, st)
		if sd := sides[ms.OrgNr+"/"+string(ms.Direction)]; sd != nil {
			sd.Steps = append(sd.Steps, st)
		}
	}
	for _, sd := range sides {
		d.Sides = append(d.Sides, *sd)
	}
	sort.Slice(d.Sides, func(i, j int) bool { return d.Sides[i].Label > d.Sides[j].Label }) // Sender first
	s.render(w, r, http.StatusOK, "message.html", page{Title: "Message " + id, Query: id, Data: d})
}

type orgData struct {
	OrgNr         string
	Conversations []Conversation
	Installs      []Installation
}

func (s *Server) uiOrg(w http.ResponseWriter, r *http.Request) {
	org := r.PathValue("orgnr")
	if !ident.ValidOrgNumber(org) {
		http.Error(w, "not an organisation number", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	convs, err := s.db.conversations(ctx, `orgnr = ? AND rowid IN (SELECT rowid FROM conversation WHERE orgnr = ?
		ORDER BY last_event_at DESC LIMIT 200)`, org, org)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	ins, err := s.db.installations(ctx, `orgnr = ?`, org)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "org.html", page{Title: "Organisation " + org, Query: org, Data: orgData{org, convs, ins}})
}

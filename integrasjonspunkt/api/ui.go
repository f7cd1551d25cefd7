package api

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/integrasjonspunkt/message"
	"github.com/efm-go/efm/integrasjonspunkt/sbd"
	"github.com/efm-go/efm/integrasjonspunkt/store"
)

// The operator's pages (operations.md §2.2): status, conversations with
// search, one message's road, the incoming queue and the webhooks. They are
// plain html/template with the stylesheet embedded: no script, no CDN, so
// they work in a closed network and under a strict CSP. They sit behind the
// API's own auth; TLS is the listener's.

//go:embed ui/*.html ui/style.css
var uiFiles embed.FS

// CheckReport is the last `integrasjonspunkt check`, as the status page shows it.
type CheckReport struct {
	At    time.Time
	Lines []CheckLine
}

// CheckLine is one part of a CheckReport; Result is OK, FAIL or SKIP.
type CheckLine struct {
	Part, Result, Error, Fix string
}

var uiTemplates = template.Must(template.New("").Funcs(template.FuncMap{
	"mask":     ident.MaskDigitRuns,
	"when":     func(t time.Time) string { return uiTime(t) },
	"explain":  explainStatus,
	"statusOK": func(s string) bool { return s == Up },
	"failed":   func(s string) bool { return s == "FEIL" || s == "LEVETID_UTLOPT" },
	"query":    func(q url.Values) template.URL { return template.URL(q.Encode()) },
	"days":     func(d time.Duration) string { return fmt.Sprintf("%.0f days", d.Hours()/24) },
}).ParseFS(uiFiles, "ui/*.html"))

func uiTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(sbd.Oslo).Format("2006-01-02 15:04:05")
}

// uiRoutes registers the pages. They are GET only and behind requireAuth.
func (s *Server) uiRoutes() {
	page := func(fn func(http.ResponseWriter, *http.Request) error) http.Handler {
		return s.requireAuth(s.handle(func(w http.ResponseWriter, r *http.Request) error {
			// Inline styles and scripts are refused: a title holding markup
			// can never run, even if escaping were missed somewhere.
			w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'")
			return fn(w, r)
		}))
	}
	s.mux.Handle("GET /{$}", page(s.uiStatus))
	if s.d.RunCheck != nil {
		s.mux.Handle("POST /ui/check", page(s.uiRunCheck))
	}
	s.mux.HandleFunc("GET /ui/style.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		b, _ := uiFiles.ReadFile("ui/style.css")
		_, _ = w.Write(b)
	})
	if s.d.Store == nil {
		return
	}
	s.mux.Handle("GET /conversations", page(s.uiConversations))
	s.mux.Handle("GET /ui/messages/{messageId}", page(s.uiMessage))
	s.mux.Handle("GET /ui/incoming", page(s.uiIncoming))
	s.mux.Handle("GET /ui/webhooks", page(s.uiWebhooks))
}

func (s *Server) render(w http.ResponseWriter, code int, name string, data map[string]any) error {
	data["Nav"] = name
	data["HasStore"] = s.d.Store != nil
	var buf bytes.Buffer
	if err := uiTemplates.ExecuteTemplate(&buf, name+".html", data); err != nil {
		return fmt.Errorf("rendering %s page: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, err := w.Write(buf.Bytes())
	return err
}

type uiComponent struct {
	Name, Status string
	Details      []string
	Fix          string
}

func (s *Server) uiStatus(w http.ResponseWriter, r *http.Request) error {
	h := s.d.Health(r.Context())
	var comps []uiComponent
	for name, c := range h.Components {
		uc := uiComponent{Name: name, Status: c.Status, Fix: componentFix(name, c)}
		keys := make([]string, 0, len(c.Details))
		for k := range c.Details {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			uc.Details = append(uc.Details, fmt.Sprintf("%s: %v", k, c.Details[k]))
		}
		comps = append(comps, uc)
	}
	slices.SortFunc(comps, func(a, b uiComponent) int { return strings.Compare(a.Name, b.Name) })
	// Info is whatever /manage/info serves; the page reads the fields it shows.
	var info struct {
		Build struct {
			Version string `json:"version"`
			Time    string `json:"time"`
		} `json:"build"`
		Environment string   `json:"environment"`
		OrgNr       string   `json:"orgnr"`
		Channels    []string `json:"channels"`
		Update      any      `json:"update"`
	}
	if b, err := json.Marshal(s.d.Info()); err == nil {
		_ = json.Unmarshal(b, &info)
	}
	data := map[string]any{"Health": h.Status, "Components": comps, "Info": info, "Sandbox": s.d.Sandbox != nil,
		"CanCheck": s.d.RunCheck != nil}
	if s.d.LastCheck != nil {
		data["Check"] = s.d.LastCheck()
	}
	if s.d.Retention != nil {
		data["Retention"] = s.d.Retention(r.Context())
	}
	return s.render(w, http.StatusOK, "status", data)
}

// uiRunCheck runs `integrasjonspunkt check` inside the daemon, with its own
// configuration, and shows the status page with the result. The check only
// reads at the remote ends; still, a form on another site must not be able
// to start it, so a cross-origin POST is refused.
func (s *Server) uiRunCheck(w http.ResponseWriter, r *http.Request) error {
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		if u, err := url.Parse(o); err != nil || u.Host != r.Host {
			return &Error{Status: http.StatusForbidden, Message: "the check can only be started from the daemon's own page"}
		}
	}
	if err := s.d.RunCheck(r.Context()); err != nil {
		return err
	}
	http.Redirect(w, r, "/#check", http.StatusSeeOther)
	return nil
}

// componentFix is the status page's sentence for a component that is not UP.
func componentFix(name string, c Component) string {
	if c.Status == Up {
		return ""
	}
	switch {
	case name == "certificate":
		return "Renew the business certificate (virksomhetssertifikat) and point difi.move.org.keystore.* at it; sending is paused until then."
	case name == "store":
		return "Free disk space in the data dir or make it writable for the service user."
	case name == "queue":
		return "Restart the service; if it stays DOWN, the data dir's jetstream folder may be damaged: restore from backup."
	case name == "central-log":
		return "Open the firewall to the central log (efm.events.url, outbound 443); events wait in the outbox meanwhile."
	case name == "retention":
		return "Get the client system fetching incoming messages again (peek, pop, delete): unfetched ones are deleted at efm.retention.incoming-unfetched."
	case name == "update":
		return "See 'integrasjonspunkt update status' for the failed or available update."
	case strings.HasPrefix(name, "channel."):
		return "Run 'integrasjonspunkt check " + strings.TrimPrefix(name, "channel.") + "' to see which step fails."
	}
	return ""
}

const uiPageSize = 50

// uiStatuses are the statuses the conversation filter offers (local-api.md §8).
var uiStatuses = []string{"OPPRETTET", "SENDT", "MOTTATT", "LEVERT", "LEST", "FEIL", "LEVETID_UTLOPT", "INNKOMMENDE_MOTTATT", "INNKOMMENDE_LEVERT"}

func (s *Server) uiConversations(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := store.ConversationFilter{MessageID: strings.TrimSpace(q.Get("messageId")), ConversationID: strings.TrimSpace(q.Get("conversationId")),
		ReceiverIdentifier: bareIdentifier(strings.TrimSpace(q.Get("receiver"))), Status: q.Get("status"), Service: q.Get("channel"),
		Direction: q.Get("direction")}
	var problems []string
	if f.Service != "" && !slices.Contains(message.Channels, f.Service) {
		problems = append(problems, "unknown channel "+f.Service)
		f.Service = ""
	}
	if v := q.Get("from"); v != "" {
		if d, err := time.ParseInLocation(time.DateOnly, v, sbd.Oslo); err == nil {
			f.From = d
		} else {
			problems = append(problems, "from: want a date such as 2026-03-01")
		}
	}
	if v := q.Get("to"); v != "" {
		if d, err := time.ParseInLocation(time.DateOnly, v, sbd.Oslo); err == nil {
			f.To = d.AddDate(0, 0, 1).Add(-time.Millisecond)
		} else {
			problems = append(problems, "to: want a date such as 2026-03-31")
		}
	}
	// One box searches what support is usually given: a message id or a
	// conversation id (the same UUID form), tried in that order.
	if term := strings.TrimSpace(q.Get("q")); term != "" {
		byMsg := f
		byMsg.MessageID = term
		cs, _, err := s.d.Store.ListConversations(r.Context(), byMsg, store.Page{Size: 1, NoTotal: true})
		if err != nil {
			return err
		}
		if len(cs) > 0 {
			f.MessageID = term
		} else {
			f.ConversationID = term
		}
	}
	page := 0
	fmt.Sscan(q.Get("page"), &page)
	cs, total, err := s.d.Store.ListConversations(r.Context(), f, store.Page{Number: max(page, 0), Size: uiPageSize,
		Sort: []store.Order{{Property: "lastUpdate", Desc: true}}})
	if err != nil {
		return err
	}
	next := url.Values{}
	for k, v := range q {
		next[k] = v
	}
	next.Set("page", fmt.Sprint(page+1))
	return s.render(w, http.StatusOK, "conversations", map[string]any{
		"Q": q, "Conversations": cs, "Total": total, "Problems": problems, "Channels": message.Channels,
		"Statuses": uiStatuses, "More": (page+1)*uiPageSize < total, "Next": next})
}

func (s *Server) uiMessage(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("messageId")
	var c *store.Conversation
	var err error
	for _, dir := range []string{message.Outgoing, message.Incoming} {
		if c, err = s.d.Store.ConversationByMessageID(r.Context(), id, dir); err == nil {
			break
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return s.render(w, http.StatusNotFound, "notfound", map[string]any{"What": "No message with id " + id})
	}
	if err != nil {
		return err
	}
	// The person number is shown only when the viewer asks for this one
	// message; the link to ask is on the page.
	reveal := r.URL.Query().Get("reveal") == "true"
	var failure *store.Status
	for i := range c.Statuses {
		if st := c.Statuses[i].Status; st == "FEIL" || st == "LEVETID_UTLOPT" {
			failure = &c.Statuses[i]
		}
	}
	return s.render(w, http.StatusOK, "message", map[string]any{"C": c, "Reveal": reveal, "Failure": failure,
		"Fix": failureFix(failure)})
}

func (s *Server) uiIncoming(w http.ResponseWriter, r *http.Request) error {
	in, total, err := s.d.Store.ListIncoming(r.Context(), store.MessageFilter{}, store.Page{Size: 200,
		Sort: []store.Order{{Property: "lastUpdated", Desc: false}}})
	if err != nil {
		return err
	}
	return s.render(w, http.StatusOK, "incoming", map[string]any{"Incoming": in, "Total": total})
}

func (s *Server) uiWebhooks(w http.ResponseWriter, r *http.Request) error {
	subs, total, err := s.d.Store.ListSubscriptions(r.Context(), store.Page{Size: 500})
	if err != nil {
		return err
	}
	for i := range subs {
		subs[i].PushEndpoint = withoutUserinfo(subs[i].PushEndpoint)
	}
	return s.render(w, http.StatusOK, "webhooks", map[string]any{"Subscriptions": subs, "Total": total})
}

// withoutUserinfo hides a password written into a push endpoint URL.
func withoutUserinfo(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = url.User("***")
	return u.String()
}

// explainStatus is a status in plain words (local-api.md §8).
func explainStatus(st string) string {
	switch st {
	case "OPPRETTET":
		return "accepted from the case system and stored"
	case "SENDT":
		return "handed to the channel"
	case "MOTTATT":
		return "the receiving side has it"
	case "LEVERT":
		return "delivered to the receiver"
	case "LEST":
		return "read by the receiver"
	case "FEIL":
		return "failed: the message did not reach the receiver"
	case "LEVETID_UTLOPT":
		return "expired: no delivery before the message's lifetime ran out"
	case "INNKOMMENDE_MOTTATT":
		return "received here, waiting for the case system to fetch it"
	case "INNKOMMENDE_LEVERT":
		return "fetched by the case system"
	}
	return ""
}

// failureFix is what to do about a failed message, where that is known.
func failureFix(st *store.Status) string {
	if st == nil {
		return ""
	}
	d := strings.ToLower(st.Description)
	switch {
	case st.Status == "LEVETID_UTLOPT":
		return "Send the message again, with a longer lifetime if the receiver is slow; the receiver never confirmed this one."
	case strings.Contains(d, "certificate") || strings.Contains(d, "sertifikat"):
		return "A certificate was refused: run 'integrasjonspunkt check'; if the receiver's certificate is the problem, tell the receiver."
	case strings.Contains(d, "401") || strings.Contains(d, "403") || strings.Contains(d, "unauthor") || strings.Contains(d, "forbidden"):
		return "The channel refused our credentials: run 'integrasjonspunkt check' for the failing step and its fix, then send again."
	case strings.Contains(d, "not found") || strings.Contains(d, "404"):
		return "The receiver cannot be reached on this channel: check the receiver's identifier and process, then send again."
	}
	return "Send the message again once the cause is fixed; run 'integrasjonspunkt check' if the cause is unclear."
}

package api

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// apiPrefixes are where API v1 is served: its historic paths and /api/v1
// (operations.md §6). A v2 would get its own routes beside these.
var apiPrefixes = []string{"/api", "/api/v1"}

// route is one endpoint of the local API: a method and a path below the
// prefix. The list is what the OpenAPI test compares with the document.
type route struct {
	method, path string
	h            func(*Server, http.ResponseWriter, *http.Request) error
}

// apiRoutes are the 28 endpoints of local-api.md §3 plus the OpenAPI
// document. Literal segments win over variables in ServeMux, which gives the
// precedence of §2.1 (statuses/peek before statuses/{messageId}, ...).
var apiRoutes = []route{
	{"GET", "/capabilities/{receiverIdentifier}", (*Server).capabilities},                        // E1
	{"POST", "/messages/out", (*Server).createMessage},                                           // E2
	{"PUT", "/messages/out/{messageId}", (*Server).uploadFile},                                   // E3
	{"POST", "/messages/out/{messageId}", (*Server).sendMessage},                                 // E4
	{"POST", "/messages/out/multipart", (*Server).multipartSend},                                 // E5
	{"GET", "/messages/out", (*Server).listOutgoing},                                             // E6
	{"GET", "/messages/out/{messageId}", (*Server).getOutgoing},                                  // E7
	{"DELETE", "/messages/out/{messageId}", (*Server).deleteOutgoing},                            // E8
	{"GET", "/messages/in", (*Server).listIncoming},                                              // E9
	{"GET", "/messages/in/peek", (*Server).peekIncoming},                                         // E10
	{"GET", "/messages/in/pop/{messageId}", (*Server).popIncoming},                               // E11
	{"DELETE", "/messages/in/{messageId}", (*Server).deleteIncoming},                             // E12
	{"GET", "/conversations", (*Server).listConversations},                                       // E13
	{"GET", "/conversations/{id}", (*Server).getConversation},                                    // E14
	{"DELETE", "/conversations/{id}", (*Server).deleteConversation},                              // E15
	{"GET", "/conversations/messageId/{messageId}", (*Server).getConversationByMessageID},        // E16
	{"DELETE", "/conversations/messageId/{messageId}", (*Server).deleteConversationsByMessageID}, // E17
	{"GET", "/conversations/queue", (*Server).conversationQueue},                                 // E18
	{"GET", "/statuses", (*Server).listStatuses},                                                 // E19
	{"GET", "/statuses/{messageId}", (*Server).statusesOf},                                       // E20
	{"GET", "/statuses/peek", (*Server).peekStatus},                                              // E21
	{"DELETE", "/statuses/{id}", (*Server).deleteQueuedStatus},                                   // E22
	{"GET", "/subscriptions", (*Server).listSubscriptions},                                       // E23
	{"GET", "/subscriptions/{id}", (*Server).getSubscription},                                    // E24
	{"POST", "/subscriptions", (*Server).createSubscription},                                     // E25
	{"PUT", "/subscriptions/{id}", (*Server).updateSubscription},                                 // E26
	{"DELETE", "/subscriptions/{id}", (*Server).deleteSubscription},                              // E27
	{"DELETE", "/subscriptions", (*Server).deleteAllSubscriptions},                               // E28
	{"GET", "/openapi.json", (*Server).openAPI},
}

// apiRoutesRegistered adds the local API to the mux, behind Basic auth when
// it is configured (/manage stays open, local-api.md §2.2).
func (s *Server) apiRoutesRegistered() {
	if s.d.Messages == nil {
		return
	}
	for _, p := range apiPrefixes {
		for _, rt := range apiRoutes {
			h := rt.h
			if n := s.d.SendsStarted; n != nil && rt.method != "GET" && rt.method != "DELETE" && strings.HasPrefix(rt.path, "/messages/out") {
				h = func(s *Server, w http.ResponseWriter, r *http.Request) error {
					n.Add(1)
					return rt.h(s, w, r)
				}
			}
			s.mux.Handle(rt.method+" "+p+rt.path, s.majorHeaders("v1", s.requireAuth(s.handle(func(w http.ResponseWriter, r *http.Request) error { return h(s, w, r) }))))
		}
	}
}

// majorHeaders signals a deprecated API major on every response:
// Deprecation (RFC 9745), Sunset (RFC 8594) and the migration guide
// (operations.md §6 rule 4). A current major passes through untouched.
func (s *Server) majorHeaders(major string, h http.Handler) http.Handler {
	m := s.d.Majors[major]
	if m["status"] != "deprecated" {
		return h
	}
	var dep, sunset string
	if t, err := time.Parse(time.DateOnly, m["deprecated"]); err == nil {
		dep = "@" + strconv.FormatInt(t.Unix(), 10)
	}
	if t, err := time.Parse(time.DateOnly, m["sunset"]); err == nil {
		sunset = t.UTC().Format(http.TimeFormat)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if dep != "" {
			w.Header().Set("Deprecation", dep)
		}
		if sunset != "" {
			w.Header().Set("Sunset", sunset)
		}
		if l := m["link"]; l != "" {
			w.Header().Set("Link", "<"+l+`>; rel="deprecation"`)
		}
		h.ServeHTTP(w, r)
	})
}

var methods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch}

// notFound answers paths no route has: 405 with Allow when the path exists
// for another method, else 404 (local-api.md §2.7).
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) error {
	var allow []string
	for _, m := range methods {
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, pat := s.mux.Handler(r2); pat != "" && pat != "/" && !slices.Contains(allow, m) {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		return &Error{Status: http.StatusMethodNotAllowed, Exception: "org.springframework.web.HttpRequestMethodNotSupportedException",
			Message: "Request method '" + r.Method + "' is not supported"}
	}
	return &Error{Status: http.StatusNotFound, Message: "No endpoint " + r.Method + " " + r.URL.Path}
}

package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt/message"
)

type openAPIDoc struct {
	OpenAPI string                                `json:"openapi"`
	Servers []struct{ URL string }                `json:"servers"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
}

func testServer() *Server {
	return New(Deps{Logger: slog.New(slog.DiscardHandler), Messages: new(message.Service),
		Health: func(ctx context.Context) Health { return Health{Status: Up} }, Info: func() any { return nil },
		Ready: func(context.Context) error { return nil }})
}

var param = regexp.MustCompile(`\{[^}]+\}`)

// TestOpenAPI_MatchesRoutes: every route is in the document, and every path
// and method of the document is routed under both prefixes of API v1.
func TestOpenAPI_MatchesRoutes(t *testing.T) {
	var doc openAPIDoc
	require.NoError(t, json.Unmarshal(openAPIDocument, &doc))
	assert.True(t, strings.HasPrefix(doc.OpenAPI, "3."))
	var prefixes []string
	for _, s := range doc.Servers {
		prefixes = append(prefixes, s.URL)
	}
	assert.ElementsMatch(t, apiPrefixes, prefixes)

	for _, rt := range apiRoutes {
		ops, ok := doc.Paths[rt.path]
		if assert.True(t, ok, "route %s %s missing from openapi.json", rt.method, rt.path) {
			assert.Contains(t, ops, strings.ToLower(rt.method), "route %s %s missing from openapi.json", rt.method, rt.path)
		}
	}
	assert.Len(t, apiRoutes, 29, "the 28 endpoints of local-api.md §3 and the document itself")

	s := testServer()
	n := 0
	for path, ops := range doc.Paths {
		for method := range ops {
			for _, p := range apiPrefixes {
				req := httptest.NewRequest(strings.ToUpper(method), p+param.ReplaceAllString(path, "123"), nil)
				_, pattern := s.mux.Handler(req)
				assert.Equal(t, strings.ToUpper(method)+" "+p+path, pattern, "document entry %s %s", method, path)
				n++
			}
		}
	}
	assert.Equal(t, 2*len(apiRoutes), n, "the document has no operation the routes lack")
}

func TestOpenAPI_Served(t *testing.T) {
	s := testServer()
	for _, p := range []string{"/api/v1/openapi.json", "/api/openapi.json"} {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("GET", p, nil))
		require.Equal(t, http.StatusOK, w.Code)
		assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
		assert.JSONEq(t, string(openAPIDocument), w.Body.String())
	}
}

func TestDeprecatedMajor_Headers(t *testing.T) {
	s := New(Deps{Logger: slog.New(slog.DiscardHandler), Messages: new(message.Service),
		Health: func(context.Context) Health { return Health{Status: Up} }, Info: func() any { return nil },
		Ready:  func(context.Context) error { return nil },
		Majors: map[string]map[string]string{"v1": {"status": "deprecated", "deprecated": "2027-01-01", "sunset": "2028-01-31", "link": "https://example.test/v2"}}})
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/openapi.json", nil))
	assert.Equal(t, "@1798761600", w.Header().Get("Deprecation"))
	assert.Equal(t, "Mon, 31 Jan 2028 00:00:00 GMT", w.Header().Get("Sunset"))
	assert.Equal(t, `<https://example.test/v2>; rel="deprecation"`, w.Header().Get("Link"))

	w = httptest.NewRecorder()
	testServer().ServeHTTP(w, httptest.NewRequest("GET", "/api/openapi.json", nil))
	assert.Empty(t, w.Header().Get("Deprecation"), "a current major sends none")
}

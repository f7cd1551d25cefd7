package api

import (
	_ "embed"
	"net/http"
)

// openAPIDocument is the OpenAPI 3 description of API v1, written by hand
// beside the routes; TestOpenAPI_MatchesRoutes keeps the two in step.
//
//go:embed openapi.json
var openAPIDocument []byte

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(openAPIDocument)
	return err
}

package dposim_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/efm-go/efm/transport/dpo"
	"github.com/efm-go/efm/transport/dpo/dposim"
)

// FuzzResourceConfig feeds PUT /resource/{id} arbitrary bodies: every
// answer is 200 or a 400 ProblemDetails, and what GET reports afterwards
// is a cap the broker's rules allow.
func FuzzResourceConfig(f *testing.F) {
	for _, s := range []string{`{"maxFileTransferSize": 1024}`, `{"maxFileTransferSize": 0}`, `{"maxFileTransferSize": -5}`,
		`{"maxFileTransferSize": 2147483648}`, `{"maxFileTransferSize": 2147483649}`, `{}`, `{"maxFileTransferSize": null}`,
		`{"maxFileTransferSize": 1e3}`, `[]`, `{"maxFileTransferSize": "12"}`, ``} {
		f.Add(s)
	}
	fx := newFixture(f, nil)
	owner := fx.token(f, orgDaemon, dposim.ScopeServiceOwner)
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("PUT", dposim.BasePath+"/resource/"+dpo.DefaultResourceID, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+owner)
		rec := httptest.NewRecorder()
		fx.broker.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
		case http.StatusBadRequest:
			var p map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p["detail"] == "" {
				t.Fatalf("400 without ProblemDetails: %s", rec.Body)
			}
		default:
			t.Fatalf("status %d for %q", rec.Code, body)
		}
		req = httptest.NewRequest("GET", dposim.BasePath+"/resource/"+dpo.DefaultResourceID, nil)
		req.Header.Set("Authorization", "Bearer "+owner)
		rec = httptest.NewRecorder()
		fx.broker.ServeHTTP(rec, req)
		var got struct {
			MaxFileTransferSize *int64 `json:"maxFileTransferSize"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if m := got.MaxFileTransferSize; m != nil && (*m <= 0 || *m > dposim.DefaultMaxFileTransferSize) {
			t.Fatalf("the resource took a cap the broker refuses: %d", *m)
		}
	})
}

package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPrometheus_TextFormat(t *testing.T) {
	s := New(Deps{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Health: func(context.Context) Health { return Health{Status: Up} },
		Info:   func() any { return nil },
		Ready:  func(context.Context) error { return nil },
		Metrics: func(context.Context) []Sample {
			return []Sample{
				{Name: "efm_queue_pending", Help: "waiting", Labels: map[string]string{"stream": "OUTGOING"}, Value: 3},
				{Name: "efm_build_info", Labels: map[string]string{"version": `1.0 "x"`, "commit": "abc"}, Value: 1},
				{Name: "efm_queue_pending", Labels: map[string]string{"stream": "INCOMING"}, Value: 0},
				{Name: "efm_redactions_total", Type: "counter", Value: 2},
			}
		},
	})
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://127.0.0.1/manage/prometheus", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Header().Get("Content-Type"), "text/plain; version=0.0.4")
	want := `# TYPE efm_build_info gauge
efm_build_info{commit="abc",version="1.0 \"x\""} 1
# HELP efm_queue_pending waiting
# TYPE efm_queue_pending gauge
efm_queue_pending{stream="OUTGOING"} 3
efm_queue_pending{stream="INCOMING"} 0
# TYPE efm_redactions_total counter
efm_redactions_total 2
`
	assert.Equal(t, want, rec.Body.String())
	assert.Equal(t, 1, strings.Count(rec.Body.String(), "# TYPE efm_queue_pending"), "one TYPE line per metric")
}

package simctl

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newServer(t *testing.T) (*Control, *httptest.Server) {
	c := New()
	mux := http.NewServeMux()
	c.Register(mux)
	mux.HandleFunc("GET /thing/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"` + r.PathValue("id") + `","padding":"xxxxxxxxxxxxxxxx"}`))
	})
	srv := httptest.NewServer(c.Wrap(mux))
	t.Cleanup(srv.Close)
	return c, srv
}

func get(t *testing.T, url string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func post(t *testing.T, url, body string) int {
	resp, err := http.Post(url, "application/json", bytes.NewBufferString(body))
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func TestControlAPI(t *testing.T) {
	c, srv := newServer(t)
	require.Equal(t, http.StatusNoContent, post(t, srv.URL+"/_sim/faults", `{"path":"/thing/","status":503,"times":2}`))
	for i := 0; i < 2; i++ {
		st, _, err := get(t, srv.URL+"/thing/1")
		require.NoError(t, err)
		assert.Equal(t, 503, st)
	}
	st, body, err := get(t, srv.URL+"/thing/1")
	require.NoError(t, err)
	assert.Equal(t, 200, st, "the fault is used up")
	assert.JSONEq(t, `{"id":"1","padding":"xxxxxxxxxxxxxxxx"}`, string(body))

	st, body, err = get(t, srv.URL+"/_sim/requests")
	require.NoError(t, err)
	require.Equal(t, 200, st)
	var counts struct {
		Total  int            `json:"total"`
		Routes map[string]int `json:"routes"`
	}
	require.NoError(t, json.Unmarshal(body, &counts))
	assert.Equal(t, 3, counts.Total, "control calls are not counted")
	assert.Equal(t, 3, counts.Routes["GET /thing/{id}"], "keyed by route, not path")
	assert.Equal(t, 3, c.Requests("GET /thing/{id}"))

	require.Equal(t, http.StatusNoContent, post(t, srv.URL+"/_sim/faults", `{"path":"/thing/","malformed":true,"times":1}`))
	st, body, err = get(t, srv.URL+"/thing/1")
	require.NoError(t, err)
	assert.Equal(t, 200, st)
	assert.False(t, json.Valid(body), "malformed body: %s", body)

	// Two drops: net/http retries an idempotent request once when a reused connection closes.
	require.Equal(t, http.StatusNoContent, post(t, srv.URL+"/_sim/faults", `{"drop":true,"times":2}`))
	_, _, err = get(t, srv.URL+"/thing/1")
	assert.Error(t, err, "connection dropped")
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/_sim/faults", nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()

	require.Equal(t, http.StatusNoContent, post(t, srv.URL+"/_sim/delay", `{"ms":5000}`))
	_, _, err = get(t, srv.URL+"/thing/1")
	assert.ErrorIs(t, err, context.DeadlineExceeded, "slower than the client's 2 s deadline")

	require.Equal(t, http.StatusNoContent, post(t, srv.URL+"/_sim/reset", ``))
	st, _, err = get(t, srv.URL+"/thing/2")
	require.NoError(t, err)
	assert.Equal(t, 200, st)
	assert.Equal(t, 1, c.Requests(""))

	assert.Equal(t, http.StatusBadRequest, post(t, srv.URL+"/_sim/faults", `{"status":`))
	assert.Equal(t, http.StatusBadRequest, post(t, srv.URL+"/_sim/delay", `{"ms":-1}`))
}

func TestFaultOrderAndPersistence(t *testing.T) {
	c, srv := newServer(t)
	c.AddFault(Fault{Path: "/thing/a", Status: 418})
	c.FailNext("/thing/", 502, 1)
	for i := 0; i < 3; i++ {
		st, _, err := get(t, srv.URL+"/thing/a")
		require.NoError(t, err)
		assert.Equal(t, 418, st, "times 0 lasts until reset, and the first match wins")
	}
	st, _, _ := get(t, srv.URL+"/thing/b")
	assert.Equal(t, 502, st)
	st, _, _ = get(t, srv.URL+"/thing/b")
	assert.Equal(t, 200, st)
}

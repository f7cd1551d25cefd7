package simfault

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInjector(t *testing.T) {
	in := New()
	mux := http.NewServeMux()
	hits := 0
	mux.HandleFunc("POST /q/{name}/messages", func(w http.ResponseWriter, r *http.Request) { hits++; w.WriteHeader(201) })
	in.Routes(mux)
	srv := httptest.NewServer(in.Wrap(mux, mux))
	defer srv.Close()
	post := func(path string) (*http.Response, error) { return http.Post(srv.URL+path, "text/plain", nil) }

	resp, err := http.Post(srv.URL+"/_sim/faults", "application/json",
		bytes.NewReader([]byte(`{"path": "/q/*/messages", "method": "POST", "status": 503, "times": 2}`)))
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	for i, want := range []int{503, 503, 201} {
		resp, err := post("/q/a/messages")
		require.NoError(t, err)
		assert.Equal(t, want, resp.StatusCode, "request %d", i)
	}
	assert.Equal(t, 1, hits)

	in.Add(Fault{Path: "/q/*/messages", After: true, Status: 504, Times: 1})
	resp, err = post("/q/b/messages")
	require.NoError(t, err)
	assert.Equal(t, 504, resp.StatusCode)
	assert.Equal(t, 2, hits, "an 'after' fault lets the request take effect")

	in.Add(Fault{Path: "/q/*/messages", Drop: true, Times: 1})
	_, err = post("/q/c/messages")
	assert.Error(t, err, "dropped connection")

	in.Add(Fault{Path: "/q/*/messages", Body: "{not json", Times: 1})
	resp, err = post("/q/d/messages")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, "{not json", string(body))

	in.Add(Fault{Path: "/q/*/messages", Delay: Duration(50 * time.Millisecond), Times: 1})
	start := time.Now()
	resp, err = post("/q/e/messages")
	require.NoError(t, err)
	assert.Equal(t, 201, resp.StatusCode)
	assert.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)

	assert.Equal(t, 7, in.Requests()["POST /q/{name}/messages"], "counted by route pattern")
	in.Reset()
	assert.Empty(t, in.Requests())
}

func TestDuration_JSON(t *testing.T) {
	var d Duration
	require.NoError(t, d.UnmarshalJSON([]byte(`"1.5s"`)))
	assert.Equal(t, Duration(1500*time.Millisecond), d)
	require.NoError(t, d.UnmarshalJSON([]byte(`250`)))
	assert.Equal(t, Duration(250), d)
	assert.Error(t, d.UnmarshalJSON([]byte(`"soon"`)))
	b, _ := Duration(time.Second).MarshalJSON()
	assert.Equal(t, `"1s"`, string(b))
}

package dpi_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/efm-go/efm/transport/dpi/dpisim"
)

// openAPISchema compiles one component schema of the access point's own
// OpenAPI description (testdata/openapi_spec.yaml, felleslosninger/docs,
// unchanged). OpenAPI 3.0 schemas are draft-04 JSON Schema plus a few
// keywords the validator ignores.
func openAPISchema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	b, err := os.ReadFile("testdata/openapi_spec.yaml")
	require.NoError(t, err)
	var doc any
	require.NoError(t, yaml.Unmarshal(b, &doc))
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	c.AssertFormat()
	require.NoError(t, c.AddResource("https://dpi.example/openapi.json", doc))
	s, err := c.Compile("https://dpi.example/openapi.json#/components/schemas/" + name)
	require.NoError(t, err)
	return s
}

// TestSim_AnswersMatchOpenAPI: the simulator's statuses, incoming messages
// and problem answers validate against the access point's OpenAPI.
func TestSim_AnswersMatchOpenAPI(t *testing.T) {
	sim, c := startSim(t, dpisim.DefaultSchedule)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	l := digitalLetter(t, true, nil)
	require.NoError(t, c.Send(context.Background(), l.out()))
	get := func(path string) (int, any) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+mint(senderOrg, "digitalpostinnbygger:send"))
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if len(b) == 0 {
			return res.StatusCode, nil
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		require.NoError(t, err, "%s", b)
		return res.StatusCode, v
	}
	time.Sleep(150 * time.Millisecond)
	code, st := get("/messages/out/" + l.id + "/statuses")
	require.Equal(t, http.StatusOK, code)
	assert.NoError(t, openAPISchema(t, "statuses").Validate(st))
	require.Eventually(t, func() bool {
		code, msgs := get("/messages/in?kanal=no_difi_move_integrasjonspunkt&page_size=10")
		if code != http.StatusOK {
			return false
		}
		assert.NoError(t, openAPISchema(t, "messages").Validate(msgs))
		return true
	}, 5*time.Second, 20*time.Millisecond)
	code, p := get("/messages/out/00000000-0000-4000-8000-000000000000/statuses")
	require.Equal(t, http.StatusNotFound, code)
	assert.NoError(t, openAPISchema(t, "problem").Validate(p))
}

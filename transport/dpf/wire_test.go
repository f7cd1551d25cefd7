package dpf_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
)

// wire compiles schemas out of the owners' OpenAPI documents in
// testdata/wire (JSON Schema inside OpenAPI 3.0: the component schemas are
// addressed by JSON pointer, their $refs resolve within the document).
type wire struct {
	t       testing.TB
	c       *jsonschema.Compiler
	mu      sync.Mutex
	schemas map[string]*jsonschema.Schema
}

func newWire(t testing.TB) *wire {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for _, f := range []string{"svarut-rest/v3/forsendelse-send-api-v3.json", "svarut-rest/v2/forsendelse-status-api-v2.json",
		"svarut-rest/v2/forsendelse-eksternref-api-v2.json", "svarut-rest/v2/forsendelse-typer-api-v2.json",
		"svarinn/svarinn-api-v1.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "wire", f))
		require.NoError(t, err)
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		require.NoError(t, err)
		require.NoError(t, c.AddResource("https://wire.test/"+f, doc))
	}
	return &wire{t: t, c: c, schemas: map[string]*jsonschema.Schema{}}
}

// check validates a JSON body against a schema named "file#/pointer".
func (w *wire) check(ref string, body []byte) error {
	w.mu.Lock()
	sc, ok := w.schemas[ref]
	if !ok {
		var err error
		if sc, err = w.c.Compile("https://wire.test/" + ref); err != nil {
			w.mu.Unlock()
			return fmt.Errorf("compiling %s: %w", ref, err)
		}
		w.schemas[ref] = sc
	}
	w.mu.Unlock()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: body is not JSON: %w", ref, err)
	}
	if err := sc.Validate(v); err != nil {
		return fmt.Errorf("%s: %w\nbody: %s", ref, err, body)
	}
	return nil
}

const (
	v3send   = "svarut-rest/v3/forsendelse-send-api-v3.json#/components/schemas/"
	v2status = "svarut-rest/v2/forsendelse-status-api-v2.json#/components/schemas/"
	v2ref    = "svarut-rest/v2/forsendelse-eksternref-api-v2.json#/components/schemas/"
	v2typer  = "svarut-rest/v2/forsendelse-typer-api-v2.json#/components/schemas/"
	innAPI   = "svarinn/svarinn-api-v1.json#/components/schemas/"
)

// validating is an http.RoundTripper that checks every request the clients
// send and every answer the simulator gives against the owners' documents.
// A mismatch is recorded and fails the test at its end.
type validating struct {
	w    *wire
	mu   sync.Mutex
	errs []error
	seen map[string]int
}

func newValidating(t *testing.T) *validating {
	v := &validating{w: newWire(t), seen: map[string]int{}}
	t.Cleanup(func() {
		v.mu.Lock()
		defer v.mu.Unlock()
		for _, err := range v.errs {
			t.Errorf("wire contract: %v", err)
		}
	})
	return v
}

func (v *validating) fail(err error) {
	if err != nil {
		v.mu.Lock()
		v.errs = append(v.errs, err)
		v.mu.Unlock()
	}
}

func (v *validating) RoundTrip(r *http.Request) (*http.Response, error) {
	var reqBody []byte
	if r.Body != nil {
		reqBody, _ = io.ReadAll(r.Body)
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	p := r.URL.Path
	var reqSchema, respSchema string
	switch {
	case strings.HasSuffix(p, "/forsendelser/organisasjon"):
		v.fail(v.checkMultipart(r, reqBody))
		respSchema = v3send + "SendForsendelseResponse"
	case strings.HasSuffix(p, "/forsendelser/status-sok"):
		reqSchema, respSchema = v2status+"StatusSok", v2status+"ForsendelseStatuser"
	case strings.HasSuffix(p, "/forsendelser") && r.Method == http.MethodGet:
		respSchema = v2ref + "EksternRefOppslagResponse"
	case strings.HasSuffix(p, "/forsendelsestyper"):
		respSchema = v2typer + "Forsendelsestyper"
	case strings.HasSuffix(p, "/mottaker/hentNyeForsendelser"):
		respSchema = "list"
	case strings.Contains(p, "/mottakFeilet/forsendelse/"):
		reqSchema = innAPI + "ImportFeil"
	}
	if reqSchema != "" {
		v.fail(v.w.check(reqSchema, reqBody))
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || respSchema == "" {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return resp, err
	}
	v.mu.Lock()
	v.seen[respSchema]++
	v.mu.Unlock()
	if resp.StatusCode != http.StatusOK {
		if strings.HasPrefix(p, "/api/") {
			v.fail(v.w.check(v3send+"ErrorMessage", body))
		}
		return resp, nil
	}
	if respSchema == "list" {
		var list []json.RawMessage
		if err := json.Unmarshal(body, &list); err != nil {
			v.fail(fmt.Errorf("hentNyeForsendelser: not an array: %w", err))
		}
		for _, e := range list {
			v.fail(v.w.check(innAPI+"Forsendelse", e))
		}
		return resp, nil
	}
	v.fail(v.w.check(respSchema, body))
	return resp, nil
}

// checkMultipart validates the forsendelse part and that the file parts
// follow dokumenter by filename.
func (v *validating) checkMultipart(r *http.Request, body []byte) error {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return fmt.Errorf("send: content type %q is not multipart/form-data", r.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var meta []byte
	var names []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("send: multipart: %w", err)
		}
		b, _ := io.ReadAll(p)
		if p.FormName() == "forsendelse" {
			meta = b
		} else {
			names = append(names, p.FileName())
		}
	}
	if err := v.w.check(v3send+"OrganisasjonForsendelse", meta); err != nil {
		return err
	}
	var f struct {
		Dokumenter []struct {
			Filnavn string `json:"filnavn"`
		} `json:"dokumenter"`
	}
	_ = json.Unmarshal(meta, &f)
	if len(f.Dokumenter) != len(names) {
		return fmt.Errorf("send: %d documents described, %d sent", len(f.Dokumenter), len(names))
	}
	for i, d := range f.Dokumenter {
		if d.Filnavn != names[i] {
			return fmt.Errorf("send: part %d is %q, dokumenter says %q", i, names[i], d.Filnavn)
		}
	}
	return nil
}

// TestWire_SchemasCatchMistakes keeps the validator honest: bodies that break
// the owners' documents must fail.
func TestWire_SchemasCatchMistakes(t *testing.T) {
	w := newWire(t)
	tests := []struct {
		name, ref, body string
		ok              bool
	}{
		{"valid shipment", v3send + "OrganisasjonForsendelse", `{"tittel":"t","mottaker":{"navn":"n","digitalId":"910079018"}}`, true},
		{"no receiver", v3send + "OrganisasjonForsendelse", `{"tittel":"t"}`, false},
		{"bad security level", v3send + "OrganisasjonForsendelse", `{"tittel":"t","mottaker":{"navn":"n","digitalId":"910079018"},"sikkerhetsniva":"4"}`, false},
		{"id not uuid", v3send + "SendForsendelseResponse", `{"id":"abc"}`, false},
		{"unknown status", v2status + "ForsendelseStatuser", `{"statuser":[{"id":"d6b23522-ddf3-462a-8140-16e59e1f476d","status":"OK","sisteStatusEndring":"2023-01-01T11:33:55Z"}]}`, false},
		{"import failure without permanent", innAPI + "ImportFeil", `{"feilmelding":"x"}`, false},
		{"shipment without downloadUrl", innAPI + "Forsendelse", `{"id":"x","tittel":"t","mottaker":{"navn":"n"},"niva":"4","status":"s","filmetadata":[]}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := w.check(tt.ref, []byte(tt.body))
			if tt.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
}

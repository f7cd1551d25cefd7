package dpi

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The owners' JSON Schemas (felleslosninger/docs schemas/dpi and
// schemas/common/sbdh), unchanged: the client validates every business
// message before it signs it (channels.md §4.3 step 5) and every receipt
// it reads (§4.6); the simulator does the same from the other side.
//
//go:embed schema/*.json
var schemaFS embed.FS

// ErrSchema marks a business message or receipt the schema of its type
// refuses.
var ErrSchema = errors.New("dpi: business message does not match its schema")

// Types are the business message types with a schema.
var Types = []string{"digital", "utskrift", "leveringskvittering", "aapningskvittering", "mottakskvittering",
	"returpostkvittering", "varslingfeiletkvittering", "feil", "flyttet"}

var schemas = sync.OnceValues(compileSchemas)

func compileSchemas() (map[string]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	ents, err := fs.ReadDir(schemaFS, "schema")
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		b, err := schemaFS.ReadFile("schema/" + e.Name())
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("dpi: schema %s: %w", e.Name(), err)
		}
		var head struct {
			ID string `json:"$id"`
		}
		if err := json.Unmarshal(b, &head); err != nil || head.ID == "" {
			return nil, fmt.Errorf("dpi: schema %s has no $id", e.Name())
		}
		if err := c.AddResource(head.ID, doc); err != nil {
			return nil, fmt.Errorf("dpi: schema %s: %w", e.Name(), err)
		}
	}
	out := map[string]*jsonschema.Schema{}
	for _, t := range Types {
		s, err := c.Compile("https://docs.digdir.no/schemas/dpi/" + t + ".schema.json")
		if err != nil {
			return nil, fmt.Errorf("dpi: compiling schema %s: %w", t, err)
		}
		out[t] = s
	}
	return out, nil
}

// Validate checks a business message, {"standardBusinessDocument": …} as
// JSON, against the schema of its documentIdentification.type and returns
// that type.
func Validate(doc []byte) (string, error) {
	all, err := schemas()
	if err != nil {
		return "", err
	}
	var head struct {
		SBD struct {
			Header struct {
				DocID struct {
					Type string `json:"type"`
				} `json:"documentIdentification"`
			} `json:"standardBusinessDocumentHeader"`
		} `json:"standardBusinessDocument"`
	}
	if err := json.Unmarshal(doc, &head); err != nil {
		return "", fmt.Errorf("%w: %w", ErrSchema, err)
	}
	typ := head.SBD.Header.DocID.Type
	s, ok := all[typ]
	if !ok {
		return typ, fmt.Errorf("%w: unknown type %q", ErrSchema, typ)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return typ, fmt.Errorf("%w: %w", ErrSchema, err)
	}
	if err := s.Validate(inst); err != nil {
		return typ, fmt.Errorf("%w: %s: %s", ErrSchema, typ, oneLine(err))
	}
	return typ, nil
}

// oneLine keeps a validation error readable in a log line and a status
// description; it names paths and rules, never values.
func oneLine(err error) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	var parts []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			parts = append(parts, "/"+strings.Join(e.InstanceLocation, "/"))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	if len(parts) > 5 {
		parts = append(parts[:5], "…")
	}
	return "invalid at " + strings.Join(parts, ", ")
}

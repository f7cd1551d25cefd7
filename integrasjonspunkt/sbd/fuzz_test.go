package sbd

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// FuzzDecode: Decode never panics; it fails only with ErrSyntax or
// ErrMissingBusinessMessage; what it accepts it writes back in a form that
// decodes to the same document (the daemon stores and re-reads SBDs), with the
// business message under exactly the type's name; validation never panics on
// anything Decode accepted.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"standardBusinessDocumentHeader":{"headerVersion":"1.0","receiver":[{"identifier":{"authority":"iso6523-actorid-upis","value":"0192:910076787"}}],"documentIdentification":{"standard":"urn:no:difi:arkivmelding:xsd::arkivmelding","typeVersion":"2.0","type":"arkivmelding"},"businessScope":{"scope":[{"type":"ConversationId","identifier":"urn:no:difi:profile:arkivmelding:administrasjon:ver1.0"}]}},"arkivmelding":{"hoveddokument":"vedtak.pdf"}}`,
		`{"digital":{"sikkerhetsnivaa":"4","digitalPostInfo":{"aapningskvittering":"true","virkningsdato":"2024-11-06"}},"standardBusinessDocumentHeader":{"documentIdentification":{"type":"DIGITAL","standard":"urn:no:difi:digitalpost:xsd:digital::digital"}}}`,
		`{"standardBusinessDocumentHeader":{"documentIdentification":{"type":"brev"}},"brev":{}}`,
		`{"standardBusinessDocumentHeader":{"receiver":{}}}`,
		`{"standardBusinessDocumentHeader":null}`,
		`null`, `[]`, `{`, `{"standardBusinessDocumentHeader":{"documentIdentification":{"type":"print"}},"print":{"mottaker":null,"x":[1,{"y":null}]}}`,
		`{"standardBusinessDocumentHeader":{"documentIdentification":{"type":"status","multipleType":"true"}},"status":{"status":7}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrMissingBusinessMessage) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		_ = ValidateHeader(d, time.Now())
		_ = ValidateBusiness(d)
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal(out, &top); err != nil {
			t.Fatalf("output is not a JSON object: %v", err)
		}
		want := 1
		if d.Type != "" {
			want = 2
			if _, ok := top[d.Type]; !ok {
				t.Fatalf("business message not under %q: %s", d.Type, out)
			}
			if d.Business == nil {
				t.Fatal("a typed document without business message")
			}
		}
		if len(top) != want {
			t.Fatalf("output has %d members, want %d: %s", len(top), want, out)
		}
		if bytes.Contains(out, []byte(":null")) {
			t.Fatalf("null emitted: %s", out)
		}
		d2, err := Decode(out)
		if err != nil {
			t.Fatalf("re-decoding own output: %v\n%s", err, out)
		}
		out2, err := json.Marshal(d2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the document:\n%s\n%s", out, out2)
		}
	})
}

package pakkesporing

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/events"
)

// fuzzServer is a Server whose ingest is called directly with a verified
// client certificate for org 991825827 in the request's TLS state.
func fuzzServer(f *testing.F) (*Server, *x509.Certificate) {
	srv, err := New(Config{
		DBPath: filepath.Join(f.TempDir(), "fuzz.db"), ClientCAs: x509.NewCertPool(),
		QueryToken: "fuzz-query-token-0123456789",
		Now:        func() time.Time { return time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	leaf := &x509.Certificate{}
	leaf.Subject.SerialNumber = "991825827"
	return srv, leaf
}

// FuzzIngest posts arbitrary NDJSON. Invariants: the answer is one of the
// documented codes; every line is accounted for as accepted, duplicate or
// rejected; the answer never echoes a person number; and nothing stored
// fails Decode or holds a person number.
func FuzzIngest(f *testing.F) {
	srv, leaf := fuzzServer(f)
	k, _ := events.NewPseudonymKey(bytes.Repeat([]byte{1}, events.KeySize))
	b, _ := events.NewBuilder(events.BuilderConfig{
		InstallationID: "0b9c0a4e-3f29-4f4c-9c59-3a3f3c1e2d10", OrgNr: "991825827", Version: "1.0.0", Key: k,
		Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
	})
	_, good, _ := b.MessageStatus(events.StatusInput{
		MessageID: "m-1", ConversationID: "c-1", Direction: events.Outgoing, Service: events.DPO,
		Status: events.Levert, Receiver: events.OrganisationReceiver("974760673"),
	})
	f.Add(append(append([]byte{}, good...), '\n'))
	f.Add([]byte("{}\n\n{\"schema_version\":1}\n"))
	f.Add([]byte(`{"schema_version":1,"type":"message.status","client":"01019012480"}`))
	f.Add([]byte(`{"schema_version":1,"type":"message.status","01019012480":true}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(body))
		req.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{leaf}}}
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusUnprocessableEntity, http.StatusForbidden, http.StatusBadRequest,
			http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("unexpected status %d", rec.Code)
		}
		if events.ContainsPersonNumber(rec.Body.String()) {
			t.Fatalf("answer echoes a person number: %s", rec.Body.String())
		}
		if rec.Code == http.StatusOK || rec.Code == http.StatusUnprocessableEntity {
			var ir events.IngestResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &ir); err != nil {
				t.Fatalf("answer is not an IngestResponse: %v", err)
			}
			lines := 0
			for _, l := range bytes.Split(body, []byte("\n")) {
				if len(bytes.TrimSpace(l)) > 0 {
					lines++
				}
			}
			if got := ir.Accepted + ir.Duplicates + len(ir.Rejected); got != lines {
				t.Fatalf("%d lines, %d accounted for", lines, got)
			}
		}
		evs, err := srv.db.queryEvents(t.Context(), eventFilter{where: "1=1"})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if _, err := events.Decode(e.Event); err != nil {
				t.Fatalf("stored an invalid event: %v", err)
			}
			if events.ContainsPersonNumber(string(e.Event)) {
				t.Fatalf("stored a person number")
			}
		}
	})
}

// FuzzCursor: whatever decodes re-encodes to a cursor that decodes the same.
func FuzzCursor(f *testing.F) {
	f.Add(encodeCursor(StoredEvent{occurredAt: 1767323045000000000, eventID: "019a-x"}))
	f.Add("")
	f.Add("!!")
	f.Fuzz(func(t *testing.T, c string) {
		after, err := decodeCursor(c)
		if err != nil {
			return
		}
		again, err := decodeCursor(encodeCursor(StoredEvent{occurredAt: after[0].(int64), eventID: after[1].(string)}))
		if err != nil || again != after {
			t.Fatalf("cursor round trip: %v %v", again, after)
		}
	})
}

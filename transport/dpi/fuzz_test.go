package dpi_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/efm-go/efm/packaging/jws"
	"github.com/efm-go/efm/transport/dpi"
)

// FuzzReadReceipt feeds the receipt reader hostile input two ways: as a
// token (signed is false: header, x5c and signature parsing) and as the
// payload of a token the trusted supplier signed (signed is true: the SBD,
// schema and field reading behind a valid signature). It must never panic,
// and whatever it accepts has a conversation, an id and a known status.
func FuzzReadReceipt(f *testing.F) {
	h := dpi.NewHeader("leveringskvittering", supplierOrg, senderOrg, uuid.NewString(), uuid.NewString(), time.Unix(1.7e9, 0), time.Time{})
	valid, err := dpi.Marshal(h, map[string]any{"avsender": dpi.Avsender{Virksomhetsidentifikator: dpi.Org(senderOrg)},
		"mottaker": map[string]any{"virksomhetsidentifikator": dpi.Org(supplierOrg)}, "tidspunkt": "2026-11-06T10:00:00Z"})
	if err != nil {
		f.Fatal(err)
	}
	tok, err := jws.Sign(supplierKey.Key, valid, map[string]any{"x5c": jws.X5CHeader(supplierKey.Cert)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid, true)
	f.Add(tok, false)
	f.Add([]byte(`{"standardBusinessDocument":{"standardBusinessDocumentHeader":{"documentIdentification":{"type":"feil"}}}}`), true)
	f.Add([]byte("eyJhbGciOiJSUzI1NiJ9.e30.AAAA"), false)
	opts := dpi.ReadOptions{Roots: pki.Pool()}
	f.Fuzz(func(t *testing.T, in []byte, signed bool) {
		if signed {
			s, err := jws.Sign(supplierKey.Key, in, map[string]any{"x5c": jws.X5CHeader(supplierKey.Cert)})
			if err != nil {
				return
			}
			in = s
		}
		r, err := dpi.ReadReceipt(in, opts)
		if err != nil {
			return
		}
		if r.MessageID == "" || r.ConversationID == "" {
			t.Fatalf("accepted a receipt without ids: %+v", r)
		}
		switch r.Status {
		case "LEVERT", "LEST", "FEIL", "ANNET":
		default:
			t.Fatalf("status %q", r.Status)
		}
	})
}

package events

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// FuzzDecode: whatever Decode accepts is valid, re-encodes, decodes to the same
// bytes again, and (once the scan is clean) carries no person number.
func FuzzDecode(f *testing.F) {
	b := testBuilder(f)
	_, body, _ := b.MessageStatus(statusInput(f))
	f.Add(body)
	_, body, _ = b.InstallationHeartbeat([]ServiceCount{{DPO, 1}}, b.cfg.Now())
	f.Add(body)
	_, body, _ = b.Update(TypeUpdateFailed, "1.0.0", "1.0.1", ReasonChecksumMismatch)
	f.Add(body)
	f.Add([]byte(`{"schema_version":1,"type":"message.status","extra":1}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := Decode(in)
		if err != nil {
			return
		}
		if err := Validate(e); err != nil {
			t.Fatalf("decoded event is invalid: %v", err)
		}
		out, err := Encode(e)
		if err != nil {
			t.Fatalf("decoded event does not encode: %v", err)
		}
		e2, err := Decode(out)
		if err != nil {
			t.Fatalf("encoded event does not decode: %v", err)
		}
		out2, _ := Encode(e2)
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip differs:\n%s\n%s", out, out2)
		}
		if len(Scan(e)) == 0 && ContainsPersonNumber(string(out)) && !strings.Contains(string(out), "occurred_at") {
			t.Fatalf("scan missed a number")
		}
	})
}

// FuzzContainsPersonNumber compares the scan with a naive window check.
func FuzzContainsPersonNumber(f *testing.F) {
	f.Add(testFnr)
	f.Add("x" + testFnr + "y")
	f.Add("123456789012345")
	f.Add(testOrg)
	f.Fuzz(func(t *testing.T, s string) {
		want := false
		for i := 0; i+11 <= len(s); i++ {
			if looksLikePersonNumber(s[i : i+11]) {
				want = true
			}
		}
		if got := ContainsPersonNumber(s); got != want {
			t.Fatalf("ContainsPersonNumber = %v, naive = %v", got, want)
		}
	})
}

// FuzzPseudonym: a pseudonym is 22 base64url characters, never contains the
// input's digits as a run, and separators do not change it.
func FuzzPseudonym(f *testing.F) {
	f.Add(testFnr)
	f.Add("010190 12345")
	f.Add("abc")
	k := testKey(f)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := k.Pseudonym(s)
		if err != nil {
			if err != ErrNotPersonNumber {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if !validPseudonym(p) {
			t.Fatalf("bad pseudonym %q", p)
		}
		if ContainsPersonNumber(p) {
			t.Fatalf("pseudonym holds a number")
		}
		q, err := k.Pseudonym(strings.ReplaceAll(s, " ", ""))
		if err != nil || q != p {
			t.Fatalf("spaces changed the pseudonym")
		}
	})
}

// FuzzScanUUIDField: a message id is exempt from the scan exactly when it is
// a canonical UUID, and the exemption never reaches another field.
func FuzzScanUUIDField(f *testing.F) {
	f.Add("3f0c6b1e-1d2b-4b8e-9f31-001019012480", "Sak/1.0")
	f.Add("01019012480", "Sak/01019012480")
	f.Add("{3f0c6b1e-1d2b-4b8e-9f31-001019012480}", "")
	f.Fuzz(func(t *testing.T, id, client string) {
		e := &MessageStatus{MessageID: id, ConversationID: id, Client: client}
		hits := Scan(e)
		if isUUID(id) == slices.Contains(hits, "message_id") && ContainsPersonNumber(id) {
			t.Fatalf("message id %q: uuid %v, scan named %v", id, isUUID(id), hits)
		}
		if ContainsPersonNumber(client) != slices.Contains(hits, "client") {
			t.Fatalf("client %q: scan named %v", client, hits)
		}
	})
}

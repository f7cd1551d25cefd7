package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testFnr is a synthetic fødselsnummer (01.01.1990) with valid control digits,
// computed so the test does not depend on a real person's number.
var testFnr = makeFnr("010190124")

// makeFnr appends the two control digits to nine digits, or panics when the
// first control digit would be 10 (no such number exists).
func makeFnr(nine string) string {
	fnrWeights1 := [9]int{3, 7, 6, 1, 8, 9, 4, 5, 2}
	fnrWeights2 := [10]int{5, 4, 3, 2, 7, 6, 5, 4, 3, 2}
	d := make([]int, 0, 11)
	for _, c := range nine {
		d = append(d, int(c-'0'))
	}
	sum := 0
	for i, w := range fnrWeights1 {
		sum += w * d[i]
	}
	k1 := (11 - sum%11) % 11
	if k1 == 10 {
		panic("no valid number for " + nine)
	}
	d = append(d, k1)
	sum = 0
	for i, w := range fnrWeights2 {
		sum += w * d[i]
	}
	k2 := (11 - sum%11) % 11
	if k2 == 10 {
		panic("no valid number for " + nine)
	}
	return fmt.Sprintf("%s%d%d", nine, k1, k2)
}

const (
	testOrg      = "991825827" // Digdir: a valid mod-11 org number
	testReceiver = "974760673" // Brønnøysundregistrene
	testInstall  = "0b9c0a4e-3f29-4f4c-9c59-3a3f3c1e2d10"
)

func personID(t testing.TB, s string) ident.PersonID {
	p, err := ident.ParsePersonID(s)
	require.NoError(t, err)
	return p
}

func testKey(t testing.TB) *PseudonymKey {
	k, err := NewPseudonymKey(bytes.Repeat([]byte{7}, KeySize))
	require.NoError(t, err)
	return k
}

func testBuilder(t testing.TB) *Builder {
	b, err := NewBuilder(BuilderConfig{
		InstallationID: testInstall, OrgNr: testOrg, Version: "1.0.0", Key: testKey(t),
		Now: func() time.Time { return time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC) },
	})
	require.NoError(t, err)
	return b
}

func statusInput(t testing.TB) StatusInput {
	return StatusInput{
		MessageID:          "8f0d3f4e-6c2a-4b7e-9b1d-3c5a2e7f9a01",
		ConversationID:     "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
		Direction:          Outgoing,
		Service:            DPI,
		ProcessIdentifier:  "urn:no:difi:profile:digitalpost:info:ver1.0",
		DocumentIdentifier: "urn:no:difi:digitalpost:xsd:digital::digital",
		Status:             Sendt,
		SenderOrgNr:        testOrg,
		Receiver:           PersonReceiver(personID(t, testFnr)),
		Client:             "P360/7.2",
	}
}

func TestChecksumHelpers(t *testing.T) {
	assert.True(t, looksLikePersonNumber(testFnr))
	assert.False(t, looksLikePersonNumber(testFnr[:10]+string('0'+(testFnr[10]-'0'+1)%10)))
	assert.True(t, validOrgNr(testOrg))
	assert.True(t, validOrgNr(testReceiver))
	assert.False(t, validOrgNr("991825828"))
}

func TestContainsPersonNumber(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"bare", testFnr, true},
		{"inside text", "receiver " + testFnr + " said", true},
		{"inside a longer digit run", "9" + testFnr + "9", true},
		{"broken checksum", testFnr[:9] + "00", looksLikePersonNumber(testFnr[:9] + "00")},
		{"ten digits", testFnr[:10], false},
		{"split by a space", testFnr[:5] + " " + testFnr[5:], false},
		{"org number", testOrg, false},
		{"uuid", "8f0d3f4e-6c2a-4b7e-9b1d-3c5a2e7f9a01", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, ContainsPersonNumber(tt.in))
		})
	}
}

func TestBuilder_MessageStatusPerson(t *testing.T) {
	b := testBuilder(t)
	typ, body, err := b.MessageStatus(statusInput(t))
	require.NoError(t, err)
	assert.Equal(t, TypeMessageStatus, typ)
	assert.NotContains(t, string(body), testFnr)
	assert.False(t, ContainsPersonNumber(string(body)))

	e, err := Decode(body)
	require.NoError(t, err)
	ms := e.(*MessageStatus)
	want, err := testKey(t).Pseudonym(testFnr)
	require.NoError(t, err)
	assert.Equal(t, want, ms.ReceiverPseudonym)
	assert.Equal(t, ReceiverPerson, ms.ReceiverType)
	assert.Empty(t, ms.ReceiverOrgNr)
	assert.Equal(t, byte('7'), ms.EventID[14], "event id is a UUIDv7")
	assert.Equal(t, "2026-03-01T10:00:00Z", ms.OccurredAt.Format(time.RFC3339))
	assert.Zero(t, b.Redactions())
}

func TestBuilder_EventIDsAreUnique(t *testing.T) {
	b := testBuilder(t)
	seen := map[string]bool{}
	for range 1000 {
		_, body, err := b.MessageStatus(statusInput(t))
		require.NoError(t, err)
		e, err := Decode(body)
		require.NoError(t, err)
		id := e.EventHeader().EventID
		require.False(t, seen[id], "duplicate event id")
		seen[id] = true
	}
}

func TestBuilder_ScanDropsLeakedFields(t *testing.T) {
	b := testBuilder(t)

	// A client system that puts a number in its User-Agent: optional field, dropped.
	in := statusInput(t)
	in.Client = "Sak/" + testFnr
	_, body, err := b.MessageStatus(in)
	require.NoError(t, err)
	assert.NotContains(t, string(body), testFnr)
	assert.NotContains(t, string(body), `"client"`)
	assert.EqualValues(t, 1, b.Redactions())

	// A conversation id that is a number: required field, so no event at all.
	in = statusInput(t)
	in.ConversationID = testFnr
	_, _, err = b.MessageStatus(in)
	require.ErrorIs(t, err, ErrRedactedRequired)
	assert.NotContains(t, err.Error(), testFnr)
	assert.EqualValues(t, 2, b.Redactions())
}

func TestBuilder_RejectsInvalid(t *testing.T) {
	b := testBuilder(t)
	tests := []struct {
		name  string
		edit  func(*StatusInput)
		field string
	}{
		{"no receiver", func(in *StatusInput) { in.Receiver = Receiver{} }, "receiver_type"},
		{"bad receiver org", func(in *StatusInput) { in.Receiver = OrganisationReceiver("123456789") }, "receiver_orgnr"},
		{"FEIL without reason", func(in *StatusInput) { in.Status = Feil }, "reason_code"},
		{"reason on LEVERT", func(in *StatusInput) { in.Status, in.Reason = Levert, ReasonAuthFailed }, "reason_code"},
		{"free-text reason", func(in *StatusInput) { in.Status, in.Reason = Feil, "connection reset by peer" }, "reason_code"},
		{"unknown service", func(in *StatusInput) { in.Service = "SMS" }, "service_identifier"},
		{"process not a urn", func(in *StatusInput) { in.ProcessIdentifier = "digitalpost" }, "process_identifier"},
		{"legacy status", func(in *StatusInput) { in.Status = "KLAR_FOR_PRINT" }, "status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := statusInput(t)
			tt.edit(&in)
			_, _, err := b.MessageStatus(in)
			require.ErrorIs(t, err, ErrInvalid)
			var fe *FieldError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tt.field, fe.Field)
		})
	}

}

func TestNewBuilder_InstallationIDThatTripsTheScan(t *testing.T) {
	_, err := NewBuilder(BuilderConfig{
		InstallationID: "0b9c0a4e-3f29-4f4c-9c59-0" + testFnr, OrgNr: testOrg, Version: "1.0.0", Key: testKey(t),
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "NewID")
	assert.NotContains(t, err.Error(), testFnr)
	for range 1000 {
		assert.False(t, ContainsPersonNumber(NewID()))
	}
}

func TestBuilder_OtherTypes(t *testing.T) {
	b := testBuilder(t)
	check := func(typ Type, body []byte, err error) Event {
		t.Helper()
		require.NoError(t, err)
		e, err := Decode(body)
		require.NoError(t, err)
		assert.Equal(t, typ, e.EventHeader().Type)
		return e
	}
	e := check(b.InstallationStarted("linux", "amd64", []ServiceID{DPO, DPI}, []string{"v1"}))
	assert.Equal(t, []ServiceID{DPO, DPI}, e.(*InstallationStarted).Channels)
	notAfter := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	e = check(b.InstallationHeartbeat([]ServiceCount{{DPO, 3}}, notAfter))
	assert.True(t, notAfter.Equal(e.(*InstallationHeartbeat).CertificateNotAfter))
	e = check(b.Update(TypeUpdateRolledBack, "1.0.0", "1.1.0", ReasonHealthCheckFailed))
	assert.Equal(t, ReasonHealthCheckFailed, e.(*Update).ReasonCode)
	_, _, err := b.Update("update.maybe", "1.0.0", "1.1.0", "")
	require.ErrorIs(t, err, ErrInvalid)
}

func TestDecode_AllowList(t *testing.T) {
	b := testBuilder(t)
	_, body, err := b.MessageStatus(statusInput(t))
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))

	edit := func(f func(map[string]any)) []byte {
		c := map[string]any{}
		for k, v := range m {
			c[k] = v
		}
		f(c)
		out, err := json.Marshal(c)
		require.NoError(t, err)
		return out
	}
	tests := []struct {
		name    string
		in      []byte
		field   string
		version bool
	}{
		{"extra field", edit(func(c map[string]any) { c["receiver_name"] = "Kari" }), "receiver_name", false},
		{"hostname", edit(func(c map[string]any) { c["hostname"] = "srv01" }), "hostname", false},
		{"number as key", edit(func(c map[string]any) { c[testFnr] = true }), "(unnamed field)", false},
		{"future version", edit(func(c map[string]any) { c["schema_version"] = SchemaVersion + 1 }), "", true},
		{"no version", edit(func(c map[string]any) { delete(c, "schema_version") }), "schema_version", false},
		{"unknown type", edit(func(c map[string]any) { c["type"] = "log.line" }), "type", false},
		{"event id v4", edit(func(c map[string]any) { c["event_id"] = testInstall }), "event_id", false},
		{"wrong type", edit(func(c map[string]any) { c["status"] = 3 }), "status", false},
		{"pseudonym with org receiver", edit(func(c map[string]any) { c["receiver_type"] = "organisation"; c["receiver_orgnr"] = testReceiver }), "receiver_pseudonym", false},
		{"not json", []byte("{"), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.in)
			require.Error(t, err)
			if tt.version {
				require.ErrorIs(t, err, ErrSchemaVersion)
				return
			}
			var fe *FieldError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tt.field, fe.Field)
		})
	}
}

func TestPseudonym(t *testing.T) {
	k := testKey(t)
	p, err := k.Pseudonym(testFnr)
	require.NoError(t, err)
	assert.Len(t, p, 22)
	assert.True(t, validPseudonym(p))
	for _, form := range []string{testFnr[:6] + " " + testFnr[6:], testFnr[:6] + "-" + testFnr[6:], " " + testFnr + "\n"} {
		q, err := k.Pseudonym(form)
		require.NoError(t, err)
		assert.Equal(t, p, q, "normalised form maps to the same pseudonym")
	}
	other, err := NewPseudonymKey(bytes.Repeat([]byte{8}, KeySize))
	require.NoError(t, err)
	q, err := other.Pseudonym(testFnr)
	require.NoError(t, err)
	assert.NotEqual(t, p, q, "another agency's key gives another pseudonym")

	for _, bad := range []string{"", "1234567890", testFnr + "1", "0101901234x", "+4799999999"} {
		_, err := k.Pseudonym(bad)
		assert.ErrorIs(t, err, ErrNotPersonNumber)
	}
	assert.NotContains(t, fmt.Sprint(k), "\x07")
}

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets", "pseudonym.key")
	k1, err := LoadOrCreateKey(path)
	require.NoError(t, err)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.EqualValues(t, KeySize, fi.Size())
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	di, err := os.Stat(filepath.Dir(path))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), di.Mode().Perm())

	k2, err := LoadOrCreateKey(path)
	require.NoError(t, err)
	p1, _ := k1.Pseudonym(testFnr)
	p2, _ := k2.Pseudonym(testFnr)
	assert.Equal(t, p1, p2, "the key is made once and reused")

	require.NoError(t, os.WriteFile(path, []byte("short"), 0o600))
	_, err = LoadOrCreateKey(path)
	assert.ErrorIs(t, err, ErrBadKey)
}

func TestPseudonymCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets", "pseudonym.key")
	var out bytes.Buffer
	require.NoError(t, PseudonymCommand(strings.NewReader(testFnr+"\n"), &out, path))
	k, err := LoadOrCreateKey(path)
	require.NoError(t, err)
	want, _ := k.Pseudonym(testFnr)
	assert.Equal(t, want+"\n", out.String())

	out.Reset()
	err = PseudonymCommand(strings.NewReader("0101901234\n"), &out, path)
	require.ErrorIs(t, err, ErrNotPersonNumber)
	assert.NotContains(t, err.Error(), "0101901234")
	assert.Empty(t, out.String())

	// A typo in the last digit: the check digits catch it, and the message
	// never repeats the number.
	bad := testFnr[:10] + string('0'+(testFnr[10]-'0'+1)%10)
	err = PseudonymCommand(strings.NewReader(bad+"\n"), &out, path)
	require.ErrorIs(t, err, ident.ErrPersonCheckDigits)
	assert.NotContains(t, err.Error(), bad)
	assert.Empty(t, out.String())
}

// A message or conversation id the client chose is a UUID whose last group
// may hold 11 digits passing the checksum (19 of 45,718 random UUIDs): the
// event must still go, with its ids. A number anywhere else is still caught
// (issue 14, point 9).
func TestBuilder_UUIDsThatLookLikeNumbers(t *testing.T) {
	b := testBuilder(t)
	tripping := "3f0c6b1e-1d2b-4b8e-9f31-0" + testFnr
	require.True(t, ContainsPersonNumber(tripping))
	in := statusInput(t)
	in.MessageID, in.ConversationID = tripping, strings.ToUpper(tripping)
	_, body, err := b.MessageStatus(in)
	require.NoError(t, err)
	e, err := Decode(body)
	require.NoError(t, err)
	assert.Equal(t, tripping, e.(*MessageStatus).MessageID)
	assert.Empty(t, Scan(e), "pakkesporing accepts it too")
	assert.Zero(t, b.Redactions())

	// Not a UUID: the number itself, or one glued to a UUID.
	for _, id := range []string{testFnr, tripping + "0", "{" + tripping + "}", "urn:uuid:" + tripping} {
		in = statusInput(t)
		in.MessageID = id
		_, _, err = b.MessageStatus(in)
		require.ErrorIs(t, err, ErrRedactedRequired, id)
	}
	// A UUID message id does not shield the other fields.
	in = statusInput(t)
	in.MessageID, in.Client = tripping, "Sak/"+testFnr
	_, body, err = b.MessageStatus(in)
	require.NoError(t, err)
	assert.NotContains(t, string(body), `"client"`)
}

// Across many random UUIDs, none is lost to the scan.
func TestBuilder_RandomUUIDsKept(t *testing.T) {
	b := testBuilder(t)
	for range 20_000 {
		in := statusInput(t)
		in.MessageID = uuid.NewString()
		_, _, err := b.MessageStatus(in)
		require.NoError(t, err, in.MessageID)
	}
}

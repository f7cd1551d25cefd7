package pakkesporing_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/pakkesporing"
	"github.com/efm-go/efm/pakkesporing/pakkesporingtest"
)

const (
	senderOrg   = "991825827"
	receiverOrg = "974760673"
	otherOrg    = "889640782"
)

// clock is an injectable, settable time shared by builders and the server.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// testNow is the central clock of tests whose events carry fixed dates, so
// they stay inside the retention window whatever the date of the run.
func testNow() time.Time { return time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC) }

func newBuilder(t testing.TB, org string, now func() time.Time) *events.Builder {
	t.Helper()
	key := make([]byte, events.KeySize)
	rand.Read(key)
	k, err := events.NewPseudonymKey(key)
	require.NoError(t, err)
	b, err := events.NewBuilder(events.BuilderConfig{
		InstallationID: events.NewID(), OrgNr: org, Version: "1.2.3", Key: k, Now: now,
	})
	require.NoError(t, err)
	return b
}

// message makes the events of one message's road: the sender's statuses and,
// for an organisation receiver, the receiver's INNKOMMENDE_* statuses.
type message struct {
	id, conv string
}

func newMessage() message { return message{id: events.NewID(), conv: events.NewID()} }

func (m message) sent(t testing.TB, b *events.Builder, st events.Status, at time.Time) []byte {
	t.Helper()
	in := events.StatusInput{
		OccurredAt: at, MessageID: m.id, ConversationID: m.conv, Direction: events.Outgoing,
		Service: events.DPO, ProcessIdentifier: "urn:no:difi:profile:arkivmelding:administrasjon:ver1.0",
		DocumentIdentifier: "urn:no:difi:arkivmelding:xsd::arkivmelding", Status: st,
		SenderOrgNr: senderOrg, Receiver: events.OrganisationReceiver(receiverOrg), Client: "P360/7.2",
	}
	if st == events.Feil {
		in.Reason = events.ReasonChannelRejected
	}
	_, body, err := b.MessageStatus(in)
	require.NoError(t, err)
	return body
}

func (m message) received(t testing.TB, b *events.Builder, st events.Status, at time.Time) []byte {
	t.Helper()
	_, body, err := b.MessageStatus(events.StatusInput{
		OccurredAt: at, MessageID: m.id, ConversationID: m.conv, Direction: events.Incoming,
		Service: events.DPO, Status: st, SenderOrgNr: senderOrg, Receiver: events.OrganisationReceiver(receiverOrg),
	})
	require.NoError(t, err)
	return body
}

// escapeDigits writes number as JSON \u escapes, which a scan of the raw
// bytes alone would miss.
func escapeDigits(line []byte, number string) []byte {
	var esc strings.Builder
	for _, c := range number {
		fmt.Fprintf(&esc, `\u%04x`, c)
	}
	return bytes.ReplaceAll(line, []byte(number), []byte(esc.String()))
}

// newV7 is a fresh event id that does not trip the scan by chance.
func newV7() string {
	for {
		if id := uuid.Must(uuid.NewV7()).String(); !events.ContainsPersonNumber(id) {
			return id
		}
	}
}

func gz(t testing.TB, lines ...[]byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for _, l := range lines {
		zw.Write(l)
		zw.Write([]byte("\n"))
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func post(t testing.TB, c *http.Client, base string, lines ...[]byte) (int, events.IngestResponse) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/events", bytes.NewReader(gz(t, lines...)))
	require.NoError(t, err)
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Content-Type", "application/x-ndjson")
	res, err := c.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var ir events.IngestResponse
	body, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(body, &ir)
	return res.StatusCode, ir
}

func query(t testing.TB, in *pakkesporingtest.Instance, path string, out any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, in.URL+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+pakkesporingtest.Token)
	res, err := in.OpsClient().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	if out != nil && res.StatusCode == http.StatusOK {
		require.NoError(t, json.NewDecoder(res.Body).Decode(out))
	}
	return res.StatusCode
}

func TestIngest_MessageRoadAndDuplicates(t *testing.T) {
	ps := pakkesporingtest.New(t, pakkesporingtest.Options{Config: pakkesporing.Config{Now: testNow}})
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	sb := newBuilder(t, senderOrg, testNow)
	rb := newBuilder(t, receiverOrg, testNow)
	m := newMessage()

	batch := [][]byte{
		m.sent(t, sb, events.Opprettet, now),
		m.sent(t, sb, events.Sendt, now.Add(time.Second)),
		m.sent(t, sb, events.Levert, now.Add(5*time.Second)),
	}
	code, ir := post(t, ps.Client(t, senderOrg), ps.URL, batch...)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, events.IngestResponse{Accepted: 3}, ir)

	code, ir = post(t, ps.Client(t, receiverOrg), ps.URL,
		m.received(t, rb, events.InnkommendeMottatt, now.Add(3*time.Second)),
		m.received(t, rb, events.InnkommendeLevert, now.Add(4*time.Second)))
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, 2, ir.Accepted)

	// The shipper resends after a lost answer: nothing is stored twice.
	code, ir = post(t, ps.Client(t, senderOrg), ps.URL, batch...)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, events.IngestResponse{Accepted: 0, Duplicates: 3}, ir)

	var v pakkesporing.MessageView
	require.Equal(t, http.StatusOK, query(t, ps, "/v1/messages/"+m.id, &v))
	require.Len(t, v.Events, 5)
	var statuses []string
	for _, e := range v.Events {
		var ms events.MessageStatus
		require.NoError(t, json.Unmarshal(e.Event, &ms))
		statuses = append(statuses, string(ms.Status))
	}
	assert.Equal(t, []string{"OPPRETTET", "SENDT", "INNKOMMENDE_MOTTATT", "INNKOMMENDE_LEVERT", "LEVERT"}, statuses)
	require.Len(t, v.Conversations, 2)
	for _, c := range v.Conversations {
		require.NotNil(t, c.HandledAt, "both sides reached a final status")
		switch c.OrgNr {
		case senderOrg:
			assert.Equal(t, "LEVERT", c.LatestStatus)
			assert.True(t, now.Add(5*time.Second).Equal(*c.HandledAt))
			assert.Len(t, c.StatusTimes, 3)
		case receiverOrg:
			assert.Equal(t, "INNKOMMENDE_LEVERT", c.LatestStatus)
		default:
			t.Fatalf("unexpected org %s", c.OrgNr)
		}
	}

	var cv pakkesporing.ConversationView
	require.Equal(t, http.StatusOK, query(t, ps, "/v1/conversations/"+m.conv, &cv))
	assert.Len(t, cv.Events, 5)
	assert.Equal(t, http.StatusNotFound, query(t, ps, "/v1/messages/"+events.NewID(), nil))
}

func TestIngest_HandledAtMovesWithLaterLest(t *testing.T) {
	ps := pakkesporingtest.New(t, pakkesporingtest.Options{Config: pakkesporing.Config{Now: testNow}})
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	sb := newBuilder(t, senderOrg, testNow)
	m := newMessage()
	code, _ := post(t, ps.Client(t, senderOrg), ps.URL,
		m.sent(t, sb, events.Lest, now.Add(time.Hour)), // out of order on purpose
		m.sent(t, sb, events.Levert, now))
	require.Equal(t, http.StatusOK, code)
	var v pakkesporing.MessageView
	require.Equal(t, http.StatusOK, query(t, ps, "/v1/messages/"+m.id, &v))
	require.Len(t, v.Conversations, 1)
	require.NotNil(t, v.Conversations[0].HandledAt)
	// LEST came first in the batch, before any final status, so it could not
	// move handled_at then; a later LEST after LEVERT does.
	assert.True(t, now.Equal(*v.Conversations[0].HandledAt))
	code, _ = post(t, ps.Client(t, senderOrg), ps.URL, m.sent(t, sb, events.Lest, now.Add(2*time.Hour)))
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, http.StatusOK, query(t, ps, "/v1/messages/"+m.id, &v))
	assert.True(t, now.Add(2*time.Hour).Equal(*v.Conversations[0].HandledAt))
	assert.Equal(t, "LEST", v.Conversations[0].LatestStatus)
}

func TestIngest_RefusesAnotherOrganisation(t *testing.T) {
	ps := pakkesporingtest.New(t, pakkesporingtest.Options{
		Config: pakkesporing.Config{Now: testNow, OnBehalfOf: map[string][]string{receiverOrg: {otherOrg}}},
	})
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	m := newMessage()
	own := m.sent(t, newBuilder(t, senderOrg, testNow), events.Sendt, now)
	forged := m.sent(t, newBuilder(t, otherOrg, testNow), events.Sendt, now)

	// A certificate of senderOrg cannot send otherOrg's events, not even mixed in.
	code, ir := post(t, ps.Client(t, senderOrg), ps.URL, own, forged)
	require.Equal(t, http.StatusForbidden, code)
	require.Len(t, ir.Rejected, 1)
	assert.Equal(t, 1, ir.Rejected[0].Line)
	assert.Equal(t, "orgnr", ir.Rejected[0].Field)
	assert.Equal(t, http.StatusNotFound, query(t, ps, "/v1/messages/"+m.id, nil), "nothing of the batch is stored")

	// A registered på-vegne-av relation lets receiverOrg's certificate speak for otherOrg.
	code, _ = post(t, ps.Client(t, receiverOrg), ps.URL, forged)
	assert.Equal(t, http.StatusOK, code)

	// No client certificate at all.
	code, _ = post(t, ps.OpsClient(), ps.URL, own)
	assert.Equal(t, http.StatusUnauthorized, code)

	// A certificate from another CA does not even finish the handshake.
	foreign := pakkesporingtest.NewCA(t)
	c := ps.Client(t, senderOrg)
	c.Transport.(*http.Transport).TLSClientConfig.Certificates = []tls.Certificate{foreign.BusinessCert(t, senderOrg)}
	req, _ := http.NewRequest(http.MethodPost, ps.URL+"/v1/events", bytes.NewReader(gz(t, own)))
	req.Header.Set("Content-Encoding", "gzip")
	res, err := c.Do(req)
	if err == nil {
		res.Body.Close()
		t.Fatalf("a certificate from an unknown CA got status %d", res.StatusCode)
	}
}

func TestIngest_RefusesRevokedCertificate(t *testing.T) {
	ca := pakkesporingtest.NewCA(t)
	revoked := ca.BusinessCert(t, senderOrg)
	ps := pakkesporingtest.New(t, pakkesporingtest.Options{CA: ca, Config: pakkesporing.Config{
		Now: testNow, CRLs: []*x509.RevocationList{ca.RevocationList(t, revoked)},
	}})
	ev := newMessage().sent(t, newBuilder(t, senderOrg, testNow), events.Sendt, testNow())

	c := ps.Client(t, senderOrg)
	c.Transport.(*http.Transport).TLSClientConfig.Certificates = []tls.Certificate{revoked}
	code, _ := post(t, c, ps.URL, ev)
	assert.Equal(t, http.StatusForbidden, code)
	code, _ = post(t, ps.Client(t, senderOrg), ps.URL, ev) // a fresh certificate of the same org
	assert.Equal(t, http.StatusOK, code)
}

func TestIngest_RejectsSingleEventsNamingTheField(t *testing.T) {
	ps := pakkesporingtest.New(t, pakkesporingtest.Options{Config: pakkesporing.Config{Now: testNow}})
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	b := newBuilder(t, senderOrg, testNow)
	m := newMessage()
	good := m.sent(t, b, events.Sendt, now)

	withField := func(body []byte, key string, value any) []byte {
		var obj map[string]any
		require.NoError(t, json.Unmarshal(body, &obj))
		obj[key] = value
		obj["event_id"] = newV7()
		out, err := json.Marshal(obj)
		require.NoError(t, err)
		return out
	}
	fnr := "01019012480" // checksum-valid synthetic number
	require.True(t, ident.LooksLikePersonNumber(fnr))
	lines := [][]byte{
		good,
		withField(good, "receiver_name", "Kari Nordmann"),
		withField(good, "client", "Sak/"+fnr),
		withField(good, "schema_version", 99),
		[]byte(`not json`),
		escapeDigits(withField(good, "client", "Sak/"+fnr), fnr),
	}
	code, ir := post(t, ps.Client(t, senderOrg), ps.URL, lines...)
	require.Equal(t, http.StatusUnprocessableEntity, code)
	assert.Equal(t, 1, ir.Accepted)
	require.Len(t, ir.Rejected, 5)
	fields := map[int]string{}
	for _, r := range ir.Rejected {
		fields[r.Line] = r.Field
		assert.NotContains(t, r.Error, fnr)
	}
	assert.Equal(t, map[int]string{1: "receiver_name", 2: "client", 3: "schema_version", 4: "", 5: "client"}, fields)

	var v pakkesporing.MessageView
	require.Equal(t, http.StatusOK, query(t, ps, "/v1/messages/"+m.id, &v))
	assert.Len(t, v.Events, 1, "only the valid event is stored")
	for _, e := range v.Events {
		assert.NotContains(t, string(e.Event), fnr)
	}
}

func TestQueryAPI(t *testing.T) {
	ps := pakkesporingtest.New(t, pakkesporingtest.Options{Config: pakkesporing.Config{Now: testNow}})
	day := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	b := newBuilder(t, senderOrg, testNow)
	var lines [][]byte
	var ids []string
	for i := range 25 {
		m := newMessage()
		ids = append(ids, m.id)
		at := day.Add(time.Duration(i) * 6 * time.Hour) // spans into the next month
		lines = append(lines, m.sent(t, b, events.Sendt, at))
		st := events.Levert
		if i%5 == 0 {
			st = events.Feil
		}
		lines = append(lines, m.sent(t, b, st, at.Add(time.Minute)))
	}
	code, _ := post(t, ps.Client(t, senderOrg), ps.URL, lines...)
	require.Equal(t, http.StatusOK, code)

	t.Run("auth", func(t *testing.T) {
		res, err := ps.OpsClient().Get(ps.URL + "/v1/messages/" + ids[0])
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
		res, err = ps.OpsClient().Get(ps.URL + "/v1/schema")
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusOK, res.StatusCode, "the schema listing is public")
	})

	t.Run("paged events", func(t *testing.T) {
		var all []pakkesporing.StoredEvent
		cursor := ""
		for pages := 0; ; pages++ {
			require.Less(t, pages, 10)
			var p pakkesporing.EventPage
			path := "/v1/events?orgnr=" + senderOrg + "&limit=7"
			if cursor != "" {
				path += "&cursor=" + url.QueryEscape(cursor)
			}
			require.Equal(t, http.StatusOK, query(t, ps, path, &p))
			all = append(all, p.Events...)
			if p.NextCursor == "" {
				break
			}
			cursor = p.NextCursor
		}
		assert.Len(t, all, 50)
		seen := map[string]bool{}
		for _, e := range all {
			var h events.Header
			require.NoError(t, json.Unmarshal(e.Event, &h))
			assert.False(t, seen[h.EventID], "no event twice across pages")
			seen[h.EventID] = true
		}
		var p pakkesporing.EventPage
		require.Equal(t, http.StatusOK, query(t, ps, "/v1/events?status=FEIL", &p))
		assert.Len(t, p.Events, 5)
		require.Equal(t, http.StatusOK, query(t, ps, "/v1/events?from=2026-03-02&to=2026-03-03", &p))
		assert.Len(t, p.Events, 8)
	})

	t.Run("stats", func(t *testing.T) {
		var s struct {
			Buckets []pakkesporing.StatBucket `json:"buckets"`
		}
		require.Equal(t, http.StatusOK, query(t, ps, "/v1/stats?group_by=orgnr,service,status&interval=day&from=2026-03-01&to=2026-03-02", &s))
		assert.Equal(t, []pakkesporing.StatBucket{
			{Day: "2026-03-01", OrgNr: senderOrg, Service: "DPO", Status: "FEIL", Count: 1},
			{Day: "2026-03-01", OrgNr: senderOrg, Service: "DPO", Status: "LEVERT", Count: 2},
			{Day: "2026-03-01", OrgNr: senderOrg, Service: "DPO", Status: "SENDT", Count: 3},
		}, s.Buckets)
		assert.Equal(t, http.StatusBadRequest, query(t, ps, "/v1/stats?group_by=receiver", nil))
	})

	t.Run("installations", func(t *testing.T) {
		var r struct {
			Installations []pakkesporing.Installation `json:"installations"`
		}
		require.Equal(t, http.StatusOK, query(t, ps, "/v1/installations?version=1.2.3", &r))
		require.Len(t, r.Installations, 1)
		assert.Equal(t, senderOrg, r.Installations[0].OrgNr)
		require.Equal(t, http.StatusOK, query(t, ps, "/v1/installations?last_seen_before=2026-01-01", &r))
		assert.Empty(t, r.Installations)
	})
}

func TestQueryAPI_Pseudonym(t *testing.T) {
	ps := pakkesporingtest.New(t, pakkesporingtest.Options{Config: pakkesporing.Config{Now: testNow}})
	key := bytes.Repeat([]byte{3}, events.KeySize)
	k, err := events.NewPseudonymKey(key)
	require.NoError(t, err)
	b, err := events.NewBuilder(events.BuilderConfig{InstallationID: events.NewID(), OrgNr: senderOrg, Version: "1.2.3", Key: k, Now: testNow})
	require.NoError(t, err)
	fnr := "01019012480"
	person, err := ident.ParsePersonID(fnr)
	require.NoError(t, err)
	m := newMessage()
	_, body, err := b.MessageStatus(events.StatusInput{
		MessageID: m.id, ConversationID: m.conv, Direction: events.Outgoing, Service: events.DPI,
		Status: events.Sendt, SenderOrgNr: senderOrg, Receiver: events.PersonReceiver(person),
	})
	require.NoError(t, err)
	code, _ := post(t, ps.Client(t, senderOrg), ps.URL, body)
	require.Equal(t, http.StatusOK, code)

	// Support gets the pseudonym from the agency (integrasjonspunkt pseudonym).
	var out bytes.Buffer
	keyPath := t.TempDir() + "/pseudonym.key"
	require.NoError(t, writeFile(keyPath, key))
	require.NoError(t, events.PseudonymCommand(strings.NewReader(fnr+"\n"), &out, keyPath))
	p := strings.TrimSpace(out.String())

	var r struct {
		Events []pakkesporing.StoredEvent `json:"events"`
	}
	require.Equal(t, http.StatusOK, query(t, ps, "/v1/pseudonyms/"+p+"/events?orgnr="+senderOrg, &r))
	assert.Len(t, r.Events, 1)
	require.Equal(t, http.StatusOK, query(t, ps, "/v1/pseudonyms/"+p+"/events?orgnr="+receiverOrg, &r))
	assert.Empty(t, r.Events, "a pseudonym means nothing outside its agency")
	assert.Equal(t, http.StatusBadRequest, query(t, ps, "/v1/pseudonyms/"+p+"/events", nil))
}

func TestRetention(t *testing.T) {
	clk := &clock{t: time.Date(2028, 6, 15, 3, 0, 0, 0, time.UTC)}
	ps := pakkesporingtest.New(t, pakkesporingtest.Options{Config: pakkesporing.Config{Now: clk.Now}})
	now := clk.Now()
	sb := newBuilder(t, senderOrg, testNow)
	rb := newBuilder(t, receiverOrg, testNow)

	old, kept, open, openRecent, ancient := newMessage(), newMessage(), newMessage(), newMessage(), newMessage()
	handledOld := now.AddDate(0, -24, -1) // 24 months and one day ago
	handledKept := now.AddDate(0, -23, 0) // 23 months ago
	// Each batch arrives when it happened: central refuses events already
	// outside the retention window, so the clock is wound back to ship them.
	shipAt(t, ps, clk, senderOrg, handledOld,
		old.sent(t, sb, events.Sendt, handledOld.Add(-time.Hour)),
		old.sent(t, sb, events.Levert, handledOld))
	shipAt(t, ps, clk, senderOrg, handledKept,
		kept.sent(t, sb, events.Sendt, handledKept.Add(-30*24*time.Hour)),
		kept.sent(t, sb, events.Levert, handledKept))
	shipAt(t, ps, clk, senderOrg, now.AddDate(0, -24, -2),
		open.sent(t, sb, events.Sendt, now.AddDate(0, -24, -2))) // never final, silent 24 months
	shipAt(t, ps, clk, senderOrg, now.AddDate(0, -23, 0),
		openRecent.sent(t, sb, events.Sendt, now.AddDate(0, -23, 0))) // never final, not yet
	shipAt(t, ps, clk, senderOrg, now.AddDate(0, -30, 0),
		ancient.sent(t, sb, events.Levert, now.AddDate(0, -30, 0))) // alone in its month
	// The receiver's side of the old message was handled later: it stays.
	shipAt(t, ps, clk, receiverOrg, now.AddDate(0, -23, 0),
		old.received(t, rb, events.InnkommendeLevert, now.AddDate(0, -23, 0)))
	clk.Set(now)

	// Central itself refuses an event already past retention.
	code, ir := post(t, ps.Client(t, senderOrg), ps.URL, newMessage().sent(t, sb, events.Levert, now.AddDate(0, -25, 0)))
	require.Equal(t, http.StatusUnprocessableEntity, code)
	require.Len(t, ir.Rejected, 1)
	assert.Equal(t, "occurred_at", ir.Rejected[0].Field)

	res, err := ps.RunRetention(context.Background())
	require.NoError(t, err)
	assert.EqualValues(t, 4, res.EventsDeleted)
	assert.EqualValues(t, 3, res.ConversationsDeleted)
	assert.True(t, res.Cutoff.Equal(now.AddDate(0, -24, 0)))
	assert.EqualValues(t, 1, res.PartitionsDropped, "the emptied month is dropped")
	assert.Equal(t, http.StatusNotFound, query(t, ps, "/v1/messages/"+ancient.id, nil))

	var v pakkesporing.MessageView
	require.Equal(t, http.StatusOK, query(t, ps, "/v1/messages/"+old.id, &v))
	require.Len(t, v.Events, 1, "only the receiver's side of the old message remains")
	require.Len(t, v.Conversations, 1)
	assert.Equal(t, receiverOrg, v.Conversations[0].OrgNr)

	require.Equal(t, http.StatusOK, query(t, ps, "/v1/messages/"+kept.id, &v))
	assert.Len(t, v.Events, 2, "handled 23 months ago: kept")
	assert.Equal(t, http.StatusNotFound, query(t, ps, "/v1/messages/"+open.id, nil))
	assert.Equal(t, http.StatusOK, query(t, ps, "/v1/messages/"+openRecent.id, nil))

	// The deleted event ids are forgotten too; a second run deletes nothing.
	res, err = ps.RunRetention(context.Background())
	require.NoError(t, err)
	assert.Zero(t, res.EventsDeleted)

	var runs struct {
		Runs []pakkesporing.RetentionRun `json:"runs"`
	}
	require.Equal(t, http.StatusOK, query(t, ps, "/v1/retention", &runs))
	require.NotEmpty(t, runs.Runs)
	assert.EqualValues(t, 0, runs.Runs[0].EventsDeleted, "newest first")
	assert.EqualValues(t, 4, runs.Runs[1].EventsDeleted, "the job's counts are kept")

	// A month and two days on, 24 months have passed since the kept one was handled.
	clk.Set(now.AddDate(0, 1, 2))
	res, err = ps.RunRetention(context.Background())
	require.NoError(t, err)
	assert.EqualValues(t, 4, res.EventsDeleted, "the kept message (2), the open-recent one and the old one's receiver side now expire")
	assert.Equal(t, http.StatusNotFound, query(t, ps, "/v1/messages/"+kept.id, nil))
}

// shipAt posts lines with the central clock set to at plus a minute, as if
// the daemon had shipped them then.
func shipAt(t *testing.T, ps *pakkesporingtest.Instance, clk *clock, org string, at time.Time, lines ...[]byte) {
	t.Helper()
	clk.Set(at.Add(time.Minute))
	code, ir := post(t, ps.Client(t, org), ps.URL, lines...)
	require.Equal(t, http.StatusOK, code, "%+v", ir)
}

func TestRetention_InstallationEvents(t *testing.T) {
	clk := &clock{t: time.Date(2028, 6, 15, 3, 0, 0, 0, time.UTC)}
	ps := pakkesporingtest.New(t, pakkesporingtest.Options{Config: pakkesporing.Config{Now: clk.Now}})
	evClock := &clock{t: clk.Now().AddDate(0, -25, 0)}
	b := newBuilder(t, senderOrg, evClock.Now)
	_, hb1, err := b.InstallationHeartbeat(nil, clk.Now())
	require.NoError(t, err)
	evClock.Set(clk.Now().AddDate(0, -1, 0))
	_, hb2, err := b.InstallationHeartbeat(nil, clk.Now())
	require.NoError(t, err)
	now := clk.Now()
	shipAt(t, ps, clk, senderOrg, now.AddDate(0, -25, 0), hb1)
	shipAt(t, ps, clk, senderOrg, now.AddDate(0, -1, 0), hb2)
	clk.Set(now)
	res, err := ps.RunRetention(context.Background())
	require.NoError(t, err)
	assert.EqualValues(t, 1, res.EventsDeleted)
	assert.Zero(t, res.InstallationsDeleted, "the installation was seen a month ago")
	var p pakkesporing.EventPage
	require.Equal(t, http.StatusOK, query(t, ps, "/v1/events?type=installation.heartbeat", &p))
	assert.Len(t, p.Events, 1)
}

func TestCertificateOrgNumber(t *testing.T) {
	ca := pakkesporingtest.NewCA(t)
	org, err := pakkesporing.CertificateOrgNumber(ca.BusinessCert(t, senderOrg).Leaf)
	require.NoError(t, err)
	assert.Equal(t, senderOrg, org)
	org, err = pakkesporing.CertificateOrgNumber(ca.SEIDv1Cert(t, receiverOrg).Leaf)
	require.NoError(t, err)
	assert.Equal(t, receiverOrg, org)
	_, err = pakkesporing.CertificateOrgNumber(ca.ServerCert(t).Leaf)
	assert.ErrorIs(t, err, pakkesporing.ErrNoOrgNumber)
}

func TestNew_Config(t *testing.T) {
	_, err := pakkesporing.New(pakkesporing.Config{QueryToken: "short", Contacts: map[string]string{"123": "x@y"}})
	require.ErrorIs(t, err, pakkesporing.ErrConfig)
	for _, want := range []string{"database path", "client CA", "query token", "contact key"} {
		assert.Contains(t, err.Error(), want)
	}
	assert.NotContains(t, err.Error(), "short", "the token is masked")
}

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o600) }

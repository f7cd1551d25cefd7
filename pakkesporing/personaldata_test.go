package pakkesporing_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/pakkesporing"
	"github.com/efm-go/efm/pakkesporing/pakkesporingtest"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNoPersonNumberCentrally is pakkesporing's half of must-show 1: person
// receivers arrive only as pseudonyms, attempted leaks are refused, and
// neither the stored events nor any log line holds an 11-digit run passing
// the checksum.
func TestNoPersonNumberCentrally(t *testing.T) {
	var logs syncBuffer
	ps := pakkesporingtest.New(t, pakkesporingtest.Options{Config: pakkesporing.Config{
		Now:    testNow,
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}})
	b := newBuilder(t, senderOrg, testNow)
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var lines [][]byte
	for _, fnr := range []string{"01019012480", "15037512335", "24129934553"} {
		p, err := ident.ParsePersonID(fnr)
		require.NoError(t, err)
		m := newMessage()
		for _, st := range []events.Status{events.Opprettet, events.Sendt, events.Levert} {
			_, body, err := b.MessageStatus(events.StatusInput{
				OccurredAt: now, MessageID: m.id, ConversationID: m.conv, Direction: events.Outgoing,
				Service: events.DPI, Status: st, SenderOrgNr: senderOrg, Receiver: events.PersonReceiver(p),
				Client: "Sak/" + fnr, // a careless client system: the builder's scan drops it
			})
			require.NoError(t, err)
			lines = append(lines, body)
		}
		// A hand-made event smuggling the number in: refused centrally.
		var obj map[string]any
		require.NoError(t, json.Unmarshal(lines[len(lines)-1], &obj))
		obj["event_id"], obj["conversation_id"] = newV7(), "sak-"+fnr
		smuggled, err := json.Marshal(obj)
		require.NoError(t, err)
		lines = append(lines, smuggled)
	}
	assert.EqualValues(t, 9, b.Redactions())
	code, ir := post(t, ps.Client(t, senderOrg), ps.URL, lines...)
	require.Equal(t, http.StatusUnprocessableEntity, code)
	assert.Equal(t, 9, ir.Accepted)
	require.Len(t, ir.Rejected, 3)
	for _, r := range ir.Rejected {
		assert.Equal(t, "conversation_id", r.Field)
	}

	var p pakkesporing.EventPage
	require.Equal(t, http.StatusOK, query(t, ps, "/v1/events?limit=1000", &p))
	require.Len(t, p.Events, 9)
	for _, e := range p.Events {
		assert.False(t, events.ContainsPersonNumber(string(e.Event)), "stored event holds a person number")
		var ms events.MessageStatus
		require.NoError(t, json.Unmarshal(e.Event, &ms))
		assert.Equal(t, events.ReceiverPerson, ms.ReceiverType)
		assert.Len(t, ms.ReceiverPseudonym, 22)
	}
	for _, line := range bytes.Split([]byte(logs.String()), []byte("\n")) {
		assert.False(t, events.ContainsPersonNumber(string(line)), "log line holds a person number: %s", line)
	}
	assert.Contains(t, logs.String(), "rejected events", "the refusal itself is logged")
}

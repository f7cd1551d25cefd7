package api_test

import (
	"bytes"
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/integrasjonspunkt/message"
	"github.com/efm-go/efm/integrasjonspunkt/store"
)

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

// TestPersonNumbers_StayLocal: a message to a citizen writes one central-log
// event per status, in the status's transaction, with the receiver only as
// its keyed pseudonym; neither the events nor the daemon's log carry the
// number, whatever the API was asked.
func TestPersonNumbers_StayLocal(t *testing.T) {
	logs := &syncBuffer{}
	d := startDaemonLog(t, nil, logs)
	_, id := d.create(digitalSBD(citizen))
	require.NoError(t, d.core.SetStatus(context.Background(), message.Change{MessageID: id, Status: "SENDT"}))
	require.NoError(t, d.core.SetStatus(context.Background(), message.Change{MessageID: id, Status: "FEIL", Description: "varsling feilet"}))
	requireError(t, d.postJSON("/api/messages/out", digitalSBD(printOnly)), 400, "ReceiverDoesNotAcceptProcessException")
	d.get("/api/capabilities/" + citizen)
	d.get("/api/capabilities/" + printOnly + "?securityLevel=x")

	st, err := store.Open(context.Background(), store.Config{Path: filepath.Join(d.dir, "store.db"), Logger: discardLogger()})
	require.NoError(t, err)
	defer st.Close()
	rows, err := st.Pending(context.Background(), 1000, 1<<30)
	require.NoError(t, err)
	var statuses []events.Status
	for _, r := range rows {
		assert.NotContains(t, string(r.Body), citizen)
		ev, err := events.Decode(r.Body)
		require.NoError(t, err)
		ms, ok := ev.(*events.MessageStatus)
		if !ok || ms.MessageID != id {
			continue
		}
		statuses = append(statuses, ms.Status)
		assert.Equal(t, events.ReceiverPerson, ms.ReceiverType)
		assert.NotEmpty(t, ms.ReceiverPseudonym)
		assert.Empty(t, ms.ReceiverOrgNr)
		assert.Equal(t, events.DPI, ms.ServiceIdentifier)
		if ms.Status == events.Feil {
			assert.Equal(t, events.ReasonChannelRejected, ms.ReasonCode)
		}
	}
	assert.Equal(t, []events.Status{events.Opprettet, events.Sendt, events.Feil}, statuses, "one event per status")
	require.NotEmpty(t, logs.String())
	for _, p := range []string{citizen, printOnly} {
		assert.NotContains(t, logs.String(), p, "a person number reached the log")
	}
}

package dpe_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/efm-go/efm/internal/simfault"
	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/dpe"
	"github.com/efm-go/efm/transport/dpe/dpesim"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	orgAgency  = "910077473"
	orgEinnsyn = "991825827"
	keyName    = "MoveDPE-pilotPolicy"
	key        = "c2ltdWxhdG9yIGtleQ=="
)

type env struct {
	bus *dpesim.Sim
	srv *httptest.Server
}

func newEnv(t testing.TB, sched *dpesim.Schedule) *env {
	t.Helper()
	bus, err := dpesim.New(dpesim.Options{Keys: map[string]string{keyName: key}, Peers: []string{orgEinnsyn}, Schedule: sched})
	require.NoError(t, err)
	srv := httptest.NewServer(bus)
	t.Cleanup(func() { bus.Close(); srv.Close() })
	return &env{bus: bus, srv: srv}
}

func (e *env) client(t *testing.T, org string, mutate func(*dpe.Config)) *dpe.Client {
	cfg := dpe.Config{BaseURL: e.srv.URL, Keys: dpe.StaticKey{Name: keyName, Key: key}, OwnQueue: dpe.OwnQueue(org, "innsyn")}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := dpe.New(cfg)
	require.NoError(t, err)
	return c
}

func publisering(from, to string) ([]byte, string) {
	id := uuid.NewString()
	return []byte(fmt.Sprintf(`{
  "standardBusinessDocumentHeader": {
    "headerVersion": "1.0",
    "sender": [{"identifier": {"value": "0192:%s", "authority": "iso6523-actorid-upis"}}],
    "receiver": [{"identifier": {"value": "0192:%s", "authority": "iso6523-actorid-upis"}}],
    "documentIdentification": {"standard": "urn:no:difi:einnsyn:xsd::publisering", "typeVersion": "1.0",
      "instanceIdentifier": %q, "type": "publisering", "creationDateAndTime": "2026-01-01T10:00:00Z"},
    "businessScope": {"scope": [{"type": "ConversationId", "instanceIdentifier": %q,
       "identifier": "urn:no:difi:profile:einnsyn:journalpost:ver1.0"}]}
  },
  "publisering": {"orgnr": "%s"}
}`, from, to, id, uuid.NewString(), from)), id
}

func receiveAll(t *testing.T, c *dpe.Client, want int) []*dpe.Message {
	t.Helper()
	var got []*dpe.Message
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		m, err := c.Receive(context.Background())
		require.NoError(t, err)
		if m == nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		require.NoError(t, c.Complete(context.Background(), m))
		got = append(got, m)
	}
	require.Len(t, got, want)
	return got
}

func TestClient_PublishToEinnsyn(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t, orgAgency, nil)
	sbd, id := publisering(orgAgency, orgEinnsyn)
	cms := make([]byte, 5000)
	_, _ = rand.Read(cms)
	require.NoError(t, c.Send(context.Background(), dpe.ReceiverQueue(orgEinnsyn, "data"), sbd, cms))

	msgs := receiveAll(t, c, 3)
	var statuses []string
	var kvittering bool
	for _, m := range msgs {
		switch m.Header.Type {
		case transport.TypeStatus:
			assert.Equal(t, id, m.Header.MessageID)
			statuses = append(statuses, m.Header.Status)
		case transport.TypeEinnsynKvittering:
			kvittering = true
			assert.Equal(t, transport.ProcessEinnsynResponse, m.Header.Process)
		}
		assert.Nil(t, m.CMS)
	}
	assert.Equal(t, []string{"MOTTATT", "LEVERT"}, statuses)
	assert.True(t, kvittering, "eInnsyn answers a publisering with an einnsyn_kvittering")
	assert.Equal(t, 1, e.bus.Report().Deliveries[id])
}

func TestClient_Incoming(t *testing.T) {
	e := newEnv(t, nil)
	agency := e.client(t, orgAgency, nil)
	// A second installation sending to the agency's own queue, with files.
	other := e.client(t, orgEinnsyn+"x", nil)
	sbd, id := publisering("987464291", orgAgency)
	cms := []byte("encrypted package \x00\x01\xff")
	require.NoError(t, other.Send(context.Background(), dpe.OwnQueue(orgAgency, "innsyn"), sbd, cms))
	msgs := receiveAll(t, agency, 1)
	assert.Equal(t, id, msgs[0].Header.MessageID)
	assert.Equal(t, cms, msgs[0].CMS, "the package survives the double base64")
	assert.JSONEq(t, string(sbd), string(msgs[0].SBD))
	m, err := agency.Receive(context.Background())
	require.NoError(t, err)
	assert.Nil(t, m, "completed messages are gone")
}

func TestClient_LockExpiry(t *testing.T) {
	sched := dpesim.DefaultSchedule
	sched.LockDuration = simfault.Duration(100 * time.Millisecond)
	e := newEnv(t, &sched)
	agency := e.client(t, orgAgency, nil)
	require.NoError(t, e.bus.Send(dpesim.SendRequest{Queue: dpe.OwnQueue(orgAgency, "innsyn"), SBD: mustSBD(orgEinnsyn, orgAgency)}))
	m, err := agency.Receive(context.Background())
	require.NoError(t, err)
	require.NotNil(t, m)
	again, err := agency.Receive(context.Background())
	require.NoError(t, err)
	assert.Nil(t, again, "a locked message is not handed out twice")

	time.Sleep(150 * time.Millisecond)
	err = agency.Complete(context.Background(), m)
	require.ErrorIs(t, err, transport.ErrNotFound, "the lock was lost")
	again, err = agency.Receive(context.Background())
	require.NoError(t, err)
	require.NotNil(t, again, "an expired lock makes the message reappear")
	assert.Equal(t, 2, again.Properties.DeliveryCount)
	assert.Equal(t, m.Header.MessageID, again.Header.MessageID)
	require.NoError(t, agency.Complete(context.Background(), again))
}

func mustSBD(from, to string) []byte {
	sbd, _ := publisering(from, to)
	return sbd
}

func TestClient_Send_Failures(t *testing.T) {
	tests := []struct {
		name      string
		fault     simfault.Fault
		retryable bool
	}{
		{"final 400", simfault.Fault{Path: "/*/messages", Status: 400, Times: 1}, false},
		{"final 403", simfault.Fault{Path: "/*/messages", Status: 403, Times: 1}, false},
		{"retryable 503", simfault.Fault{Path: "/*/messages", Status: 503, Times: 1}, true},
		{"timeout", simfault.Fault{Path: "/*/messages", Delay: simfault.Duration(time.Second), Times: 1}, true},
		{"dropped", simfault.Fault{Path: "/*/messages", Drop: true, Times: 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			c := e.client(t, orgAgency, func(c *dpe.Config) { c.HTTPClient = httptestClient(300 * time.Millisecond) })
			e.bus.Faults().Add(tt.fault)
			sbd, _ := publisering(orgAgency, orgEinnsyn)
			err := c.Send(context.Background(), dpe.ReceiverQueue(orgEinnsyn, "data"), sbd, nil)
			require.Error(t, err)
			assert.Equal(t, tt.retryable, transport.Retryable(err), "%v", err)
		})
	}
}

func TestClient_Send_Idempotent(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t, orgAgency, nil)
	// The bus stores the message but the answer is lost.
	e.bus.Faults().Add(simfault.Fault{Path: "/*/messages", After: true, Status: 503, Times: 1})
	sbd, id := publisering(orgAgency, orgEinnsyn)
	queue := dpe.ReceiverQueue(orgEinnsyn, "data")
	err := c.Send(context.Background(), queue, sbd, nil)
	require.True(t, transport.Retryable(err))
	require.NoError(t, c.Send(context.Background(), queue, sbd, nil))
	require.NoError(t, c.Send(context.Background(), queue, sbd, nil))
	rep := e.bus.Report()
	assert.Equal(t, 1, rep.Deliveries[id], "duplicate detection drops the resends")
	assert.Equal(t, 2, rep.Deduplicated)
	require.Eventually(t, func() bool { return len(e.bus.Report().Statuses[id]) == 2 }, 5*time.Second, 10*time.Millisecond)
}

func TestClient_BadKey(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t, orgAgency, func(c *dpe.Config) { c.Keys = dpe.StaticKey{Name: keyName, Key: "wrong"} })
	sbd, _ := publisering(orgAgency, orgEinnsyn)
	err := c.Send(context.Background(), dpe.ReceiverQueue(orgEinnsyn, "data"), sbd, nil)
	require.ErrorIs(t, err, transport.ErrUnauthorized)

	stale := e.client(t, orgAgency, func(c *dpe.Config) { c.Now = func() time.Time { return time.Now().Add(-time.Minute) } })
	err = stale.Send(context.Background(), dpe.ReceiverQueue(orgEinnsyn, "data"), sbd, nil)
	require.ErrorIs(t, err, transport.ErrUnauthorized, "an expired signature is refused")
}

func TestQueues(t *testing.T) {
	assert.Equal(t, "nextbestqueue910077473innsyn", dpe.OwnQueue("910077473", "innsyn"))
	assert.Equal(t, "nextbestqueue910077473data", dpe.StatusQueue("910077473", "", "innsyn"))
	assert.Equal(t, "nextbestqueue910077473innsyn", dpe.StatusQueue("910077473", "", "meeting"))
	assert.Equal(t, "nextbestqueue910077473innsyn", dpe.StatusQueue("910077473", "", "data"))
	assert.Equal(t, "nextbestqueue910077473x", dpe.StatusQueue("910077473", "x", "data"))
	assert.Equal(t, "nextbestqueue910077473data", dpe.KvitteringQueue("910077473", "", true))
	assert.Equal(t, "nextbestqueue910077473innsyn", dpe.KvitteringQueue("910077473", "", false))
}

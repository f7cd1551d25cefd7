package dpesim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/efm-go/efm/transport/dpe"
	"github.com/efm-go/efm/transport/dpe/dpesim"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	agency  = "910077473"
	einnsyn = "991825827"
)

func innsynskrav() (json.RawMessage, string) {
	id := uuid.NewString()
	return json.RawMessage(fmt.Sprintf(`{"standardBusinessDocumentHeader": {
 "sender": [{"identifier": {"value": "0192:%s", "authority": "iso6523-actorid-upis"}}],
 "receiver": [{"identifier": {"value": "0192:%s", "authority": "iso6523-actorid-upis"}}],
 "documentIdentification": {"standard": "urn:no:difi:einnsyn:xsd::innsynskrav", "typeVersion": "1.0", "instanceIdentifier": %q, "type": "innsynskrav"},
 "businessScope": {"scope": [{"type": "ConversationId", "instanceIdentifier": %q, "identifier": "urn:no:difi:profile:einnsyn:innsynskrav:ver1.0"}]}},
 "innsynskrav": {"orgnr": %q, "epost": "a@example.org"}}`, einnsyn, agency, id, uuid.NewString(), agency)), id
}

func post(t *testing.T, url string, body any, out any) int {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	require.NoError(t, err)
	defer resp.Body.Close()
	if out != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
	}
	return resp.StatusCode
}

func TestSim_ControlAPI(t *testing.T) {
	bus, err := dpesim.New(dpesim.Options{Keys: map[string]string{"k": "secret"}, Peers: []string{einnsyn}})
	require.NoError(t, err)
	srv := httptest.NewServer(bus)
	defer func() { bus.Close(); srv.Close() }()

	// eInnsyn sends an innsynskrav with a package to the agency.
	msg, id := innsynskrav()
	own := dpe.OwnQueue(agency, "innsyn")
	require.Equal(t, http.StatusNoContent, post(t, srv.URL+"/_sim/send", dpesim.SendRequest{Queue: own, SBD: msg, ASiC: "Y21z"}, nil))
	var queues map[string]int
	resp, err := http.Get(srv.URL + "/_sim/queues")
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&queues))
	resp.Body.Close()
	assert.Equal(t, 1, queues[own])

	c, err := dpe.New(dpe.Config{BaseURL: srv.URL, Keys: dpe.StaticKey{Name: "k", Key: "secret"}, OwnQueue: own})
	require.NoError(t, err)
	m, err := c.Receive(context.Background())
	require.NoError(t, err)
	require.NotNil(t, m)
	assert.Equal(t, id, m.Header.MessageID)
	assert.Equal(t, []byte("cms"), m.CMS)
	require.NoError(t, c.Complete(context.Background(), m))

	// The agency answers; eInnsyn's queue is consumed by the peer at once.
	// Dropping MOTTATT from the peer's side changes nothing here: the
	// agency is the one answering.
	var cfg dpesim.Schedule
	require.Equal(t, http.StatusOK, post(t, srv.URL+"/_sim/config", map[string]any{"lockDuration": "1s"}, &cfg))
	assert.Equal(t, time.Second, time.Duration(cfg.LockDuration))
	assert.Equal(t, dpesim.DefaultSchedule.DuplicateWindow, cfg.DuplicateWindow)

	var rep dpesim.DeliveryReport
	resp, err = http.Get(srv.URL + "/_sim/deliveries")
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&rep))
	resp.Body.Close()
	assert.Equal(t, 1, rep.Deliveries[id])

	require.Equal(t, http.StatusNoContent, post(t, srv.URL+"/_sim/reset", nil, nil))
	m, err = c.Receive(context.Background())
	require.NoError(t, err)
	assert.Nil(t, m)
}

func TestSim_RejectsUnsigned(t *testing.T) {
	bus, err := dpesim.New(dpesim.Options{Keys: map[string]string{"k": "secret"}})
	require.NoError(t, err)
	srv := httptest.NewServer(bus)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/q/messages", "application/json", bytes.NewReader([]byte(`{}`)))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// A signature for another resource does not cover this one.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/q/messages", bytes.NewReader([]byte(`{}`)))
	req.Header.Set("Authorization", dpe.Signature(srv.URL+"/other", "k", "secret", time.Now().Add(time.Minute)))
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

// Message ids are opaque to the bus and may hold '/'; the client escapes
// path segments one by one, and the signature covers the escaped URI.
func TestSim_OpaqueMessageID(t *testing.T) {
	bus, err := dpesim.New(dpesim.Options{Keys: map[string]string{"k": "secret"}})
	require.NoError(t, err)
	srv := httptest.NewServer(bus)
	defer srv.Close()
	own := dpe.OwnQueue(agency, "innsyn")
	msg, _ := innsynskrav()
	body, err := dpe.EncodeEnvelope(msg, nil)
	require.NoError(t, err)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/"+own+"/messages", bytes.NewReader(body))
	req.Header.Set("Authorization", dpe.Signature(srv.URL+"/"+own+"/messages", "k", "secret", time.Now().Add(time.Minute)))
	req.Header.Set("BrokerProperties", `{"MessageId": "a/b c"}`)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)

	c, err := dpe.New(dpe.Config{BaseURL: srv.URL, Keys: dpe.StaticKey{Name: "k", Key: "secret"}, OwnQueue: own})
	require.NoError(t, err)
	m, err := c.Receive(context.Background())
	require.NoError(t, err)
	require.NotNil(t, m)
	assert.Equal(t, "a/b c", m.Properties.MessageID)
	require.NoError(t, c.Complete(context.Background(), m))
}

package dposim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/altinn"
	"github.com/efm-go/efm/transport/altinn/altinnsim"
	"github.com/efm-go/efm/transport/dpo"
	"github.com/efm-go/efm/transport/dpo/dposim"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	orgDaemon = "910077473"
	orgPeer   = "910075918"
	orgOther  = "987464291"
)

type fixture struct {
	iss    *altinnsim.Issuer
	broker *dposim.Sim
	srv    *httptest.Server
	opened chan string
	dir    string // the broker's Dir
}

func newFixture(t testing.TB, open func(string, []byte, io.Reader) error) *fixture {
	iss, err := altinnsim.NewIssuer()
	require.NoError(t, err)
	auth, err := altinnsim.New(altinnsim.Options{MaskinportenKeys: iss.Keys()})
	require.NoError(t, err)
	dir := t.TempDir()
	broker, err := dposim.New(dposim.Options{Auth: auth, Peers: []string{"0192:" + orgPeer}, Open: open, Dir: dir})
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/authentication/") {
			auth.ServeHTTP(w, r)
			return
		}
		broker.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { broker.Close(); srv.Close() })
	return &fixture{iss: iss, broker: broker, srv: srv, dir: dir}
}

type systemUser struct {
	iss *altinnsim.Issuer
	org string
}

func (s systemUser) Token(_ context.Context, scopes ...string) (string, error) {
	return s.iss.Token(altinnsim.Grant{ConsumerOrg: s.org, Scopes: scopes, SystemUserOrg: s.org, SystemUserName: "su"})
}

func (f *fixture) client(t *testing.T, org string) *dpo.Client {
	ex, err := altinn.New(altinn.Config{URL: f.srv.URL + altinnsim.ExchangePath, Maskinporten: systemUser{f.iss, org}})
	require.NoError(t, err)
	c, err := dpo.New(dpo.Config{BaseURL: f.srv.URL + dposim.BasePath, Tokens: ex, TempDir: t.TempDir()})
	require.NoError(t, err)
	return c
}

func (f *fixture) control(t *testing.T, method, path string, body any, out any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Less(t, resp.StatusCode, 300, "%s %s", method, path)
	if out != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
	}
}

func sbd(typ, from, to string) (json.RawMessage, string) {
	id := uuid.NewString()
	return json.RawMessage(fmt.Sprintf(`{"standardBusinessDocumentHeader": {
 "sender": [{"identifier": {"value": "0192:%s", "authority": "iso6523-actorid-upis"}}],
 "receiver": [{"identifier": {"value": "0192:%s", "authority": "iso6523-actorid-upis"}}],
 "documentIdentification": {"standard": "urn:no:difi:avtalt:xsd::%s", "typeVersion": "1.0", "instanceIdentifier": %q, "type": %q},
 "businessScope": {"scope": [{"type": "ConversationId", "instanceIdentifier": %q, "identifier": "urn:no:difi:profile:avtalt:avtalt:ver1.0"}]}},
 %q: {"identifier": "no.example.v1", "content": {}}}`, from, to, typ, id, typ, uuid.NewString(), typ)), id
}

func TestSim_OriginateToDaemon(t *testing.T) {
	f := newFixture(t, nil)
	msg, id := sbd("avtalt", orgPeer, orgDaemon)
	var sent map[string]string
	f.control(t, "POST", "/_sim/send", dposim.SendRequest{Sender: orgPeer, Recipient: orgDaemon, SBD: msg,
		ASiC: "Y21z"}, &sent)
	require.NotEmpty(t, sent["fileTransferId"])

	c := f.client(t, orgDaemon)
	pending, err := c.Pending(context.Background())
	require.NoError(t, err)
	require.Len(t, pending, 1)
	file, err := c.Download(context.Background(), pending[0].FileTransferID)
	require.NoError(t, err)
	defer file.Close()
	assert.Equal(t, id, file.Header.MessageID)
	assert.Equal(t, int64(3), file.PayloadSize())
	require.NoError(t, c.Confirm(context.Background(), pending[0].FileTransferID))

	// The daemon answers MOTTATT; the peer takes it without answering back.
	reply, err := transport.StatusReply(msg, "MOTTATT", time.Now())
	require.NoError(t, err)
	_, err = c.Send(context.Background(), dpo.Outgoing{SBD: reply})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(f.broker.Statuses()[id]) == 1 }, 5*time.Second, 10*time.Millisecond)

	var transfers []dpo.Overview
	f.control(t, "GET", "/_sim/transfers", nil, &transfers)
	require.Len(t, transfers, 2)
	assert.Equal(t, dpo.StatusAllConfirmedDownloaded, transfers[0].FileTransferStatus)
	require.Eventually(t, func() bool {
		f.control(t, "GET", "/_sim/transfers", nil, &transfers)
		return transfers[1].FileTransferStatus == dpo.StatusAllConfirmedDownloaded
	}, 5*time.Second, 10*time.Millisecond, "the peer confirms what it receives")
}

func TestSim_ScheduleAndDrops(t *testing.T) {
	f := newFixture(t, nil)
	f.control(t, "POST", "/_sim/config", map[string]any{"drop": []string{"LEVERT"}, "mottatt": "10ms"}, nil)
	var cfg dposim.Schedule
	f.control(t, "GET", "/_sim/config", nil, &cfg)
	assert.Equal(t, []string{"LEVERT"}, cfg.Drop)
	assert.Equal(t, dposim.DefaultSchedule.PublishDelay, cfg.PublishDelay, "fields left out keep their value")

	c := f.client(t, orgDaemon)
	msg, id := sbd("avtalt", orgDaemon, orgPeer)
	_, err := c.Send(context.Background(), dpo.Outgoing{SBD: msg})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(f.broker.Statuses()[id]) == 1 }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	var rep dposim.DeliveryReport
	f.control(t, "GET", "/_sim/deliveries", nil, &rep)
	assert.Equal(t, []string{"MOTTATT"}, rep.Statuses[id], "LEVERT dropped")
	assert.Equal(t, 1, rep.Deliveries[id])

	// A new peer, added at run time.
	f.control(t, "POST", "/_sim/peers", map[string]string{"org": orgOther}, nil)
	var peers []string
	f.control(t, "GET", "/_sim/peers", nil, &peers)
	assert.Equal(t, []string{orgPeer, orgOther}, peers)

	f.control(t, "POST", "/_sim/reset", nil, nil)
	var after dposim.DeliveryReport
	f.control(t, "GET", "/_sim/deliveries", nil, &after)
	assert.Empty(t, after.Deliveries)
}

func TestSim_HoldPublish(t *testing.T) {
	f := newFixture(t, nil)
	f.control(t, "POST", "/_sim/config", map[string]any{"holdPublish": true}, nil)
	c := f.client(t, orgDaemon)
	msg, id := sbd("avtalt", orgDaemon, orgPeer)
	ref, err := c.Send(context.Background(), dpo.Outgoing{SBD: msg})
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond)
	ov, err := c.Overview(context.Background(), ref)
	require.NoError(t, err)
	assert.Equal(t, dpo.StatusUploadProcessing, ov.FileTransferStatus)
	assert.Zero(t, f.broker.Deliveries()[id])
}

func TestSim_PeerOpenFailure(t *testing.T) {
	f := newFixture(t, func(org string, sbd []byte, pkg io.Reader) error {
		asic, err := io.ReadAll(pkg)
		if err != nil || string(asic) != "good" {
			return fmt.Errorf("cannot decrypt for %s", org)
		}
		return nil
	})
	c := f.client(t, orgDaemon)
	msg, id := sbd("avtalt", orgDaemon, orgPeer)
	_, err := c.Send(context.Background(), dpo.Outgoing{SBD: msg, Payload: func() (r ioReadCloser, err error) { return nopCloser("bad"), nil }})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return f.broker.Report().PeerErrors[id] != "" }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	assert.Empty(t, f.broker.Statuses()[id], "a peer that cannot open the package sends no receipts")

	msg, id = sbd("avtalt", orgDaemon, orgPeer)
	_, err = c.Send(context.Background(), dpo.Outgoing{SBD: msg, Payload: func() (r ioReadCloser, err error) { return nopCloser("good"), nil }})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(f.broker.Statuses()[id]) == 2 }, 5*time.Second, 10*time.Millisecond)
}

func TestSim_AccessRules(t *testing.T) {
	f := newFixture(t, nil)
	sender, outsider := f.client(t, orgDaemon), f.client(t, orgOther)
	msg, _ := sbd("avtalt", orgDaemon, orgPeer)
	ref, err := sender.Send(context.Background(), dpo.Outgoing{SBD: msg})
	require.NoError(t, err)
	_, err = outsider.Overview(context.Background(), ref)
	assert.ErrorIs(t, err, transport.ErrUnauthorized, "only sender and recipients see a transfer")
	_, err = sender.Download(context.Background(), ref)
	assert.ErrorIs(t, err, transport.ErrUnauthorized, "the sender cannot download its own transfer")

	var counts map[string]int
	f.control(t, "GET", "/_sim/requests", nil, &counts)
	assert.Equal(t, 1, counts["POST /broker/api/v1/filetransfer"])
	assert.Equal(t, 1, counts["POST /broker/api/v1/filetransfer/{id}/upload"])
}

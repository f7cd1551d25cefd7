package dpo_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/efm-go/efm/transport/altinn"
	"github.com/efm-go/efm/transport/altinn/altinnsim"
	"github.com/efm-go/efm/transport/dpo"
	"github.com/efm-go/efm/transport/dpo/dposim"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

const (
	orgA    = "910077473" // the daemon under test
	orgPeer = "910075918" // a simulated peer
	orgC    = "987464291" // a second real daemon
)

type env struct {
	iss    *altinnsim.Issuer
	auth   *altinnsim.Sim
	broker *dposim.Sim
	srv    *httptest.Server
}

func newEnv(t *testing.T, sched *dposim.Schedule) *env { return newEnvTB(t, sched) }

func newEnvB(b *testing.B) *env {
	sched := dposim.DefaultSchedule
	sched.PublishDelay = 0
	return newEnvTB(b, &sched)
}

func newEnvTB(t testing.TB, sched *dposim.Schedule) *env {
	t.Helper()
	iss, err := altinnsim.NewIssuer()
	require.NoError(t, err)
	auth, err := altinnsim.New(altinnsim.Options{MaskinportenKeys: iss.Keys()})
	require.NoError(t, err)
	broker, err := dposim.New(dposim.Options{Auth: auth, Peers: []string{orgPeer}, Schedule: sched})
	require.NoError(t, err)
	mux := httptestMux(auth, broker)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { broker.Close(); srv.Close() })
	return &env{iss: iss, auth: auth, broker: broker, srv: srv}
}

// systemUser is the adapter the daemon puts in front of Maskinporten: one
// system user, its authorization_details fixed.
type systemUser struct {
	iss *altinnsim.Issuer
	org string
}

func (s systemUser) Token(_ context.Context, scopes ...string) (string, error) {
	return s.iss.Token(altinnsim.Grant{ConsumerOrg: s.org, Scopes: scopes, SystemUserOrg: s.org,
		SystemUserName: s.org + "_integrasjonspunkt_systembruker_" + s.org})
}

func (e *env) clientB(b *testing.B, org string) *dpo.Client { return e.clientTB(b, org, nil) }

func (e *env) client(t *testing.T, org string, mutate func(*dpo.Config)) *dpo.Client {
	return e.clientTB(t, org, mutate)
}

func (e *env) clientTB(t testing.TB, org string, mutate func(*dpo.Config)) *dpo.Client {
	t.Helper()
	ex, err := altinn.New(altinn.Config{URL: e.srv.URL + altinnsim.ExchangePath, Maskinporten: systemUser{e.iss, org}})
	require.NoError(t, err)
	cfg := dpo.Config{BaseURL: e.srv.URL + dposim.BasePath, Tokens: ex, TempDir: t.TempDir()}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := dpo.New(cfg)
	require.NoError(t, err)
	return c
}

func arkivmelding(from, to, channel string) (sbd []byte, messageID string) {
	messageID = uuid.NewString()
	scopes := fmt.Sprintf(`{"type": "ConversationId", "instanceIdentifier": %q,
       "identifier": "urn:no:difi:profile:arkivmelding:administrasjon:ver1.0"}`, uuid.NewString())
	if channel != "" {
		scopes += fmt.Sprintf(`, {"type": "MessageChannel", "instanceIdentifier": %q, "identifier": %q}`, uuid.NewString(), channel)
	}
	return []byte(fmt.Sprintf(`{
  "standardBusinessDocumentHeader": {
    "headerVersion": "1.0",
    "sender": [{"identifier": {"value": "0192:%s", "authority": "iso6523-actorid-upis"}}],
    "receiver": [{"identifier": {"value": "0192:%s", "authority": "iso6523-actorid-upis"}}],
    "documentIdentification": {"standard": "urn:no:difi:arkivmelding:xsd::arkivmelding", "typeVersion": "2.0",
      "instanceIdentifier": %q, "type": "arkivmelding", "creationDateAndTime": "2026-01-01T10:00:00Z"},
    "businessScope": {"scope": [%s]}
  },
  "arkivmelding": {"hoveddokument": "vedtak.pdf"}
}`, from, to, messageID, scopes)), messageID
}

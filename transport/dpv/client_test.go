package dpv_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/efm-go/efm/internal/simfault"
	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/altinn"
	"github.com/efm-go/efm/transport/altinn/altinnsim"
	"github.com/efm-go/efm/transport/dpv"
	"github.com/efm-go/efm/transport/dpv/dpvsim"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const orgA = "910077473"

type env struct {
	iss  *altinnsim.Issuer
	corr *dpvsim.Sim
	srv  *httptest.Server
}

type consumer struct {
	iss *altinnsim.Issuer
	org string
}

func (c consumer) Token(_ context.Context, scopes ...string) (string, error) {
	return c.iss.Token(altinnsim.Grant{ConsumerOrg: c.org, Scopes: scopes})
}

func newEnv(t *testing.T, sched *dpvsim.Schedule) *env {
	t.Helper()
	iss, err := altinnsim.NewIssuer()
	require.NoError(t, err)
	auth, err := altinnsim.New(altinnsim.Options{MaskinportenKeys: iss.Keys()})
	require.NoError(t, err)
	corr, err := dpvsim.New(dpvsim.Options{Auth: auth, Schedule: sched})
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/authentication/") {
			auth.ServeHTTP(w, r)
			return
		}
		corr.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return &env{iss: iss, corr: corr, srv: srv}
}

func (e *env) client(t *testing.T, mutate func(*dpv.Config)) *dpv.Client {
	ex, err := altinn.New(altinn.Config{URL: e.srv.URL + altinnsim.ExchangePath, Maskinporten: consumer{e.iss, orgA}})
	require.NoError(t, err)
	cfg := dpv.Config{BaseURL: e.srv.URL + dpvsim.BasePath, Tokens: ex}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := dpv.New(cfg)
	require.NoError(t, err)
	return c
}

func sample(files map[string][]byte) dpv.Correspondence {
	id := uuid.NewString()
	now := time.Now()
	c := dpv.Correspondence{
		Recipient: dpv.RecipientURN("910075918"), IdempotentKey: id, SendersReference: id,
		ResourceID: "eformidling-dpv-meldingsutveksling", Sender: "0192:" + orgA, MessageSender: "Testkommune",
		RequestedPublishTime: now, DueDateTime: now.Add(7 * 24 * time.Hour),
		PropertyList: map[string]string{"senderOrgNumber": orgA},
		Content:      dpv.Content{Language: "nb", MessageTitle: "Vedtak", MessageSummary: "Vedtak", MessageBody: "Vedtak i saken"},
		Notification: &dpv.Notification{NotificationTemplate: "CustomMessage", EmailSubject: "Ny melding",
			EmailBody: "Du har fått melding fra $reporterName$", SmsBody: "Ny melding", EmailContentType: "Plain",
			NotificationChannel: "EmailAndSms", RequestedSendTime: now.Add(5 * time.Minute)},
	}
	for name, b := range files {
		c.Attachments = append(c.Attachments, dpv.Attachment{FileName: name, DisplayName: name, SendersReference: "AttachmentReference",
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }})
	}
	return c
}

func TestClient_SendAndPoll(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t, nil)
	pdf := bytes.Repeat([]byte("%PDF"), 5000)
	corr := sample(map[string][]byte{"vedtak.pdf": pdf})
	id, err := c.Send(context.Background(), corr)
	require.NoError(t, err)
	got, ok := e.corr.Attachment(id, "vedtak.pdf")
	require.True(t, ok)
	assert.Equal(t, pdf, got)

	var seen []string
	require.Eventually(t, func() bool {
		r, err := c.Poll(context.Background(), id)
		require.NoError(t, err)
		seen = seen[:0]
		for _, u := range r.Updates {
			seen = append(seen, u.Status)
		}
		return r.Stop
	}, 5*time.Second, 20*time.Millisecond)
	assert.Equal(t, []string{"LEVERT", "LEST"}, seen)
	assert.Equal(t, 1, e.corr.Deliveries()[corr.SendersReference])
}

func TestClient_Poll_PurgedAndDeleted(t *testing.T) {
	e := newEnv(t, &dpvsim.Schedule{Publish: 0, NeverRead: true})
	c := e.client(t, nil)
	id, err := c.Send(context.Background(), sample(nil))
	require.NoError(t, err)
	r, err := c.Poll(context.Background(), id)
	require.NoError(t, err)
	assert.False(t, r.Stop, "published, never read: keep polling")
	require.Len(t, r.Updates, 1)
	assert.Equal(t, "LEVERT", r.Updates[0].Status)

	require.True(t, e.corr.Purge(id, "recipient"))
	r, err = c.Poll(context.Background(), id)
	require.NoError(t, err)
	assert.True(t, r.Stop)
	assert.Equal(t, "ANNET", r.Updates[len(r.Updates)-1].Status)

	require.True(t, e.corr.Delete(id, http.StatusGone))
	r, err = c.Poll(context.Background(), id)
	require.NoError(t, err)
	assert.True(t, r.Stop)
	assert.Equal(t, []dpv.Update{{Status: "ANNET", Description: "deleted in Altinn"}}, r.Updates)
}

func TestClient_Send_Failures(t *testing.T) {
	tests := []struct {
		name      string
		fault     simfault.Fault
		retryable bool
	}{
		{"final 400", simfault.Fault{Path: dpvsim.BasePath + "/correspondence/upload", Status: 400, Times: 1}, false},
		{"final 422", simfault.Fault{Path: dpvsim.BasePath + "/correspondence/upload", Status: 422, Times: 1}, false},
		{"retryable 502", simfault.Fault{Path: dpvsim.BasePath + "/correspondence/upload", Status: 502, Times: 1}, true},
		{"timeout", simfault.Fault{Path: dpvsim.BasePath + "/correspondence/upload", Delay: simfault.Duration(time.Second), Times: 1}, true},
		{"dropped", simfault.Fault{Path: dpvsim.BasePath + "/correspondence/upload", Drop: true, Times: 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			c := e.client(t, func(c *dpv.Config) { c.HTTPClient = &http.Client{Timeout: 300 * time.Millisecond} })
			e.corr.Faults().Add(tt.fault)
			_, err := c.Send(context.Background(), sample(map[string][]byte{"a.pdf": []byte("x")}))
			require.Error(t, err)
			assert.Equal(t, tt.retryable, transport.Retryable(err), "%v", err)
		})
	}
}

func TestClient_Send_Validation(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t, nil)
	corr := sample(nil)
	corr.Notification.SmsBody = strings.Repeat("x", 161)
	_, err := c.Send(context.Background(), corr)
	require.ErrorIs(t, err, transport.ErrRejected)
	assert.False(t, transport.Retryable(err))

	corr = sample(nil)
	corr.ResourceID = ""
	_, err = c.Send(context.Background(), corr)
	require.ErrorIs(t, err, transport.ErrRejected, "an empty resource is refused before sending")
}

func TestClient_Send_Idempotent(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t, nil)
	// The correspondence is created but the answer is lost.
	e.corr.Faults().Add(simfault.Fault{Path: dpvsim.BasePath + "/correspondence/upload", After: true, Status: 504, Times: 1})
	corr := sample(map[string][]byte{"a.pdf": []byte("x")})
	_, err := c.Send(context.Background(), corr)
	require.True(t, transport.Retryable(err))
	id, err := c.Send(context.Background(), corr)
	require.NoError(t, err, "409 resolves to the earlier correspondence")
	again, err := c.Send(context.Background(), corr)
	require.NoError(t, err)
	assert.Equal(t, id, again)
	assert.Equal(t, 1, e.corr.Deliveries()[corr.SendersReference], "created exactly once")
}

func TestMapOverview(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		ov   dpv.Overview
		want []string
		stop bool
	}{
		{"initialized", dpv.Overview{Status: dpv.StatusInitialized}, nil, false},
		{"published", dpv.Overview{Status: dpv.StatusPublished, Published: &at}, []string{"LEVERT"}, false},
		{"read", dpv.Overview{Status: dpv.StatusRead, Published: &at, Read: &at}, []string{"LEVERT", "LEST"}, true},
		{"fetched ignored", dpv.Overview{Status: dpv.StatusFetched, Published: &at}, []string{"LEVERT"}, false},
		{"purged by altinn", dpv.Overview{Status: dpv.StatusPurgedByAltinn}, []string{"ANNET"}, true},
		{"failed", dpv.Overview{Status: dpv.StatusFailed}, []string{"ANNET"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := dpv.MapOverview(tt.ov)
			var got []string
			for _, u := range r.Updates {
				got = append(got, u.Status)
			}
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.stop, r.Stop)
		})
	}
}

func TestRecipientURN(t *testing.T) {
	assert.Equal(t, "urn:altinn:organization:identifier-no:910075918", dpv.RecipientURN("910075918"))
	assert.Equal(t, "urn:altinn:person:identifier-no:01017012345", dpv.RecipientURN("01017012345"))
}

package dpo_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/efm-go/efm/internal/simfault"
	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/altinn/altinnsim"
	"github.com/efm-go/efm/transport/dpo"
	"github.com/efm-go/efm/transport/dpo/dposim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func payloadOf(b []byte) dpo.Payload {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// drain downloads and confirms everything pending for c until want
// transfers were seen or the deadline passes.
func drain(t *testing.T, c *dpo.Client, want int) []*dpo.File {
	t.Helper()
	ctx := context.Background()
	var got []*dpo.File
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		pending, err := c.Pending(ctx)
		require.NoError(t, err)
		for _, ov := range pending {
			f, err := c.Download(ctx, ov.FileTransferID)
			require.NoError(t, err)
			t.Cleanup(func() { f.Close() })
			require.NoError(t, c.Confirm(ctx, ov.FileTransferID))
			got = append(got, f)
		}
		if len(got) < want {
			time.Sleep(20 * time.Millisecond)
		}
	}
	require.Len(t, got, want)
	return got
}

func TestClient_SendToPeer_Receipts(t *testing.T) {
	e := newEnv(t, nil)
	a := e.client(t, orgA, nil)
	sbd, id := arkivmelding(orgA, orgPeer, "")
	var checkpoint string
	ref, err := a.Send(context.Background(), dpo.Outgoing{SBD: sbd, Payload: payloadOf(randomBytes(t, 4096)),
		Checkpoint: func(_ context.Context, id string) error { checkpoint = id; return nil }})
	require.NoError(t, err)
	assert.Equal(t, checkpoint, ref)

	files := drain(t, a, 3)
	var statuses []string
	var kvittering *transport.Header
	for _, f := range files {
		assert.False(t, f.HasPayload(), "receipts carry no asic.zip")
		switch f.Header.Type {
		case transport.TypeStatus:
			assert.Equal(t, id, f.Header.MessageID, "a status echoes the messageId")
			statuses = append(statuses, f.Header.Status)
		case transport.TypeArkivmeldingKvittering:
			kvittering = &f.Header
		}
	}
	assert.Equal(t, []string{"MOTTATT", "LEVERT"}, statuses, "oldest first")
	require.NotNil(t, kvittering)
	assert.Equal(t, id, kvittering.RelatedToMessageID)
	assert.Equal(t, "OK", kvittering.ReceiptType)

	rep := e.broker.Report()
	assert.Equal(t, 1, rep.Deliveries[id])
	assert.Equal(t, []string{"MOTTATT", "LEVERT"}, rep.Statuses[id])
	assert.Empty(t, rep.Duplicates)
}

func TestClient_TwoDaemons(t *testing.T) {
	// 300 KiB is read in memory, 5 MiB spooled to disk.
	for _, size := range []int{300 << 10, 5 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			e := newEnv(t, nil)
			a, c := e.client(t, orgA, nil), e.client(t, orgC, nil)
			sbd, id := arkivmelding(orgA, orgC, "")
			pkg := randomBytes(t, size)
			ref, err := a.Send(context.Background(), dpo.Outgoing{SBD: sbd, Payload: payloadOf(pkg)})
			require.NoError(t, err)

			files := drain(t, c, 1)
			f := files[0]
			assert.Equal(t, id, f.Header.MessageID)
			assert.JSONEq(t, string(sbd), string(f.SBD))
			require.True(t, f.HasPayload())
			assert.Equal(t, int64(size), f.PayloadSize())
			rc, err := f.OpenPayload()
			require.NoError(t, err)
			got, err := io.ReadAll(rc)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(pkg, got), "the package arrives byte-identical")

			ov, err := a.Overview(context.Background(), ref)
			require.NoError(t, err)
			assert.Equal(t, dpo.StatusAllConfirmedDownloaded, ov.FileTransferStatus)

			// Nobody answers for a real daemon but the daemon itself.
			time.Sleep(200 * time.Millisecond)
			pending, err := a.Pending(context.Background())
			require.NoError(t, err)
			assert.Empty(t, pending)
		})
	}
}

func TestClient_Send_Failures(t *testing.T) {
	tests := []struct {
		name      string
		fault     simfault.Fault
		retryable bool
		final     bool
	}{
		{"final 400 at initialise", simfault.Fault{Path: "/broker/api/v1/filetransfer", Method: "POST", Status: 400, Times: 1}, false, true},
		{"final 403 at upload", simfault.Fault{Path: "/broker/api/v1/filetransfer/*/upload", Status: 403, Times: 1}, false, true},
		{"retryable 503", simfault.Fault{Path: "/broker/api/v1/filetransfer", Method: "POST", Status: 503, Times: 1}, true, false},
		{"retryable 429", simfault.Fault{Path: "/broker/api/v1/filetransfer/*/upload", Status: 429, Times: 1}, true, false},
		{"timeout", simfault.Fault{Path: "/broker/api/v1/filetransfer", Method: "POST", Delay: simfault.Duration(time.Second), Times: 1}, true, false},
		{"dropped connection", simfault.Fault{Path: "/broker/api/v1/filetransfer/*/upload", Drop: true, Times: 1}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			a := e.client(t, orgA, func(c *dpo.Config) { c.RequestTimeout = 300 * time.Millisecond })
			e.broker.Faults().Add(tt.fault)
			sbd, _ := arkivmelding(orgA, orgPeer, "")
			_, err := a.Send(context.Background(), dpo.Outgoing{SBD: sbd, Payload: payloadOf([]byte("cms"))})
			require.Error(t, err)
			assert.Equal(t, tt.retryable, transport.Retryable(err), "%v", err)
			assert.Equal(t, tt.final, errorsIs(err, transport.ErrRejected), "%v", err)
		})
	}
}

func errorsIs(err, target error) bool { return transportIs(err, target) }

func TestClient_Send_Idempotent(t *testing.T) {
	tests := []struct {
		name  string
		fault simfault.Fault
		sched *dposim.Schedule
	}{
		// The upload lands but its answer is lost: the retry must see the
		// transfer is uploaded and not upload again.
		{name: "answer to upload lost", fault: simfault.Fault{Path: "/broker/api/v1/filetransfer/*/upload", After: true, Status: 504, Times: 1}},
		// The upload never arrived: the retry uploads into the same transfer.
		{name: "upload refused", fault: simfault.Fault{Path: "/broker/api/v1/filetransfer/*/upload", Status: 503, Times: 1}},
		// The answer to initialise is lost: the transfer the retry cannot
		// know stays empty and is never delivered.
		{name: "answer to initialise lost", fault: simfault.Fault{Path: "/broker/api/v1/filetransfer", Method: "POST", After: true, Drop: true, Times: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.sched)
			a := e.client(t, orgA, nil)
			e.broker.Faults().Add(tt.fault)
			sbd, id := arkivmelding(orgA, orgPeer, "")
			out := dpo.Outgoing{SBD: sbd, Payload: payloadOf([]byte("cms"))}
			out.Checkpoint = func(_ context.Context, tid string) error { out.TransferID = tid; return nil }
			_, err := a.Send(context.Background(), out)
			require.Error(t, err)
			require.True(t, transport.Retryable(err))
			ref, err := a.Send(context.Background(), out)
			require.NoError(t, err)
			if out.TransferID != "" {
				assert.Equal(t, out.TransferID, ref)
			}
			// A third, spurious retry changes nothing either.
			_, err = a.Send(context.Background(), out)
			require.NoError(t, err)
			require.Eventually(t, func() bool { return len(e.broker.Report().Statuses[id]) == 2 }, 5*time.Second, 10*time.Millisecond)
			assert.Equal(t, 1, e.broker.Report().Deliveries[id], "delivered exactly once")
		})
	}
}

func TestClient_Send_FailedUploadStartsOver(t *testing.T) {
	sched := dposim.DefaultSchedule
	sched.FailUploads = 1
	e := newEnv(t, &sched)
	a := e.client(t, orgA, nil)
	sbd, id := arkivmelding(orgA, orgPeer, "")
	out := dpo.Outgoing{SBD: sbd, Payload: payloadOf([]byte("cms"))}
	first, err := a.Send(context.Background(), out)
	require.NoError(t, err, "the broker accepted the upload; its scan fails later")
	ov, err := a.Overview(context.Background(), first)
	require.NoError(t, err)
	require.Equal(t, dpo.StatusFailed, ov.FileTransferStatus)
	assert.Zero(t, e.broker.Report().Deliveries[id])

	out.TransferID = first
	second, err := a.Send(context.Background(), out)
	require.NoError(t, err)
	assert.NotEqual(t, first, second)
	require.Eventually(t, func() bool { return e.broker.Report().Deliveries[id] == 1 }, 5*time.Second, 10*time.Millisecond)
}

func TestClient_MessageChannel(t *testing.T) {
	e := newEnv(t, nil)
	bound := e.client(t, orgA, func(c *dpo.Config) { c.MessageChannel = "kanal-1" })
	plain := e.client(t, orgA, nil)
	sbd, id := arkivmelding(orgA, orgPeer, "kanal-1")
	_, err := bound.Send(context.Background(), dpo.Outgoing{SBD: sbd, Payload: payloadOf([]byte("cms"))})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(e.broker.Report().Statuses[id]) == 2 }, 5*time.Second, 10*time.Millisecond)

	pending, err := plain.Pending(context.Background())
	require.NoError(t, err)
	assert.Empty(t, pending, "answers on a channel are not for the installation without one")
	files := drain(t, bound, 3)
	assert.Equal(t, "kanal-1", files[0].Header.MessageChannel)

	// Our own answer to a message that came on a channel goes back on it.
	reply, err := transport.StatusReply(sbd, "LEVERT", time.Now())
	require.NoError(t, err)
	reply, err = transport.WithSender(reply, "0192:"+orgA) // we answer as the receiver would
	require.NoError(t, err)
	ref, err := bound.Send(context.Background(), dpo.Outgoing{SBD: reply})
	require.NoError(t, err)
	ov, err := bound.Overview(context.Background(), ref)
	require.NoError(t, err)
	assert.Equal(t, "kanal-1", ov.SendersFileTransferReference)
}

func TestClient_DownloadMalformed(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(t, orgC, nil)
	// A sender with a broken integration point: valid transfer, garbage file.
	tok := systemUser{e.iss, orgA}
	ex := e.exchanged(t, tok)
	body, _ := json.Marshal(dpo.InitializeRequest{FileName: dpo.FileName, ResourceID: dpo.DefaultResourceID,
		SendersFileTransferReference: "6c1c3a9e-8f0e-4c8e-9a37-4f8f2b7b9d11", Sender: "0192:" + orgA, Recipients: []string{"0192:" + orgC}})
	var ir dpo.InitializeResponse
	doJSON(t, ex, http.MethodPost, e.srv.URL+dposim.BasePath+"/filetransfer", "application/json", body, &ir)
	doJSON(t, ex, http.MethodPost, e.srv.URL+dposim.BasePath+"/filetransfer/"+ir.FileTransferID+"/upload",
		"application/octet-stream", []byte("not a zip"), nil)

	var pending []dpo.Overview
	require.Eventually(t, func() bool {
		var err error
		pending, err = c.Pending(context.Background())
		return err == nil && len(pending) == 1
	}, 5*time.Second, 10*time.Millisecond)
	_, err := c.Download(context.Background(), pending[0].FileTransferID)
	require.ErrorIs(t, err, transport.ErrMalformed)
	assert.False(t, transport.Retryable(err))
	require.NoError(t, c.Confirm(context.Background(), pending[0].FileTransferID))
	pending, err = c.Pending(context.Background())
	require.NoError(t, err)
	assert.Empty(t, pending)
}

func TestClient_Unauthorised(t *testing.T) {
	e := newEnv(t, nil)
	a := e.client(t, orgA, nil)
	// orgA's system user cannot send as orgC.
	sbd, _ := arkivmelding(orgC, orgPeer, "")
	_, err := a.Send(context.Background(), dpo.Outgoing{SBD: sbd})
	require.ErrorIs(t, err, transport.ErrUnauthorized)
	assert.False(t, transport.Retryable(err))
}

func TestNew_ReportsEveryProblem(t *testing.T) {
	_, err := dpo.New(dpo.Config{BaseURL: "::", MessageChannel: "this-channel-name-is-far-too-long"})
	require.Error(t, err)
	for _, want := range []string{"BaseURL", "Tokens", "MessageChannel"} {
		assert.Contains(t, err.Error(), want)
	}
}

// A crash between download and confirm leaves the transfer in
// DownloadStarted; it must be listed again, or the message (often a
// receipt) is stranded at the broker for good (§2.4).
func TestClient_PendingResumesDownloadStarted(t *testing.T) {
	e := newEnv(t, nil)
	a, c := e.client(t, orgA, nil), e.client(t, orgC, nil)
	sbd, id := arkivmelding(orgA, orgC, "")
	_, err := a.Send(context.Background(), dpo.Outgoing{SBD: sbd, Payload: payloadOf(randomBytes(t, 1<<10))})
	require.NoError(t, err)
	var pending []dpo.Overview
	require.Eventually(t, func() bool {
		pending, err = c.Pending(context.Background())
		return err == nil && len(pending) == 1
	}, 5*time.Second, 10*time.Millisecond)
	f, err := c.Download(context.Background(), pending[0].FileTransferID)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	// The "crash": no confirm. The next run lists the transfer again.
	again, err := c.Pending(context.Background())
	require.NoError(t, err)
	require.Len(t, again, 1, "a transfer left in DownloadStarted is listed again")
	assert.Equal(t, pending[0].FileTransferID, again[0].FileTransferID)
	files := drain(t, c, 1)
	assert.Equal(t, id, files[0].Header.MessageID)
	again, err = c.Pending(context.Background())
	require.NoError(t, err)
	assert.Empty(t, again, "a confirmed transfer is not listed")
}

// TestClient_ReusesConnections: calls from many goroutines at once reuse
// their connections to the broker rather than dialling one per call.
func TestClient_ReusesConnections(t *testing.T) {
	const workers, rounds = 24, 20
	iss, err := altinnsim.NewIssuer()
	require.NoError(t, err)
	auth, err := altinnsim.New(altinnsim.Options{MaskinportenKeys: iss.Keys()})
	require.NoError(t, err)
	broker, err := dposim.New(dposim.Options{Auth: auth, Peers: []string{orgPeer}})
	require.NoError(t, err)
	var dialled atomic.Int64
	mux := httptestMux(auth, broker)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Millisecond) // keeps the workers' calls overlapping
		mux.ServeHTTP(w, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dialled.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(func() { broker.Close(); srv.Close() })
	e := &env{iss: iss, auth: auth, broker: broker, srv: srv}
	c := e.client(t, orgA, nil)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range rounds {
				_, err := c.Pending(context.Background())
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	// The token exchange has its own client; every worker may hold one
	// connection of the client's at a time. Two idle connections per host
	// made 36 to 106 here.
	assert.LessOrEqual(t, dialled.Load(), int64(2*workers), "connections dialled for %d calls", 2*workers*rounds)
}

package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt/message"
	"github.com/efm-go/efm/integrasjonspunkt/store"
)

func TestParseFilter(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"empty", "", true},
		{"one", "status=FEIL", true},
		{"lists and parts", "status=FEIL,LEVETID_UTLOPT&direction=OUTGOING&serviceIdentifier=DPO,DPV", true},
		{"case of names", "Status=feil", true},
		{"unknown name", "color=red", false},
		{"no operator", "status", false},
		{"other operator", "status!=FEIL", false},
		{"empty value", "status=", false},
		{"empty list item", "status=FEIL,", false},
		{"double equals", "status=a=b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFilter(tt.in)
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, ErrFilter)
			}
		})
	}
}

func TestFilter_Match(t *testing.T) {
	f, err := ParseFilter("status=feil,levetid_utlopt&direction=OUTGOING")
	require.NoError(t, err)
	assert.True(t, f.Match(message.StatusEvent{Status: "FEIL", Direction: "OUTGOING"}))
	assert.True(t, f.Match(message.StatusEvent{Status: "LEVETID_UTLOPT", Direction: "OUTGOING"}))
	assert.False(t, f.Match(message.StatusEvent{Status: "LEVERT", Direction: "OUTGOING"}))
	assert.False(t, f.Match(message.StatusEvent{Status: "FEIL", Direction: "INCOMING"}))
}

// FuzzParseFilter: a filter that parses matches an event exactly when every
// part names the event's value (case-insensitively); parsing never panics.
func FuzzParseFilter(f *testing.F) {
	f.Add("status=FEIL,LEVETID_UTLOPT&direction=OUTGOING", "FEIL", "OUTGOING", "DPO")
	f.Add("serviceIdentifier=dpo", "LEVERT", "INCOMING", "DPO")
	f.Add("color=red", "", "", "")
	f.Add("status=&&", "", "", "")
	f.Fuzz(func(t *testing.T, expr, status, direction, service string) {
		flt, err := ParseFilter(expr)
		if err != nil {
			if !errors.Is(err, ErrFilter) {
				t.Fatalf("error does not wrap ErrFilter: %v", err)
			}
			return
		}
		ev := message.StatusEvent{Status: status, Direction: direction, Service: service}
		want := true
		for part := range strings.SplitSeq(expr, "&") {
			if strings.TrimSpace(expr) == "" {
				break
			}
			name, vals, _ := strings.Cut(part, "=")
			got := map[string]string{"status": status, "direction": direction, "serviceidentifier": service}[strings.ToLower(strings.TrimSpace(name))]
			any := false
			for v := range strings.SplitSeq(vals, ",") {
				if strings.EqualFold(strings.TrimSpace(v), got) {
					any = true
				}
			}
			want = want && any
		}
		if flt.Match(ev) != want {
			t.Fatalf("filter %q on %+v: match %v, want %v", expr, ev, !want, want)
		}
	})
}

func openStore(t *testing.T) *store.Store {
	st, err := store.Open(context.Background(), store.Config{Path: filepath.Join(t.TempDir(), "s.db"), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return st
}

// TestNotifier_RetriesThenDrops: 5xx is retried up to three times with a
// growing delay; a 4xx is not retried; Notify never blocks.
func TestNotifier_RetriesThenDrops(t *testing.T) {
	st := openStore(t)
	var calls atomic.Int32
	var mu sync.Mutex
	var times []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/bad") {
			calls.Add(100)
			w.WriteHeader(400)
			return
		}
		calls.Add(1)
		w.WriteHeader(503)
	}))
	defer srv.Close()
	ctx := context.Background()
	require.NoError(t, st.SaveSubscription(ctx, &store.Subscription{Name: "a", PushEndpoint: srv.URL + "/down", Resource: "all", Event: "all"}))
	n := New(Config{Store: st, Logger: slog.New(slog.DiscardHandler), Backoff: 20 * time.Millisecond, Queue: 1})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { n.Run(rctx); close(done) }()
	n.Notify(message.StatusEvent{MessageID: "m", Status: "FEIL", Direction: "OUTGOING", Service: "DPO"})
	require.Eventually(t, func() bool { return calls.Load() == 4 }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	assert.EqualValues(t, 4, calls.Load(), "one attempt and three retries")
	mu.Lock()
	assert.Greater(t, times[3].Sub(times[2]), times[1].Sub(times[0]), "the delay grows")
	mu.Unlock()

	require.NoError(t, st.DeleteAllSubscriptions(ctx))
	require.NoError(t, st.SaveSubscription(ctx, &store.Subscription{Name: "b", PushEndpoint: srv.URL + "/bad", Resource: "messages", Event: "status"}))
	n.Invalidate()
	n.Notify(message.StatusEvent{MessageID: "m2", Status: "LEVERT"})
	require.Eventually(t, func() bool { return calls.Load() == 104 }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	assert.EqualValues(t, 104, calls.Load(), "4xx is not retried")

	start := time.Now()
	for range 10000 {
		n.Notify(message.StatusEvent{MessageID: "flood"})
	}
	assert.Less(t, time.Since(start), time.Second, "Notify does not block when the queue is full")
	cancel()
	<-done
}

func TestNotifier_PingBody(t *testing.T) {
	var body map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
		json.NewDecoder(r.Body).Decode(&body)
	}))
	defer srv.Close()
	n := New(Config{Store: openStore(t), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, n.Ping(context.Background(), srv.URL))
	assert.Equal(t, "ping", body["event"])
	assert.NotEmpty(t, body["createdTs"])
	assert.NotContains(t, body, "resource")
	assert.Error(t, n.Ping(context.Background(), "http://127.0.0.1:1/"))
}

// TestNotifier_ReusesConnections: deliveries in flight at once to one
// endpoint keep their connections instead of dialling one per event.
func TestNotifier_ReusesConnections(t *testing.T) {
	const events = 1000
	st := openStore(t)
	var got, dialled atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		time.Sleep(2 * time.Millisecond) // keeps several deliveries in flight
		got.Add(1)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dialled.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	ctx := context.Background()
	require.NoError(t, st.SaveSubscription(ctx, &store.Subscription{Name: "a", PushEndpoint: srv.URL, Resource: "all", Event: "all"}))
	n := New(Config{Store: st, Logger: slog.New(slog.DiscardHandler)})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { n.Run(rctx); close(done) }()
	for i := range events {
		n.Notify(message.StatusEvent{MessageID: fmt.Sprint(i), Status: "LEVERT", Direction: "OUTGOING", Service: "DPO"})
	}
	require.Eventually(t, func() bool { return got.Load() == events }, 10*time.Second, 10*time.Millisecond)
	cancel()
	<-done
	// 16 deliveries run at once. A slot frees a moment before its
	// connection is back in the pool, so a few more may be dialled; with
	// two idle connections per host it was 30 to 110 for these 1,000.
	assert.LessOrEqual(t, dialled.Load(), int32(2*16), "connections for %d events", events)
}

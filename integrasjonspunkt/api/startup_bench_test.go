package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/integrasjonspunkt"
	"github.com/efm-go/efm/integrasjonspunkt/config"
	"github.com/efm-go/efm/integrasjonspunkt/message"
	"github.com/efm-go/efm/integrasjonspunkt/queue"
	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/integrasjonspunkt/store/storegen"
)

// BenchmarkStartup is the time from starting a daemon to its readiness
// answering 200 (store writable, queue up: the API takes messages), with a
// store of 1 000 000 messages, all delivered or all queued (made once per
// state by storegen, and kept for every -count). It also reports when the
// queue held every queued message again (queue-s): the re-enqueue runs
// beside the API.
//
// "queued" starts each time with an empty queue, as the first start on a
// store made elsewhere or after the queue's files were lost: the whole
// queue is rebuilt from the store. "queued-restart" restarts on the queue
// the previous start left, holding every entry, as after a clean stop.
// "queued-kill" starts on a copy of the queue taken while a daemon ran that
// had just queued every entry, as a kill -9 leaves it: all written, but the
// state files a clean stop writes are older than the entries.
func BenchmarkStartup(b *testing.B) {
	n := 1_000_000
	if testing.Short() {
		n = 10_000
	}
	for _, c := range []struct {
		name  string
		st    storegen.State
		fresh bool // the queue's files removed before each start
		kill  bool // the queue's files as a killed daemon left them
	}{{"delivered", storegen.Delivered, false, false}, {"queued", storegen.Queued, true, false},
		{"queued-restart", storegen.Queued, false, false}, {"queued-kill", storegen.Queued, false, true}} {
		b.Run(fmt.Sprintf("%s/%d", c.name, n), func(b *testing.B) {
			dir := generatedStore(b, c.st, n)
			want := uint64(0)
			if c.st == storegen.Queued {
				want = uint64(n)
			}
			js, killed := filepath.Join(dir, "jetstream"), filepath.Join(dir, "jetstream-killed")
			prepared := startupPrepared[c.name+dir]
			switch {
			case c.kill && !prepared:
				if err := os.RemoveAll(js); err != nil {
					b.Fatal(err)
				}
				startTimed(b, dir, want, func() {
					time.Sleep(time.Second) // the server's buffered writes reach the files
					if err := os.CopyFS(killed, os.DirFS(js)); err != nil {
						b.Fatal(err)
					}
				})
			case !c.fresh && !prepared:
				startTimed(b, dir, want, nil) // the queue as a previous run left it
			}
			startupPrepared[c.name+dir] = true
			var ready, queued time.Duration
			for b.Loop() {
				if c.fresh || c.kill {
					b.StopTimer()
					if err := os.RemoveAll(js); err != nil {
						b.Fatal(err)
					}
					if c.kill {
						if err := os.CopyFS(js, os.DirFS(killed)); err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
				}
				r, q := startTimed(b, dir, want, nil)
				ready += r
				queued += q
			}
			b.ReportMetric(ready.Seconds()/float64(b.N), "ready-s")
			b.ReportMetric(queued.Seconds()/float64(b.N), "queue-s")
		})
	}
}

// The stores BenchmarkStartup generated, by state, kept across -count runs
// (a 1 M store takes minutes to make) and removed by TestMain; and which
// of its cases have prepared their queue in them.
var (
	startupStores   = map[storegen.State]string{}
	startupPrepared = map[string]bool{}
)

func removeStartupStores() {
	for _, d := range startupStores {
		os.RemoveAll(d)
	}
}

// generatedStore gives a data dir whose store holds n messages in state st.
func generatedStore(b *testing.B, st storegen.State, n int) string {
	if d, ok := startupStores[st]; ok {
		return d
	}
	dir, err := os.MkdirTemp("", "efm-startup-")
	if err != nil {
		b.Fatal(err)
	}
	startupStores[st] = dir
	s, err := store.Open(context.Background(), store.Config{Path: filepath.Join(dir, "store.db"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	// Made within the last n ms: a queued message expires a day after its
	// creation, and the daemon's sweep would end it.
	step := time.Millisecond
	if _, err := storegen.Generate(context.Background(), s, storegen.Options{N: n, State: st,
		Start: time.Now().Add(-time.Duration(n) * step), Step: step}); err != nil {
		b.Fatal(err)
	}
	return dir
}

// startTimed runs a daemon on dir until its readiness answers 200 and its
// queue holds want entries, calls running (when set) and stops it.
func startTimed(b *testing.B, dir string, want uint64, running func()) (ready, queued time.Duration) {
	ov := baseOverrides()
	id := businessCertificate(b)
	ov["difi.move.org.keystore.path"] = id.KeystorePath
	ov["difi.move.org.keystore.alias"] = id.Alias
	ov["difi.move.org.keystore.password"] = id.KeystorePassword
	cfg, _, err := config.Load(config.Source{Overrides: ov, DataDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	cfg.Server.Port = 0
	reg := registry(b, ident.Policy{AllowSynthetic: cfg.SyntheticOK}, ov)
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	qc := make(chan *queue.Queue, 1)
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- integrasjonspunkt.Run(ctx, integrasjonspunkt.Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Started: start,
			Listening: func(a net.Addr) { addr <- a },
			Registry:  reg,
			Core:      func(_ *message.Service, q *queue.Queue) { qc <- q },
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a.String()
	case err := <-done:
		b.Fatalf("daemon did not start: %v", err)
	case <-time.After(5 * time.Minute):
		b.Fatal("daemon did not start within 5 minutes")
	}
	q := <-qc
	for {
		res, err := http.Get(base + "/manage/health/readiness")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		time.Sleep(time.Millisecond)
	}
	ready = time.Since(start)
	deadline := time.Now().Add(10 * time.Minute)
	for {
		p, err := q.Pending(context.Background())
		if err == nil && p >= want {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the queue holds %d entries of %d after 10 minutes", p, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	queued = time.Since(start)
	if running != nil {
		running()
	}
	return ready, queued
}

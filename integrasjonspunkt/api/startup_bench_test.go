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
// state by storegen). It also reports when the queue held every queued
// message again (queue-s): the re-enqueue runs beside the API.
//
// "queued" starts each time with an empty queue, as the first start on a
// store made elsewhere or after the queue's files were lost: the whole
// queue is rebuilt from the store. "queued-restart" restarts on the queue
// the previous start left, holding every entry, as after a clean stop.
func BenchmarkStartup(b *testing.B) {
	n := 1_000_000
	if testing.Short() {
		n = 10_000
	}
	for _, c := range []struct {
		name  string
		st    storegen.State
		fresh bool // the queue's files removed before each start
	}{{"delivered", storegen.Delivered, false}, {"queued", storegen.Queued, true}, {"queued-restart", storegen.Queued, false}} {
		st := c.st
		b.Run(fmt.Sprintf("%s/%d", c.name, n), func(b *testing.B) {
			dir := b.TempDir()
			s, err := store.Open(context.Background(), store.Config{Path: filepath.Join(dir, "store.db"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			// Made within the last n ms: a queued message expires a day
			// after its creation, and the daemon's sweep would end it.
			step := time.Millisecond
			if _, err := storegen.Generate(context.Background(), s, storegen.Options{N: n, State: st,
				Start: time.Now().Add(-time.Duration(n) * step), Step: step}); err != nil {
				b.Fatal(err)
			}
			s.Close()
			want := uint64(0)
			if st == storegen.Queued {
				want = uint64(n)
			}
			var ready, queued time.Duration
			if !c.fresh {
				startTimed(b, dir, want) // the queue as a previous run left it
			}
			for b.Loop() {
				if c.fresh {
					b.StopTimer()
					if err := os.RemoveAll(filepath.Join(dir, "jetstream")); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				r, q := startTimed(b, dir, want)
				ready += r
				queued += q
			}
			b.ReportMetric(ready.Seconds()/float64(b.N), "ready-s")
			b.ReportMetric(queued.Seconds()/float64(b.N), "queue-s")
		})
	}
}

// startTimed runs a daemon on dir until its readiness answers 200 and its
// queue holds want entries, and stops it.
func startTimed(b *testing.B, dir string, want uint64) (ready, queued time.Duration) {
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
	return ready, time.Since(start)
}

package integrasjonspunkt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/config"
	"github.com/efm-go/efm/integrasjonspunkt/queue"
	"github.com/efm-go/efm/internal/logattr"
)

// Several daemons of one organisation (README "When one machine is not
// enough"): the store on PostgreSQL, the queue on an external JetStream
// cluster, the shared files in efm.shared.dir, and the work that must run
// once across the group under leases.

// queueConfig is the embedded server under the data dir, or the external
// cluster of efm.queue.url.
func queueConfig(cfg *config.Config, log *slog.Logger) (queue.Config, error) {
	qc := queue.Config{Dir: filepath.Join(cfg.DataDir, "jetstream"), Port: cfg.QueuePort, Logger: log}
	qc.URLs = cfg.QueueURLs()
	if len(qc.URLs) == 0 {
		return qc, nil
	}
	qc.Credentials, qc.NKey, qc.Name = cfg.Value("efm.queue.credentials"), cfg.Value("efm.queue.nkey"), nodeName(cfg)
	qc.Replicas, _ = strconv.Atoi(cfg.Value("efm.queue.replicas"))
	// A daemon that dies leaves its entries to the others after this; a
	// live one extends it while it works.
	qc.AckWait = 30 * time.Second
	ca, cert, key := cfg.Value("efm.queue.tls.ca"), cfg.Value("efm.queue.tls.cert"), cfg.Value("efm.queue.tls.key")
	if ca == "" && cert == "" && key == "" {
		return qc, nil
	}
	qc.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return qc, fmt.Errorf("efm.queue.tls.ca: %w", err)
		}
		qc.TLS.RootCAs = x509.NewCertPool()
		if !qc.TLS.RootCAs.AppendCertsFromPEM(pem) {
			return qc, fmt.Errorf("efm.queue.tls.ca: no PEM certificate in %s", ca)
		}
	}
	if (cert == "") != (key == "") {
		return qc, errors.New("efm.queue.tls.cert and efm.queue.tls.key go together")
	}
	if cert != "" {
		kp, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return qc, fmt.Errorf("efm.queue.tls.cert: %w", err)
		}
		qc.TLS.Certificates = []tls.Certificate{kp}
	}
	return qc, nil
}

// nodeName names this daemon among the group's: efm.node.name, else host
// name and API port, stable across restarts so a restarted daemon takes its
// own leases back at once.
func nodeName(cfg *config.Config) string {
	if n := cfg.Value("efm.node.name"); n != "" {
		return n
	}
	h, _ := os.Hostname()
	return fmt.Sprintf("%s:%d", h, cfg.Server.Port)
}

// sharedDir holds what every daemon of a group reads and writes: the
// payload files (a message accepted by one daemon is sent by another), the
// pipeline's per-message channel ledger, and the payload and pseudonym keys.
// One daemon alone keeps them in its data dir.
func sharedDir(cfg *config.Config) string {
	if d := cfg.Value("efm.shared.dir"); d != "" {
		return d
	}
	return cfg.DataDir
}

// group hands out the leases of the work that runs once across the daemons
// of a group, each taken on first ask and renewed until ctx ends. One daemon
// alone (the embedded queue) holds them all without asking.
type group struct {
	ctx    context.Context
	q      *queue.Queue
	holder string
	log    *slog.Logger
	solo   bool

	mu sync.Mutex
	m  map[string]*queue.Lease
	wg sync.WaitGroup
}

func newGroup(ctx context.Context, cfg *config.Config, q *queue.Queue, log *slog.Logger) *group {
	return &group{ctx: ctx, q: q, holder: nodeName(cfg), log: log, solo: len(cfg.QueueURLs()) == 0, m: map[string]*queue.Lease{}}
}

// Leads reports whether this daemon holds the named lease now.
func (g *group) Leads(name string) bool {
	if g.solo {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if l, ok := g.m[name]; ok {
		return l.Held()
	}
	if g.ctx.Err() != nil {
		return false
	}
	l, err := g.q.Lease(g.ctx, name, g.holder)
	if err != nil {
		g.log.Warn("opening lease", slog.String("lease", name), logattr.Err(err))
		return false
	}
	g.m[name] = l
	held := l.Take(g.ctx)
	g.wg.Add(1)
	go func() { defer g.wg.Done(); l.Run(g.ctx) }()
	return held
}

// Wait returns once every lease is given up (after ctx ended).
func (g *group) Wait() { g.wg.Wait() }

// whileLeading runs fn while this daemon holds the named lease: started when
// it is taken, cancelled when it is lost, started again when taken again.
func (g *group) whileLeading(ctx context.Context, name string, fn func(context.Context) error) error {
	if g.solo {
		return fn(ctx)
	}
	t := time.NewTicker(queue.LeaseTTL / 6)
	defer t.Stop()
	for {
		if g.Leads(name) {
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- fn(rctx) }()
		running:
			for {
				select {
				case err := <-done:
					cancel()
					if ctx.Err() != nil || err != nil {
						return err
					}
					break running
				case <-t.C:
					if !g.Leads(name) {
						cancel()
						<-done
						break running
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

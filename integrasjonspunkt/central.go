package integrasjonspunkt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/api"
	"github.com/efm-go/efm/integrasjonspunkt/config"
	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/internal/logattr"
	"github.com/efm-go/efm/packaging/keystore"
)

// newShipper builds the central-log shipper (operations.md §5.4): mutual TLS
// with the agency's own business certificate, so the central side learns the
// organisation from the certificate and no shared secret exists. It returns
// nil when no central log is configured or the certificate is unusable; the
// outbox keeps every event until one is.
func newShipper(cfg *config.Config, st *store.Store, ks *keystore.Keystore, log *slog.Logger) (*events.Shipper, error) {
	url := cfg.Value("efm.events.url")
	if url == "" || cfg.Value("efm.events.enabled") == "false" {
		log.Info("central log not configured; events stay in the outbox", logattr.Key("efm.events.url"))
		return nil, nil
	}
	if ks == nil {
		return nil, nil
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if ca := cfg.Value("efm.events.trusted-ca"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("reading efm.events.trusted-ca: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("efm.events.trusted-ca %s holds no PEM certificate", ca)
		}
	}
	chain := [][]byte{ks.Cert.Raw}
	for _, c := range ks.Chain {
		chain = append(chain, c.Raw)
	}
	return events.NewShipper(events.ShipperConfig{
		URL:             url,
		Client:          events.MutualTLSClient(tls.Certificate{Certificate: chain, PrivateKey: ks.Key, Leaf: ks.Cert}, roots),
		Outbox:          st,
		Logger:          log.With(logattr.Component("central-log")),
		MaxBacklogAge:   cfg.Duration("efm.events.max-backlog-age", 30*24*time.Hour),
		MaxBacklogBytes: cfg.Size("efm.events.max-backlog-bytes", 256<<20),
	})
}

// recordStart writes installation.started to the outbox: central operations'
// fleet view (versions, channels, API majors) comes from it.
func recordStart(ctx context.Context, cfg *config.Config, st *store.Store, b *events.Builder) error {
	chs := make([]events.ServiceID, 0, len(cfg.Enabled))
	for _, c := range cfg.Enabled {
		chs = append(chs, events.ServiceID(c))
	}
	majors := make([]string, 0, len(APIMajors))
	for m := range APIMajors {
		majors = append(majors, m)
	}
	typ, body, err := b.InstallationStarted(runtime.GOOS, runtime.GOARCH, chs, majors)
	if err != nil {
		return fmt.Errorf("building installation.started: %w", err)
	}
	return st.Update(ctx, func(tx *store.Tx) error { return tx.InsertEvent(string(typ), body, time.Now()) })
}

// centralLogHealth is the central-log component: DEGRADED after an hour of
// backlog, never DOWN (the daemon still does its job without it).
func centralLogHealth(sh *events.Shipper) func(context.Context) api.Component {
	return func(ctx context.Context) api.Component {
		if sh == nil {
			return api.Component{Status: api.Up, Details: map[string]any{"shipping": "not configured"}}
		}
		h := sh.Health(ctx)
		d := map[string]any{"backlogEvents": h.BacklogEvents}
		if h.OldestAge != "" {
			d["oldestAge"] = h.OldestAge
		}
		if !h.LastSuccess.IsZero() {
			d["lastSuccess"] = h.LastSuccess
		}
		if h.Reason != "" {
			d["reason"] = h.Reason
		}
		return api.Component{Status: h.Status, Details: d}
	}
}

// heartbeat writes installation.heartbeat once a day: central operations
// alert on installations silent for two days (operations.md §5.4).
func heartbeat(ctx context.Context, st *store.Store, b *events.Builder, ks *keystore.Keystore, every time.Duration, log *slog.Logger) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := recordHeartbeat(ctx, st, b, ks); err != nil {
			log.Warn("recording the daily heartbeat", logattr.Err(err))
		}
	}
}

func recordHeartbeat(ctx context.Context, st *store.Store, b *events.Builder, ks *keystore.Keystore) error {
	counts, err := st.UnfinishedByService(ctx)
	if err != nil {
		return err
	}
	var sc []events.ServiceCount
	for svc, n := range counts {
		sc = append(sc, events.ServiceCount{Service: events.ServiceID(svc), Count: n})
	}
	var notAfter time.Time
	if ks != nil {
		notAfter = ks.Cert.NotAfter
	}
	typ, body, err := b.InstallationHeartbeat(sc, notAfter)
	if err != nil {
		return fmt.Errorf("building installation.heartbeat: %w", err)
	}
	return st.Update(ctx, func(tx *store.Tx) error { return tx.InsertEvent(string(typ), body, time.Now()) })
}

package queue

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/efm-go/efm/internal/logattr"
)

// openExternal connects to an external JetStream cluster. The connection
// reconnects forever: a cluster node going away moves the client to another,
// and a whole cluster restarting only pauses the daemon's sending.
func openExternal(ctx context.Context, cfg Config, log *slog.Logger) (*Queue, error) {
	name := cfg.Name
	if name == "" {
		name = "integrasjonspunkt"
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from the nats cluster", logattr.Err(err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("reconnected to the nats cluster", slog.String("server", nc.ConnectedUrlRedacted()))
		}),
	}
	if cfg.Credentials != "" {
		opts = append(opts, nats.UserCredentials(cfg.Credentials))
	}
	if cfg.NKey != "" {
		o, err := nats.NkeyOptionFromSeed(cfg.NKey)
		if err != nil {
			return nil, fmt.Errorf("reading the nkey seed %s: %w", cfg.NKey, err)
		}
		opts = append(opts, o)
	}
	if cfg.TLS != nil {
		opts = append(opts, nats.Secure(cfg.TLS))
	}
	nc, err := nats.Connect(strings.Join(cfg.URLs, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to the nats cluster %s: %w", strings.Join(cfg.URLs, ","), err)
	}
	replicas := cfg.Replicas
	if replicas <= 0 {
		replicas = 1
	}
	q := &Queue{ready: make(chan struct{}), nc: nc, log: log, replicas: replicas, ackWait: cfg.AckWait}
	close(q.ready)
	// A cluster that is still electing its meta leader (all nodes starting
	// together, a loaded machine) answers stream creation with 503 for a
	// while.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err = q.setup(ctx)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		q.Close()
		return nil, err
	}
	log.Info("queue on an external nats cluster", slog.String("server", nc.ConnectedUrlRedacted()), slog.Int("replicas", replicas))
	return q, nil
}

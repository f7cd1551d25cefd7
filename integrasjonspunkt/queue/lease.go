package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/efm-go/efm/internal/logattr"
)

// Leases: the pollers and sweeps run once across a group of daemons. Each is
// a key in a JetStream key-value bucket whose entries expire LeaseTTL after
// their last write. A daemon holds a lease while its holder name is the
// key's value: it takes a free key with Create (which fails while another
// holder's value lives) and keeps it with Update at the revision it last
// wrote (which fails once another holder has taken it). A daemon that dies
// stops renewing; its key expires and another takes it within LeaseTTL.
// JetStream's compare-and-set does the deciding, replicated with the
// stream; nothing here votes or times out by itself.

const leaseBucket = "efm_leases"

// LeaseTTL is how long a dead holder keeps a lease; a live one renews it
// three times as often.
const LeaseTTL = 6 * time.Second

// Lease is one named role held by at most one daemon of a group.
type Lease struct {
	kv     jetstream.KeyValue
	name   string
	holder string
	log    *slog.Logger
	held   atomic.Bool
	rev    uint64
}

// Lease returns the lease on name for holder (a name unique to this daemon,
// stable across its restarts). It is not held until Run has taken it.
func (q *Queue) Lease(ctx context.Context, name, holder string) (*Lease, error) {
	if err := q.Wait(ctx); err != nil {
		return nil, err
	}
	kv, err := q.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:   leaseBucket,
		TTL:      LeaseTTL,
		Storage:  jetstream.FileStorage,
		Replicas: q.replicas,
		History:  1,
	})
	if err != nil {
		return nil, fmt.Errorf("opening the lease bucket: %w", err)
	}
	return &Lease{kv: kv, name: name, holder: holder, log: q.log.With(slog.String("lease", name))}, nil
}

// Held reports whether this daemon holds the lease now. A poller asks before
// each run.
func (l *Lease) Held() bool { return l.held.Load() }

// Run takes and renews the lease until ctx ends, then gives it up so another
// daemon need not wait for it to expire.
func (l *Lease) Run(ctx context.Context) {
	t := time.NewTicker(LeaseTTL / 3)
	defer t.Stop()
	for {
		l.try(ctx)
		select {
		case <-ctx.Done():
			if l.held.Swap(false) {
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
				_ = l.kv.Delete(cctx, l.name, jetstream.LastRevision(l.rev))
				cancel()
			}
			return
		case <-t.C:
		}
	}
}

func (l *Lease) try(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, LeaseTTL/3)
	defer cancel()
	if l.held.Load() {
		rev, err := l.kv.Update(ctx, l.name, []byte(l.holder), l.rev)
		if err == nil {
			l.rev = rev
			return
		}
		// Lost, or the cluster did not answer: either way this daemon can
		// no longer be sure it is the only one, so it stops.
		l.held.Store(false)
		l.log.Warn("lease lost", logattr.Err(err))
	}
	rev, err := l.kv.Create(ctx, l.name, []byte(l.holder))
	if errors.Is(err, jetstream.ErrKeyExists) {
		// Ours from before a restart or a lost answer: take it back.
		e, gerr := l.kv.Get(ctx, l.name)
		if gerr != nil || string(e.Value()) != l.holder {
			return
		}
		rev, err = l.kv.Update(ctx, l.name, []byte(l.holder), e.Revision())
	}
	if err != nil {
		return
	}
	l.rev = rev
	l.held.Store(true)
	l.log.Info("lease taken", slog.String("holder", l.holder))
}

// Take tries once to take the lease, before Run starts renewing it, so a
// poller asking at start need not wait a renewal period.
func (l *Lease) Take(ctx context.Context) bool {
	l.try(ctx)
	return l.Held()
}

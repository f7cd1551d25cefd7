// Package queue is the daemon's work queue: an embedded NATS JetStream server
// with a work-queue stream. The queue only says "work on message X now"; the
// store says what X is and where it got to (DESIGN.md), so the queue can be
// rebuilt from the store at any start.
//
// Several daemons of one organisation share an external JetStream cluster
// instead (Config.URLs): the stream is replicated, and the daemons pull from
// one durable consumer, so each entry is worked by one daemon at a time.
package queue

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/efm-go/efm/internal/logattr"
)

const (
	streamName = "OUTGOING"
	subject    = "efm.outgoing"
	consumer   = "pipeline"
)

// dedupWindow is the stream's duplicates window, the least JetStream takes.
// Entries carry no message id: at every start JetStream reads back each
// message inside the window to rebuild its duplicate map, which at 1 M
// queued entries took most of a restart (issue 18). The guard against a
// second entry of a message is its subject instead (Enqueue).
const dedupWindow = 100 * time.Millisecond

// Config says where the queue keeps its files and whether it listens.
type Config struct {
	Dir    string       // JetStream store dir; must not be empty unless URLs is set
	Port   int          // TCP port on loopback for external tools; 0 opens none
	Logger *slog.Logger // must not be nil

	// URLs, when set, are the nats:// (or tls://) servers of an external
	// JetStream cluster; no embedded server starts then.
	URLs        []string
	Credentials string      // .creds file (user JWT and NKey seed); optional
	NKey        string      // NKey seed file; optional
	TLS         *tls.Config // optional
	Replicas    int         // the stream's and the lease bucket's replicas; 0 means 1
	Name        string      // this client's name as the servers show it

	// AckWait is how long an entry a daemon took stays its own without a
	// word from it; then another daemon gets it. A running handler extends
	// it, so it bounds only how long a dead daemon's entries wait.
	// 0 means 5 minutes.
	AckWait time.Duration
}

// Queue is the running embedded server and its in-process client.
type Queue struct {
	// ready is closed once the stream is usable or could not be made so
	// (err). The fields below ns are set before it closes.
	ready chan struct{}
	err   error

	ns       *server.Server // nil on an external cluster
	nc       *nats.Conn
	js       jetstream.JetStream
	st       jetstream.Stream
	log      *slog.Logger
	replicas int
	ackWait  time.Duration
}

// ErrLoading is what Check and Pending say while the embedded server still
// reads its stream back (Start).
var ErrLoading = errors.New("the queue is loading its stream")

// Open starts the embedded server, connects in process and makes sure the
// stream exists, and returns once the stream is usable.
func Open(ctx context.Context, cfg Config) (*Queue, error) {
	q, err := Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := q.Wait(ctx); err != nil {
		q.Close()
		return nil, err
	}
	return q, nil
}

// Start is Open without waiting for the embedded server to read its stream
// back, which at 1 M queued entries takes seconds after a kill -9 (issue 18)
// while nothing a 2xx promises needs it: the store is the truth, and a
// send's entry (EnqueueAsync) is published once the stream is there. Every
// method waits for the stream but Check, Pending and EnqueueAsync, which do
// not block meanwhile; Wait says
// whether it came up. An external cluster is connected before Start returns.
func Start(ctx context.Context, cfg Config) (*Queue, error) {
	log := cfg.Logger.With(logattr.Component("queue"))
	if len(cfg.URLs) > 0 {
		return openExternal(ctx, cfg, log)
	}
	opts := &server.Options{
		ServerName:         "integrasjonspunkt",
		JetStream:          true,
		JetStreamMaxMemory: 64 << 20,
		StoreDir:           cfg.Dir,
		NoSigs:             true, // the daemon owns signals
		DontListen:         cfg.Port == 0,
		Host:               "127.0.0.1",
		Port:               cfg.Port,
		MaxPayload:         64 << 10, // entries are message ids, never payloads
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("configuring embedded nats: %w", err)
	}
	ns.SetLoggerV2(natsLogger{log}, false, false, false)
	q := &Queue{ready: make(chan struct{}), ns: ns, log: log, replicas: 1, ackWait: cfg.AckWait}
	go func() {
		defer close(q.ready)
		q.err = q.startEmbedded(ctx)
	}()
	return q, nil
}

// startEmbedded runs the embedded server: its start reads every stream back.
func (q *Queue) startEmbedded(ctx context.Context) error {
	q.ns.Start()
	if !q.ns.ReadyForConnections(30 * time.Second) {
		return errors.New("embedded nats did not become ready within 30s")
	}
	nc, err := nats.Connect("", nats.InProcessServer(q.ns), nats.Name("integrasjonspunkt"))
	if err != nil {
		return fmt.Errorf("connecting to embedded nats: %w", err)
	}
	q.nc = nc
	return q.setup(ctx)
}

// Wait returns once the stream is usable, with the error that kept it from
// being so, or when ctx ends.
func (q *Queue) Wait(ctx context.Context) error {
	select {
	case <-q.ready:
		return q.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loaded is Wait without waiting: ErrLoading while the stream loads.
func (q *Queue) loaded() error {
	select {
	case <-q.ready:
		return q.err
	default:
		return ErrLoading
	}
}

func (q *Queue) setup(ctx context.Context) error {
	var err error
	// An asynchronous publish (EnqueueAsync, Requeue) that fails or gets no
	// ack within enqueueAckWait is reported here: the message stays queued
	// in the store, where the sweep or the next start finds it.
	q.js, err = jetstream.New(q.nc, jetstream.WithPublishAsyncTimeout(enqueueAckWait),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			if alreadyQueued(err) || q.nc.IsClosed() {
				return // the message has its entry; or the daemon is stopping, and the start requeues
			}
			q.log.Warn("enqueueing message; the sweep will queue it", logattr.MessageID(string(m.Data)), logattr.Err(err))
		}))
	if err != nil {
		return fmt.Errorf("opening jetstream: %w", err)
	}
	q.st, err = q.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: streamName,
		// The bare subject holds entries an older version wrote; they are
		// consumed as before.
		Subjects:   []string{subject, subject + ".*"},
		Retention:  jetstream.WorkQueuePolicy,
		Storage:    jetstream.FileStorage,
		Duplicates: dedupWindow,
		Discard:    jetstream.DiscardNew,
		Replicas:   q.replicas,
	})
	if err != nil {
		return fmt.Errorf("creating stream %s: %w", streamName, err)
	}
	return nil
}

// Close drains the client and shuts the server down cleanly, so JetStream's
// files are consistent for the next start. A stream still loading is let
// finish first: the server cannot be stopped halfway.
func (q *Queue) Close() error {
	<-q.ready
	if q.nc != nil {
		q.nc.Close()
	}
	if q.ns != nil {
		q.ns.Shutdown()
		q.ns.WaitForShutdown()
	}
	return nil
}

// entrySubject gives each message its own subject, so Remove can purge its
// entry without scanning the stream. A digest keeps any id a valid token.
func entrySubject(messageID string) string {
	sum := sha256.Sum256([]byte(messageID))
	return subject + "." + hex.EncodeToString(sum[:16])
}

// Enqueue asks for work on a message. An entry is added only when the
// message has none in the stream (its subject's last sequence must be 0):
// one waiting or being worked on is kept, and no second one appears,
// however long ago the first was published; an entry worked off or removed
// lets the message be queued again.
func (q *Queue) Enqueue(ctx context.Context, messageID string) error {
	if err := q.Wait(ctx); err != nil {
		return fmt.Errorf("enqueueing message: %w", err)
	}
	_, err := q.js.Publish(ctx, entrySubject(messageID), []byte(messageID), jetstream.WithExpectLastSequencePerSubject(0))
	if err != nil && !alreadyQueued(err) {
		return fmt.Errorf("enqueueing message: %w", err)
	}
	return nil
}

// alreadyQueued reports whether a publish was refused because the message's
// subject holds an entry.
func alreadyQueued(err error) bool {
	var je jetstream.JetStreamError
	return errors.As(err, &je) && je.APIError() != nil && (je.APIError().ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		je.APIError().ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// enqueueAckWait bounds how long an asynchronous publish waits for
// JetStream's ack.
const enqueueAckWait = time.Minute

// EnqueueAsync is Enqueue without waiting for JetStream's ack: the publish
// is on its way when it returns, and a failed or missing ack is logged (see
// setup). For callers whose message is already committed to the store: the
// store is the truth, and a lost entry is put back by the pipeline's sweep or
// the next start's Requeue. While the stream still loads at start, the
// publish waits for it off the caller's path. An error means the publish did
// not leave.
func (q *Queue) EnqueueAsync(messageID string) error {
	if err := q.loaded(); errors.Is(err, ErrLoading) {
		go func() {
			if err := q.Enqueue(context.Background(), messageID); err != nil {
				q.log.Warn("enqueueing message; the sweep will queue it", logattr.MessageID(messageID), logattr.Err(err))
			}
		}()
		return nil
	} else if err != nil {
		return fmt.Errorf("enqueueing message: %w", err)
	}
	if _, err := q.js.PublishAsync(entrySubject(messageID), []byte(messageID), jetstream.WithExpectLastSequencePerSubject(0)); err != nil {
		return fmt.Errorf("enqueueing message: %w", err)
	}
	return nil
}

// Requeue puts back the entries of messages that should be queued, in one
// round of asynchronous publishes: what the start rebuilds from the store.
// Each is guarded as Enqueue's is, so a message still waiting, or a
// client's repeated send racing the requeue, gets no second entry. It
// returns how many entries were added.
func (q *Queue) Requeue(ctx context.Context, ids []string) (int, error) {
	if err := q.Wait(ctx); err != nil {
		return 0, fmt.Errorf("re-enqueueing message: %w", err)
	}
	futs := make([]jetstream.PubAckFuture, 0, len(ids))
	for _, id := range ids {
		f, err := q.js.PublishAsync(entrySubject(id), []byte(id), jetstream.WithExpectLastSequencePerSubject(0))
		if err != nil {
			return 0, fmt.Errorf("re-enqueueing message: %w", err)
		}
		futs = append(futs, f)
	}
	added := 0
	for _, f := range futs {
		select {
		case <-f.Ok():
			added++
		case err := <-f.Err():
			if alreadyQueued(err) {
				continue
			}
			return added, fmt.Errorf("re-enqueueing message: %w", err)
		case <-ctx.Done():
			return added, ctx.Err()
		}
	}
	return added, nil
}

// Remove drops a message's entry: the pipeline's sweep did the work the
// queue did not deliver, and the entry would otherwise count as pending
// until a redelivery that may never come.
func (q *Queue) Remove(ctx context.Context, messageID string) error {
	if err := q.Wait(ctx); err != nil {
		return fmt.Errorf("removing queue entry: %w", err)
	}
	if err := q.st.Purge(ctx, jetstream.WithPurgeSubject(entrySubject(messageID))); err != nil {
		return fmt.Errorf("removing queue entry: %w", err)
	}
	return nil
}

// Pending is the number of entries waiting in the stream.
func (q *Queue) Pending(ctx context.Context) (uint64, error) {
	if err := q.loaded(); err != nil {
		return 0, err
	}
	info, err := q.st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("reading stream info: %w", err)
	}
	return info.State.Msgs, nil
}

// Check reports whether JetStream runs and the stream exists: health's queue
// component. While the stream loads it says ErrLoading.
func (q *Queue) Check(ctx context.Context) error {
	if err := q.loaded(); err != nil {
		return err
	}
	if q.ns != nil && !q.ns.JetStreamEnabled() {
		return errors.New("jetstream is not running")
	}
	if q.ns == nil && !q.nc.IsConnected() {
		return fmt.Errorf("not connected to the nats cluster (%s)", q.nc.Status())
	}
	_, err := q.Pending(ctx)
	return err
}

// Handler works on one message. Returning nil acknowledges the entry; an error
// puts it back after the returned delay (or after a default back-off when the
// error is not a *RetryError).
type Handler func(ctx context.Context, messageID string) error

// RetryError asks for redelivery after Delay.
type RetryError struct {
	Delay time.Duration
	Err   error
}

func (e *RetryError) Error() string { return e.Err.Error() }
func (e *RetryError) Unwrap() error { return e.Err }

// Consume runs h on entries with at most concurrency at a time until ctx is
// done; then it stops fetching, lets running handlers finish, and returns.
func (q *Queue) Consume(ctx context.Context, concurrency int, h Handler) error {
	if err := q.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("opening the queue: %w", err)
	}
	// MaxAckPending is unlimited: an entry put back with a delay stays
	// pending until redelivered, so a cap let one channel's retries (a
	// broker answering 503) hold every slot and starve the other channels.
	// The handler semaphore below bounds the work instead.
	cc := jetstream.ConsumerConfig{
		Durable:       consumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       q.ackWaitOr(),
		MaxAckPending: -1,
		MaxDeliver:    -1, // the store decides when a message is given up (dead letters, TTL)
	}
	c, err := q.st.CreateOrUpdateConsumer(ctx, cc)
	// A cluster electing a leader (a node just died) answers 503 for a
	// while; the embedded server never does.
	for err != nil && q.ns == nil && ctx.Err() == nil {
		q.log.Warn("creating the queue consumer; trying again", logattr.Err(err))
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
		c, err = q.st.CreateOrUpdateConsumer(ctx, cc)
	}
	if err != nil {
		return fmt.Errorf("creating consumer: %w", err)
	}
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for ctx.Err() == nil {
		batch, err := c.Fetch(concurrency, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			q.log.Warn("fetching from queue", logattr.Err(err))
			time.Sleep(time.Second)
			continue
		}
		for m := range batch.Messages() {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				q.handle(ctx, m, h)
			}()
		}
	}
	return nil
}

func (q *Queue) handle(ctx context.Context, m jetstream.Msg, h Handler) {
	id := string(m.Data())
	// While the handler works the entry stays this daemon's: another daemon
	// gets it only when this one stops saying so (it died).
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(q.ackWaitOr() / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	}()
	// A handler already running finishes its step even while the daemon stops
	// (the drain of operations.md §1.8); only fetching stops at ctx.
	err := h(context.WithoutCancel(ctx), id)
	close(stop)
	if err == nil {
		if err := m.Ack(); err != nil {
			q.log.Warn("acknowledging queue entry", logattr.MessageID(id), logattr.Err(err))
		}
		return
	}
	delay := 5 * time.Second
	var re *RetryError
	if errors.As(err, &re) {
		delay = re.Delay
	}
	if err := m.NakWithDelay(delay); err != nil {
		q.log.Warn("returning queue entry", logattr.MessageID(id), logattr.Err(err))
	}
}

func (q *Queue) ackWaitOr() time.Duration {
	if q.ackWait > 0 {
		return q.ackWait
	}
	return 5 * time.Minute
}

// natsLogger adapts the embedded server's logger to slog.
type natsLogger struct{ log *slog.Logger }

func (l natsLogger) Noticef(f string, v ...any) { l.log.Debug(fmt.Sprintf(f, v...)) }
func (l natsLogger) Warnf(f string, v ...any)   { l.log.Warn(fmt.Sprintf(f, v...)) }
func (l natsLogger) Fatalf(f string, v ...any)  { l.log.Error(fmt.Sprintf(f, v...)) }
func (l natsLogger) Errorf(f string, v ...any)  { l.log.Error(fmt.Sprintf(f, v...)) }
func (l natsLogger) Debugf(f string, v ...any)  { l.log.Debug(fmt.Sprintf(f, v...)) }
func (l natsLogger) Tracef(f string, v ...any)  {}

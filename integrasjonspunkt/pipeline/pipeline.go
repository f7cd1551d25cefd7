package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/efm-go/efm/addressing"
	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/integrasjonspunkt/message"
	"github.com/efm-go/efm/integrasjonspunkt/queue"
	"github.com/efm-go/efm/integrasjonspunkt/sbd"
	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/internal/logattr"
	"github.com/efm-go/efm/packaging/asic"
	"github.com/efm-go/efm/transport"
)

// DefaultBackoff is the redelivery schedule of channels.md §1.3: 20 s, then
// ×3 each time, capped at one hour.
var DefaultBackoff = []time.Duration{20 * time.Second, time.Minute, 3 * time.Minute, 9 * time.Minute, 27 * time.Minute, time.Hour}

// Consumer is what the pipeline needs from the work queue; *queue.Queue
// satisfies it.
type Consumer interface {
	Consume(ctx context.Context, concurrency int, h queue.Handler) error
}

// Config holds the pipeline's dependencies and settings.
type Config struct {
	Messages *message.Service // must not be nil
	Queue    Consumer         // must not be nil
	Resolver Resolver         // must not be nil
	Packer   Packer           // must not be nil when a channel encrypts
	Unpacker Unpacker         // must not be nil when a channel has an Inbox
	// Channels by service identifier (DPO, DPV, DPE, ...).
	Channels map[string]Registration
	// Dir holds the pipeline's checkpoints and spooled packages; must not
	// be empty. Put it under the data dir, on the same file system.
	Dir    string
	Logger *slog.Logger // must not be nil
	// SharedDir says Dir is shared with the other daemons of a group
	// (efm.shared.dir): the checkpoints there are read from disk on every
	// use, so the daemon that takes over a killed one's message finds them.
	SharedDir bool

	// OrgNumber is our own organisation number (nine digits), the sender
	// in the eFormidling manifest when the SBD names none.
	OrgNumber string
	// Concurrency is difi.move.queue.concurrency; default 10.
	Concurrency int
	// Backoff is the redelivery schedule; the last delay repeats. Default
	// DefaultBackoff.
	Backoff []time.Duration
	// MaxAttempts is 5 + difi.move.queue.maximum-retry-hours (default 105):
	// the failed attempts after which a message goes to the dead letters.
	MaxAttempts int
	// ReplyInterval is how often the status replies owed to other
	// integration points are sent; default 5 s (receiving a message also
	// wakes the sender).
	ReplyInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Unfinished lists the outgoing messages without a final status
	// (store.UnfinishedOutgoing); nil turns the sweep off. The store, not
	// the queue, is the source of truth: after a SIGKILL the queue's
	// consumer may hold entries until its ack wait runs out (minutes), and
	// JetStream can lose the tail of its stream while the consumer's state
	// remembers it, which stalls new entries. So at start the pipeline
	// drives every unfinished message once itself, and then every
	// SweepInterval each queued message the queue has left alone for
	// longer than SweepGrace; a late redelivery finds it done.
	Unfinished func(ctx context.Context) ([]string, error)
	// SweepInterval is how often the sweep runs; default 1 min.
	SweepInterval time.Duration
	// SweepGrace is how long a queued message may wait for the queue
	// before the sweep takes it; default 1 min.
	SweepGrace time.Duration
	// APIBurst reports a burst of send requests at the local API; while it
	// lasts the pipeline runs one send at a time and leaves the cores to
	// the burst. nil: never.
	APIBurst func() bool
	// ArkivmeldingReceipts is difi.move.arkivmelding.generate-arkivmelding-receipts:
	// on the first LEVERT of an arkivmelding on a polled channel (DPV) an
	// arkivmelding_kvittering OK is put on our own incoming queue, so
	// clients see the flow they know from DPO (channels.md §3.5).
	ArkivmeldingReceipts bool
	// StatusBackoffThreshold and StatusBackoffMax shape the status polling
	// back-off of channels.md §1.6: a tracked message is polled every
	// PollInterval just after its last change, growing linearly to every
	// StatusBackoffMax once it has been unchanged for StatusBackoffThreshold.
	// Defaults 30 days and 60 min.
	StatusBackoffThreshold time.Duration
	StatusBackoffMax       time.Duration
	// Leads, when set, says whether this daemon runs the named poller or
	// sweep now: several daemons of one group run each once, under a lease.
	// nil: this daemon runs them all.
	Leads func(name string) bool
	// Claim, when set, makes this daemon the only one of its group working
	// on a message until release (store.ClaimMessage); ok false means
	// another daemon has it. nil: no other daemon exists.
	Claim func(ctx context.Context, messageID string) (release func(), ok bool, err error)
}

// Pipeline is the worker and its pollers.
type Pipeline struct {
	cfg    Config
	log    *slog.Logger
	ledger *ledger
	spool  string
	wake   chan struct{}
	// busy holds the ids being worked on: a message is never handled by
	// two goroutines at once (the resume at start and a redelivery may
	// meet).
	busy sync.Map
	// gate keeps one channel from taking every worker.
	gate *gate

	burstMu   sync.Mutex
	burstNext time.Time // when the next send may start during an API burst

	// sent holds unfinished messages the sweep found already sent (they
	// wait for receipts and never need the sweep again); only the sweep's
	// goroutine touches it.
	sent map[string]bool
	// states follows each channel's service for health and metrics.
	states *channelStates
}

// New checks cfg and returns the pipeline.
func New(cfg Config) (*Pipeline, error) {
	var errs []error
	if cfg.Messages == nil {
		errs = append(errs, errors.New("pipeline: Messages is required"))
	}
	if cfg.Queue == nil {
		errs = append(errs, errors.New("pipeline: Queue is required"))
	}
	if cfg.Resolver == nil {
		errs = append(errs, errors.New("pipeline: Resolver is required"))
	}
	if cfg.Dir == "" {
		errs = append(errs, errors.New("pipeline: Dir is required"))
	}
	if cfg.Logger == nil {
		errs = append(errs, errors.New("pipeline: Logger is required"))
	}
	for name, r := range cfg.Channels {
		if r.Channel == nil {
			errs = append(errs, fmt.Errorf("pipeline: channel %s has no Channel", name))
		}
		if r.Packaging.Encrypt && cfg.Packer == nil {
			errs = append(errs, fmt.Errorf("pipeline: channel %s encrypts but there is no Packer", name))
		}
		if r.Inbox != nil && cfg.Unpacker == nil {
			errs = append(errs, fmt.Errorf("pipeline: channel %s receives but there is no Unpacker", name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 10
	}
	if len(cfg.Backoff) == 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 105
	}
	if cfg.ReplyInterval <= 0 {
		cfg.ReplyInterval = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = time.Minute
	}
	if cfg.SweepGrace <= 0 {
		cfg.SweepGrace = time.Minute
	}
	if cfg.StatusBackoffThreshold <= 0 {
		cfg.StatusBackoffThreshold = 30 * 24 * time.Hour
	}
	if cfg.StatusBackoffMax <= 0 {
		cfg.StatusBackoffMax = time.Hour
	}
	l, err := openLedger(filepath.Join(cfg.Dir, "sends"), cfg.SharedDir)
	if err != nil {
		return nil, err
	}
	spool := filepath.Join(cfg.Dir, "spool")
	// Spooled packages of a previous run are never reused: a retry packs
	// afresh, so whatever is left is garbage.
	_ = os.RemoveAll(spool)
	if err := os.MkdirAll(spool, 0o750); err != nil {
		return nil, fmt.Errorf("creating spool dir: %w", err)
	}
	return &Pipeline{cfg: cfg, log: cfg.Logger.With(logattr.Component("pipeline")), ledger: l, spool: spool,
		wake: make(chan struct{}, 1), gate: newGate(cfg.Concurrency), states: newChannelStates(slices.Collect(maps.Keys(cfg.Channels)))}, nil
}

// Run works until ctx is done: the queue consumer, an inbox poller and a
// status tracker per channel that has them, and the status-reply sender.
// Each poller's runs never overlap (channels.md §1.6).
func (p *Pipeline) Run(ctx context.Context) error {
	defer p.ledger.close()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := p.cfg.Queue.Consume(ctx, p.cfg.Concurrency, p.Handle)
		if err != nil && ctx.Err() != nil {
			// Stopped while still setting up (creating the consumer): that
			// is a shutdown, not a failure.
			return nil
		}
		return err
	})
	if p.cfg.Unfinished != nil {
		g.Go(func() error {
			first := true
			p.every(ctx, p.cfg.SweepInterval, nil, func(ctx context.Context) {
				if !p.leads("sweep") {
					return
				}
				p.sweep(ctx, first)
				first = false
			})
			return nil
		})
	}
	for _, name := range slices.Sorted(maps.Keys(p.cfg.Channels)) {
		r := p.cfg.Channels[name]
		every := r.PollInterval
		if every <= 0 {
			every = 15 * time.Second
		}
		if r.Inbox != nil {
			inboxEvery := every
			if r.InboxInterval > 0 {
				inboxEvery = r.InboxInterval
			}
			g.Go(func() error {
				p.every(ctx, inboxEvery, nil, func(ctx context.Context) {
					if p.leads("fetch-" + name) {
						p.fetch(ctx, name, r)
					}
				})
				return nil
			})
		}
		if r.Tracker != nil {
			g.Go(func() error {
				polled := map[string]time.Time{}
				p.every(ctx, every, nil, func(ctx context.Context) {
					if p.leads("track-" + name) {
						p.track(ctx, name, r, every, polled)
					}
				})
				return nil
			})
		}
		if r.Receipts != nil {
			ri := r.ReceiptInterval
			if ri <= 0 {
				ri = every
			}
			g.Go(func() error {
				p.every(ctx, ri, nil, func(ctx context.Context) {
					if p.leads("receipts-" + name) {
						p.receipts(ctx, name, r.Receipts)
					}
				})
				return nil
			})
		}
	}
	g.Go(func() error {
		p.every(ctx, p.cfg.ReplyInterval, p.wake, func(ctx context.Context) {
			if p.leads("replies") {
				p.replies(ctx)
			}
		})
		return nil
	})
	return g.Wait()
}

// leads says whether this daemon runs the named poller now.
func (p *Pipeline) leads(name string) bool { return p.cfg.Leads == nil || p.cfg.Leads(name) }

// every runs fn at once and then every interval (or when wake fires) until
// ctx is done; a run in progress finishes first.
func (p *Pipeline) every(ctx context.Context, interval time.Duration, wake <-chan struct{}, fn func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		fn(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
	}
}

// Handle works on one queue entry: it is the queue.Handler. It returns nil
// when the message is done with (sent, failed for good, expired, or gone)
// and a *queue.RetryError when the entry should come back later.
// gateWait is how long a message waits for a worker of its busy, healthy
// channel before it goes back on the queue: a few sends' time.
const gateWait = 250 * time.Millisecond

func (p *Pipeline) Handle(ctx context.Context, id string) error {
	if _, running := p.busy.LoadOrStore(id, true); running {
		return &queue.RetryError{Delay: time.Second, Err: errors.New("message already being worked on")}
	}
	defer p.busy.Delete(id)
	if p.cfg.Claim != nil {
		release, ok, err := p.cfg.Claim(ctx, id)
		if err != nil || !ok {
			return &queue.RetryError{Delay: time.Second, Err: errors.Join(errors.New("message being worked on by another daemon"), err)}
		}
		defer release()
	}
	msg, err := p.cfg.Messages.Outgoing(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		// Sent, failed or deleted since it was queued: a redelivery after a
		// crash, or the re-enqueue at start. Nothing to do.
		p.forget(id)
		return nil
	}
	if err != nil {
		return &queue.RetryError{Delay: 5 * time.Second, Err: fmt.Errorf("reading outgoing message: %w", err)}
	}
	if msg.State != store.StateQueued {
		// Not sent by the client yet (E4); its own send queues it again.
		return nil
	}
	now := p.cfg.Now()
	if !msg.Expiry.IsZero() && !now.Before(msg.Expiry) {
		p.log.Info("message expired before it was sent", logattr.MessageID(id))
		p.forget(id)
		return p.setStatus(ctx, message.Change{MessageID: id, Status: "LEVETID_UTLOPT", Reason: events.ReasonTTLExpired,
			Description: "Levetiden for meldingen er utgått. Må sendes på nytt"})
	}
	if (msg.Service == "DPV" || msg.Service == "DPF") && msg.Document != nil &&
		(msg.Document.Type == sbd.TypeArkivmeldingKvittering || msg.Document.Type == sbd.TypeStatus) {
		// Those channels carry no receipts (local-api.md §12.2, §14.3): the
		// core settles a receipt when it is sent, and one that reaches the
		// queue anyway (a crash in between) is settled here, not sent.
		p.forget(id)
		for _, st := range []string{"SENDT", "LEVERT", "LEST"} {
			if err := p.setStatus(ctx, message.Change{MessageID: id, Status: st}); err != nil {
				return err
			}
		}
		return nil
	}
	reg, ok := p.cfg.Channels[msg.Service]
	if !ok {
		p.log.Warn("no channel for the message's service", logattr.MessageID(id), logattr.Service(msg.Service))
		p.forget(id)
		return p.setStatus(ctx, message.Change{MessageID: id, Status: "FEIL", Reason: events.ReasonChannelRejected,
			Description: fmt.Sprintf("Kanalen %s er ikke tilgjengelig i dette integrasjonspunktet", msg.Service)})
	}
	p.yieldToAPI(ctx)
	if !p.gate.admitWithin(ctx, msg.Service, gateWait) {
		// Not an attempt: the channel is busy or down, and this message
		// waits its turn without counting towards the dead letters.
		return &queue.RetryError{Delay: p.cfg.Backoff[0], Err: fmt.Errorf("channel %s is busy or failing", msg.Service)}
	}
	err = p.send(ctx, id, msg, reg)
	p.gate.done(msg.Service, channelDown(ctx, err))
	if err == nil {
		return nil
	}
	return p.failed(ctx, id, msg.Service, err)
}

// sweep drives unfinished messages the queue has not (see
// Config.Unfinished), Concurrency at a time. At start it takes every one;
// later only queued messages older than SweepGrace whose retry, if any, is
// overdue. Failures are left to the queue's redelivery and the next sweep.
func (p *Pipeline) sweep(ctx context.Context, first bool) {
	ids, err := p.cfg.Unfinished(ctx)
	if err != nil {
		p.log.Warn("listing unfinished messages", logattr.Err(err))
		return
	}
	sem := make(chan struct{}, p.cfg.Concurrency)
	var wg sync.WaitGroup
	taken := 0
	sent := make(map[string]bool, len(p.sent))
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		if p.sent[id] {
			sent[id] = true
			continue
		}
		if _, running := p.busy.Load(id); running {
			continue
		}
		if !first {
			take, gone := p.stale(ctx, id)
			if gone {
				sent[id] = true
			}
			if !take {
				continue
			}
		}
		taken++
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if p.Handle(ctx, id) == nil {
				p.dequeue(ctx, id)
			}
		})
	}
	wg.Wait()
	p.sent = sent // forget what is no longer unfinished
	if taken > 0 && !first {
		p.log.Warn("queued messages the queue did not deliver were sent by the sweep", slog.Int("count", taken))
	}
}

// dequeue drops the queue entry of a message the sweep has finished with,
// so efm_queue_pending falls back; a queue that cannot remove entries keeps
// them until their redelivery, which then finds the work done.
func (p *Pipeline) dequeue(ctx context.Context, id string) {
	r, ok := p.cfg.Queue.(interface {
		Remove(ctx context.Context, messageID string) error
	})
	if !ok {
		return
	}
	if err := r.Remove(ctx, id); err != nil {
		p.log.Warn("removing a swept message's queue entry", logattr.MessageID(id), logattr.Err(err))
	}
}

// stale reports whether a queued message has waited for the queue longer
// than it should: created more than SweepGrace ago and, when it is being
// retried, past its next attempt by SweepGrace. gone says it has left the
// outgoing store (sent, waiting for receipts).
func (p *Pipeline) stale(ctx context.Context, id string) (take, gone bool) {
	msg, err := p.cfg.Messages.Outgoing(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return false, true
	}
	if err != nil || msg.State != store.StateQueued {
		return false, false
	}
	now := p.cfg.Now()
	if di := msg.Document.DocID(); di != nil {
		if created, err := sbd.ParseTime(di.CreationDateAndTime); err == nil && now.Sub(created) < p.cfg.SweepGrace {
			return false, false
		}
	}
	e, err := p.ledger.get(id)
	if err != nil {
		return false, false
	}
	if e.Attempts > 0 {
		next := e.Updated.Add(p.cfg.Backoff[min(e.Attempts, len(p.cfg.Backoff))-1])
		return now.Sub(next) > p.cfg.SweepGrace, false
	}
	return true, false
}

// send resolves, packs and sends one message, and records SENDT.
func (p *Pipeline) send(ctx context.Context, id string, msg *message.Message, reg Registration) error {
	doc := msg.Document
	sbdJSON, err := doc.MarshalJSON()
	if err != nil {
		return final(fmt.Errorf("encoding sbd: %w", err), events.ReasonInternalError)
	}
	route, err := p.resolve(ctx, doc)
	if err != nil {
		if errors.Is(err, addressing.ErrRegistryUnavailable) {
			return fmt.Errorf("resolving receiver: %w", err)
		}
		return final(fmt.Errorf("resolving receiver: %w", err), events.ReasonReceiverNotFound)
	}
	atts, err := p.cfg.Messages.OutgoingAttachments(ctx, id)
	if err != nil {
		return fmt.Errorf("reading attachments: %w", err)
	}
	files := p.files(atts)
	out := Outgoing{MessageID: id, SBD: sbdJSON, Route: route, Files: files}
	if reg.Packaging.Encrypt && len(files) > 0 {
		if route.Certificate == nil {
			return final(errors.New("receiver has no encryption certificate"), events.ReasonCertificateInvalid)
		}
		pkg, done, err := p.pack(ctx, id, doc.SenderValue(), route, files, reg.Packaging)
		if err != nil {
			return err
		}
		defer done()
		out.Package = pkg
	}
	e, err := p.ledger.get(id)
	if err != nil {
		return err
	}
	out.Checkpoint = e.Checkpoint
	out.Save = func(_ context.Context, cp string) error {
		_, err := p.ledger.update(id, func(e *entry) { e.Channel, e.Checkpoint = msg.Service, cp })
		return err
	}
	ref, err := reg.Channel.Send(ctx, out)
	p.states.observe(ctx, msg.Service, err, p.cfg.Now())
	if err != nil {
		return err
	}
	if reg.Tracker != nil && ref != "" {
		var receipt []byte
		if p.cfg.ArkivmeldingReceipts && doc.Type == sbd.TypeArkivmelding {
			if receipt, err = p.receiptFor(doc); err != nil {
				return final(err, events.ReasonInternalError)
			}
		}
		if _, err := p.ledger.update(id, func(e *entry) {
			e.Channel, e.Reference, e.Tracking, e.Attempts = msg.Service, ref, true, 0
			e.Changed, e.Receipt = p.cfg.Now(), receipt
		}); err != nil {
			return err
		}
	}
	if err := p.cfg.Messages.SetStatus(ctx, message.Change{MessageID: id, Status: "SENDT"}); err != nil {
		// The send itself is done; the retry finds the checkpoint (or the
		// service's idempotency key) and only records SENDT.
		return fmt.Errorf("recording SENDT: %w", err)
	}
	if reg.DeliveredOnSend && ref != "" {
		if err := p.cfg.Messages.SetStatus(ctx, message.Change{MessageID: id, Status: "LEVERT"}); err != nil {
			// The tracker reports LEVERT again at its first poll.
			p.log.Warn("recording LEVERT after sending", logattr.MessageID(id), logattr.Err(err))
		}
	}
	if reg.Tracker == nil {
		p.forget(id)
	}
	p.log.Debug("message sent", logattr.MessageID(id), logattr.Service(msg.Service))
	return nil
}

// resolve looks the receiver up afresh (addressing.md §5.3); a print
// without a receiver goes to KRR's print provider (§3.3).
func (p *Pipeline) resolve(ctx context.Context, doc *sbd.Document) (addressing.Route, error) {
	if doc.Type == sbd.TypePrint && doc.ReceiverValue() == "" {
		pr, ok := p.cfg.Resolver.(interface {
			ResolvePrint(ctx context.Context) (addressing.Route, error)
		})
		if !ok {
			return addressing.Route{}, final(errors.New("print without a receiver needs KRR's print endpoint"), events.ReasonReceiverNotFound)
		}
		return pr.ResolvePrint(ctx)
	}
	rid, err := p.cfg.Resolver.ParseID(doc.ReceiverValue())
	if err != nil {
		return addressing.Route{}, final(fmt.Errorf("reading receiver: %w", err), events.ReasonReceiverNotFound)
	}
	req := addressing.Request{Receiver: rid, Process: doc.Process(), ConversationID: doc.ConversationID()}
	if di := doc.DocID(); di != nil {
		req.DocumentType = di.Standard
	}
	if lvl, ok := doc.Int("sikkerhetsnivaa"); ok {
		req.SecurityLevel = lvl
	}
	return p.cfg.Resolver.ResolveMessage(ctx, req)
}

// files lists the documents primary first, then by document number, as the
// container and the DPV correspondence want them.
func (p *Pipeline) files(atts []store.Attachment) []File {
	atts = slices.Clone(atts)
	slices.SortStableFunc(atts, func(a, b store.Attachment) int {
		if a.Primary != b.Primary {
			if a.Primary {
				return -1
			}
			return 1
		}
		return a.DocNo - b.DocNo
	})
	out := make([]File, 0, len(atts))
	for _, a := range atts {
		mime := a.MimeType
		if mime == "" {
			mime = "application/octet-stream"
		}
		out = append(out, File{Name: a.Filename, Title: a.Title, MimeType: mime, Size: a.Size,
			Open: func() (io.ReadCloser, error) { return p.cfg.Messages.OpenAttachment(a) }})
	}
	return out
}

// pack makes the encrypted package, in memory when small, else in a spool
// file. open reads it (as often as the channel asks); done frees it.
func (p *Pipeline) pack(ctx context.Context, id, sender string, route addressing.Route, files []File, pk Packaging) (
	open func() (io.ReadCloser, error), done func(), err error) {
	senderOrg := transport.OrgNumber(sender)
	if senderOrg == "" {
		senderOrg = p.cfg.OrgNumber
	}
	req := PackRequest{SenderOrg: senderOrg, ReceiverOrg: route.Receiver.RevealPrimary(), Files: files,
		Recipient: route.Certificate, KeyTransport: pk.KeyTransport}
	var size int64
	for _, f := range files {
		size += f.Size
	}
	if size <= memoryPackage {
		// A small package stays in memory: a spool file cost a create, a
		// write, an open, a read and an unlink per message, a tenth of the
		// daemon's system CPU per delivered message (issue 18).
		var buf bytes.Buffer
		if err := p.cfg.Packer.Pack(ctx, req, &buf); err != nil {
			return nil, nil, packError(err)
		}
		return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil }, func() {}, nil
	}
	f, err := os.CreateTemp(p.spool, strings.ToLower(id)+"-*.cms")
	if err != nil {
		return nil, nil, fmt.Errorf("spooling package: %w", err)
	}
	err = p.cfg.Packer.Pack(ctx, req, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, nil, packError(err)
	}
	path := f.Name()
	return func() (io.ReadCloser, error) { return os.Open(path) }, func() { os.Remove(path) }, nil
}

// memoryPackage is the most document bytes packed in memory rather than
// spooled to disk; with difi.move.queue.concurrency workers that bounds the
// memory packages hold at once.
const memoryPackage = 256 << 10

func packError(err error) error {
	if errors.Is(err, asic.ErrInvalidContainer) {
		// A name or a file count the container cannot carry: the same
		// files fail the same way on every retry.
		return final(fmt.Errorf("packing message: %w", err), events.ReasonPayloadInvalid)
	}
	return fmt.Errorf("packing message: %w", err)
}

// channelDown reports whether err says the channel itself is unavailable:
// retryable, and not the message's own fault nor the registry's.
func channelDown(ctx context.Context, err error) bool {
	var fe *finalError
	return err != nil && ctx.Err() == nil && !errors.As(err, &fe) &&
		!errors.Is(err, addressing.ErrRegistryUnavailable) && transport.Retryable(err)
}

// finalError is a failure no retry can mend.
type finalError struct {
	err    error
	reason events.ReasonCode
}

func (e *finalError) Error() string { return e.err.Error() }
func (e *finalError) Unwrap() error { return e.err }

func final(err error, reason events.ReasonCode) error { return &finalError{err: err, reason: reason} }

// failed decides between a retry, the dead letters and FEIL at once.
func (p *Pipeline) failed(ctx context.Context, id, service string, err error) error {
	log := p.log.With(logattr.MessageID(id), logattr.Service(service))
	var fe *finalError
	switch {
	case errors.As(err, &fe):
		log.Warn("message failed", logattr.Err(err))
		p.forget(id)
		return p.setStatus(ctx, message.Change{MessageID: id, Status: "FEIL", Reason: fe.reason,
			Description: "Meldingen kunne ikke sendes", RawReceipt: err.Error()})
	case errors.Is(err, transport.ErrUnauthorized):
		log.Warn("message refused by the channel", logattr.Err(err))
		p.forget(id)
		return p.setStatus(ctx, message.Change{MessageID: id, Status: "FEIL", Reason: events.ReasonAuthFailed,
			Description: "Meldingen ble avvist av kanalen", RawReceipt: err.Error()})
	case !transport.Retryable(err) && ctx.Err() == nil:
		log.Warn("message refused by the channel", logattr.Err(err))
		p.forget(id)
		return p.setStatus(ctx, message.Change{MessageID: id, Status: "FEIL", Reason: events.ReasonChannelRejected,
			Description: "Meldingen ble avvist av kanalen", RawReceipt: err.Error()})
	}
	e, lerr := p.ledger.update(id, func(e *entry) { e.Channel = service; e.Attempts++ })
	if lerr != nil {
		return &queue.RetryError{Delay: p.cfg.Backoff[0], Err: errors.Join(err, lerr)}
	}
	if e.Attempts >= p.cfg.MaxAttempts {
		log.Error("message moved to the dead letters", logattr.Err(err))
		p.forget(id)
		return p.setStatus(ctx, message.Change{MessageID: id, Status: "FEIL", Reason: events.ReasonChannelUnavailable,
			Description: "Failed delivery over " + service + store.DeadLetterSuffix, RawReceipt: err.Error()})
	}
	delay := p.cfg.Backoff[min(e.Attempts, len(p.cfg.Backoff))-1]
	log.Warn("sending failed, will retry", logattr.Err(err), logattr.Duration("retry_in_seconds", delay))
	return &queue.RetryError{Delay: delay, Err: err}
}

// setStatus records a final status; an error puts the entry back briefly,
// and the next attempt records it again (the core ignores repeats).
func (p *Pipeline) setStatus(ctx context.Context, ch message.Change) error {
	err := p.cfg.Messages.SetStatus(ctx, ch)
	if errors.Is(err, message.ErrUnknownMessage) {
		return nil
	}
	if err != nil {
		return &queue.RetryError{Delay: 5 * time.Second, Err: err}
	}
	return nil
}

func (p *Pipeline) forget(id string) {
	if err := p.ledger.remove(id); err != nil {
		p.log.Warn("removing pipeline entry", logattr.MessageID(id), logattr.Err(err))
	}
}

// replyBatch is how many status replies one round sends.
const replyBatch = 100

func (p *Pipeline) replies(ctx context.Context) {
	for ctx.Err() == nil {
		rs, err := p.cfg.Messages.StatusReplies(ctx, replyBatch)
		if err != nil {
			p.log.Warn("listing status replies", logattr.Err(err))
			return
		}
		if len(rs) == 0 {
			return
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, p.cfg.Concurrency)
		stuck := 0
		var mu sync.Mutex
		for _, r := range rs {
			reg, ok := p.cfg.Channels[r.ServiceIdentifier]
			if !ok {
				p.doneReply(ctx, r)
				continue
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				_, err := reg.Channel.Send(ctx, Outgoing{MessageID: r.MessageID, SBD: r.SBD})
				p.states.observe(ctx, r.ServiceIdentifier, err, p.cfg.Now())
				if err != nil && transport.Retryable(err) {
					p.log.Warn("sending status reply, will retry", logattr.MessageID(r.MessageID), logattr.Err(err))
					mu.Lock()
					stuck++
					mu.Unlock()
					return
				}
				if err != nil {
					p.log.Warn("status reply refused, dropped", logattr.MessageID(r.MessageID), logattr.Err(err))
				}
				p.doneReply(ctx, r)
			}()
		}
		wg.Wait()
		if stuck > 0 || len(rs) < replyBatch {
			return
		}
	}
}

func (p *Pipeline) doneReply(ctx context.Context, r store.StatusReply) {
	if err := p.cfg.Messages.DoneStatusReply(ctx, r.ID); err != nil {
		p.log.Warn("removing sent status reply", logattr.MessageID(r.MessageID), logattr.Err(err))
	}
}

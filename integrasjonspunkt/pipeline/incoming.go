package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/integrasjonspunkt/message"
	"github.com/efm-go/efm/integrasjonspunkt/sbd"
	"github.com/efm-go/efm/internal/logattr"
	"github.com/efm-go/efm/packaging/asic"
	"github.com/efm-go/efm/transport"
)

// fetch drains one channel's inbox once.
func (p *Pipeline) fetch(ctx context.Context, service string, reg Registration) {
	var got atomic.Int64 // an inbox may deliver from several goroutines
	deliver := func(ctx context.Context, d Delivery) error {
		err := p.receive(ctx, service, reg, d)
		if err == nil {
			got.Add(1)
		}
		return err
	}
	var err error
	if bi, ok := reg.Inbox.(BatchInbox); ok {
		err = bi.FetchBatched(ctx, deliver, func(ctx context.Context, ds []Delivery) []error {
			errs := p.receiveAll(ctx, service, reg, ds)
			for _, err := range errs {
				if err == nil {
					got.Add(1)
				}
			}
			return errs
		})
	} else {
		err = reg.Inbox.Fetch(ctx, deliver)
	}
	p.states.observe(ctx, service, err, p.cfg.Now())
	if got.Load() > 0 {
		// Each stored message owes its sender a MOTTATT: send it now rather
		// than at the next tick.
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	if err != nil && ctx.Err() == nil {
		p.log.Warn("fetching incoming messages", logattr.Service(service), logattr.Err(err))
	}
}

// receive decrypts and verifies one delivery and hands it to the core. An
// error wrapping transport.ErrMalformed discards the delivery (channels.md
// §2.4 step 5); any other error leaves it at the service for the next run.
func (p *Pipeline) receive(ctx context.Context, service string, reg Registration, d Delivery) error {
	in, err := p.received(service, d)
	if err != nil {
		return err
	}
	return p.receiveDecoded(ctx, reg, in, d.Package)
}

// receiveDecoded is receive once the SBD is read.
func (p *Pipeline) receiveDecoded(ctx context.Context, reg Registration, in message.Received, pkg io.Reader) error {
	if pkg != nil {
		f, err := os.CreateTemp(p.spool, "in-*.asice")
		if err != nil {
			return fmt.Errorf("spooling incoming package: %w", err)
		}
		defer func() { f.Close(); os.Remove(f.Name()) }()
		limit := reg.Packaging.SizeLimit
		if limit <= 0 {
			limit = 1 << 30
		}
		// The limit is the documents'; the container around them is larger.
		limit += asic.ContainerOverhead
		if err := p.cfg.Unpacker.Unpack(ctx, pkg, f, limit); err != nil {
			if errors.Is(err, ErrPackage) {
				return p.refuse(ctx, in, err)
			}
			return err
		}
		in.Package = f
	}
	return p.stored(in, p.cfg.Messages.Receive(ctx, in))
}

// receiveAll is receive for deliveries without a package: the status
// messages among them go to the core together, the rest one by one, a few
// at a time, as the inbox would have handed them over.
func (p *Pipeline) receiveAll(ctx context.Context, service string, reg Registration, ds []Delivery) []error {
	errs := make([]error, len(ds))
	var statuses []message.Received
	var at []int
	var g errgroup.Group
	g.SetLimit(fetchConcurrency)
	for i, d := range ds {
		in, err := p.received(service, d)
		if err != nil {
			errs[i] = err
			continue
		}
		if d.Package == nil && in.Document.Type == sbd.TypeStatus {
			statuses, at = append(statuses, in), append(at, i)
			continue
		}
		g.Go(func() error {
			errs[i] = p.receiveDecoded(ctx, reg, in, d.Package)
			return nil
		})
	}
	g.Wait()
	for k, err := range p.cfg.Messages.ReceiveStatuses(ctx, statuses) {
		errs[at[k]] = p.stored(statuses[k], err)
	}
	return errs
}

// received reads a delivery's SBD into what the core takes; an error wraps
// transport.ErrMalformed.
func (p *Pipeline) received(service string, d Delivery) (message.Received, error) {
	doc, err := sbd.Decode(d.SBD)
	if err != nil {
		p.log.Warn("incoming message unreadable, discarded", logattr.Service(service), logattr.Err(err))
		return message.Received{}, fmt.Errorf("%w: %w", transport.ErrMalformed, err)
	}
	id := doc.MessageID()
	if !sbd.IsUUID(id) || !sbd.IsUUID(doc.ConversationID()) {
		p.log.Warn("incoming message without uuid ids, discarded", logattr.Service(service))
		return message.Received{}, fmt.Errorf("%w: message or conversation id not a uuid", transport.ErrMalformed)
	}
	// A receipt proves the transfer went through even when our upload's
	// answer was lost and the retry is still waiting: the core records SENDT
	// first (Received.Sent), so the history reads in order (local-api.md
	// §14.2). It ignores it when SENDT is already there; the waiting retry
	// then finds the message gone from the outgoing store.
	in := message.Received{Document: doc, Service: service}
	switch doc.Type {
	case sbd.TypeStatus:
		in.Sent = id
	case sbd.TypeArkivmeldingKvittering:
		in.Sent = doc.String("relatedToMessageId")
	}
	if !sbd.IsUUID(in.Sent) {
		in.Sent = ""
	}
	return in, nil
}

// stored is what the core's answer to an incoming message means for the
// channel: a duplicate is done with.
func (p *Pipeline) stored(in message.Received, err error) error {
	id := in.Document.MessageID()
	if errors.Is(err, message.ErrDuplicate) {
		p.log.Info("incoming message already received, discarded", logattr.MessageID(id), logattr.Service(in.Service))
		return nil
	}
	if err != nil {
		return fmt.Errorf("storing incoming message: %w", err)
	}
	p.log.Debug("message received", logattr.MessageID(id), logattr.Service(in.Service))
	return nil
}

// refuse records a delivery whose package does not decrypt or verify as an
// incoming message that is FEIL (channels.md §1.9.2), never queued for the
// client, and lets the channel confirm it so it is not fetched again.
func (p *Pipeline) refuse(ctx context.Context, in message.Received, cause error) error {
	p.log.Warn("incoming package does not open, recorded as FEIL", logattr.MessageID(in.Document.MessageID()),
		logattr.Service(in.Service), logattr.Err(cause))
	in.Package, in.Failed, in.FailedReason = nil, "Pakken kunne ikke dekrypteres", events.ReasonPayloadInvalid
	if errors.Is(cause, ErrUnverified) {
		in.Failed, in.FailedReason = "Pakken eller signaturen kunne ikke verifiseres", events.ReasonSignatureInvalid
	}
	err := p.cfg.Messages.Receive(ctx, in)
	if err != nil && !errors.Is(err, message.ErrDuplicate) {
		return fmt.Errorf("recording an incoming package that does not open: %w", err)
	}
	return fmt.Errorf("%w: %w", transport.ErrMalformed, cause)
}

// track polls the statuses of the messages a Tracker follows, each when its
// back-off says so (pollDue). polled holds when each was last polled; it
// belongs to the caller's goroutine, one per tracker.
func (p *Pipeline) track(ctx context.Context, service string, reg Registration, base time.Duration, polled map[string]time.Time) {
	t, receiptOn := reg.Tracker, reg.ReceiptOn
	if receiptOn == "" {
		receiptOn = "LEVERT"
	}
	es, err := p.ledger.tracking()
	if err != nil {
		p.log.Warn("listing tracked messages", logattr.Err(err))
		return
	}
	for id := range polled {
		if _, ok := es[id]; !ok {
			delete(polled, id)
		}
	}
	now := p.cfg.Now()
	for id, e := range es {
		if ctx.Err() != nil {
			return
		}
		if e.Channel != service {
			continue
		}
		changed := e.Changed
		if changed.IsZero() {
			changed = e.Updated
		}
		var since time.Duration
		if last, ok := polled[id]; ok {
			since = now.Sub(last)
		}
		if !pollDue(now.Sub(changed), since, base, p.cfg.StatusBackoffMax, p.cfg.StatusBackoffThreshold) {
			continue
		}
		polled[id] = now
		sts, done, err := t.Track(ctx, e.Reference)
		if errors.Is(err, transport.ErrNotFound) {
			sts, done, err = []Status{{Status: "ANNET", Description: "Meldingen er slettet i kanalen"}}, true, nil
		}
		p.states.observe(ctx, service, err, now)
		if err != nil {
			p.log.Warn("polling status", logattr.MessageID(id), logattr.Service(service), logattr.Err(err))
			continue
		}
		gone, failed := false, false
		for _, st := range sts {
			err := p.cfg.Messages.SetStatus(ctx, message.Change{MessageID: id, Status: st.Status, At: st.At, Description: st.Description})
			if errors.Is(err, message.ErrUnknownMessage) {
				gone = true
				break
			}
			if err != nil {
				p.log.Warn("recording polled status", logattr.MessageID(id), logattr.Err(err))
				failed = true
				break
			}
			if st.Status == receiptOn && len(e.Receipt) > 0 {
				if err := p.generatedReceipt(ctx, service, e.Receipt); err != nil {
					p.log.Warn("queueing the generated arkivmelding_kvittering", logattr.MessageID(id), logattr.Err(err))
					failed = true
					break
				}
				if _, err := p.ledger.update(id, func(e *entry) { e.Receipt = nil }); err != nil {
					p.log.Warn("updating pipeline entry", logattr.MessageID(id), logattr.Err(err))
				}
			}
		}
		if done || gone {
			p.forget(id)
			continue
		}
		if !failed && len(sts) != e.Seen {
			if _, err := p.ledger.update(id, func(e *entry) { e.Seen, e.Changed = len(sts), now }); err != nil {
				p.log.Warn("updating pipeline entry", logattr.MessageID(id), logattr.Err(err))
			}
		}
	}
}

// pollDue applies the status polling back-off of channels.md §1.6: the
// interval grows linearly with age (the time since the message's statuses
// last changed) from base to max, reached at threshold. A message is polled
// when that interval has passed since it was last polled (sincePolled; 0:
// never in this run of the daemon). Half a base of slack keeps a ticker's
// jitter from skipping a whole run. The reference instead polls when the age
// enters a new interval-sized bucket; with an interval that grows with age
// those buckets stretch nearly as fast as the age grows, so old messages
// would hardly be polled at all.
func pollDue(age, sincePolled, base, max, threshold time.Duration) bool {
	if sincePolled <= 0 || age <= sincePolled || threshold <= 0 || max <= base {
		return true
	}
	frac := min(float64(age)/float64(threshold), 1)
	interval := base + time.Duration(frac*float64(max-base))
	return sincePolled+base/2 >= interval
}

// receiptFor builds the arkivmelding_kvittering OK the daemon generates for
// an arkivmelding on a channel without receipts (local-api.md §12.2): from
// the receiver back to the sender, in the same conversation.
func (p *Pipeline) receiptFor(doc *sbd.Document) ([]byte, error) {
	oh := doc.Header
	if oh == nil {
		return nil, errors.New("generating a receipt: the message has no header")
	}
	r := &sbd.Document{Type: sbd.TypeArkivmeldingKvittering,
		Business: map[string]any{"receiptType": "OK", "relatedToMessageId": doc.MessageID(), "messages": []any{}},
		Header: &sbd.Header{
			HeaderVersion: "1.0",
			Sender:        oh.Receiver,
			Receiver:      oh.Sender,
			DocumentIdentification: &sbd.DocumentIdentification{
				Standard: sbd.Standards[sbd.TypeArkivmeldingKvittering], TypeVersion: "2.0", InstanceIdentifier: uuid.NewString(),
				Type: sbd.TypeArkivmeldingKvittering, CreationDateAndTime: sbd.FormatTime(p.cfg.Now()),
			},
			BusinessScope: &sbd.BusinessScope{Scope: []sbd.Scope{{Type: sbd.ScopeConversationID,
				InstanceIdentifier: doc.ConversationID(), Identifier: "urn:no:difi:profile:arkivmelding:response:ver1.0"}}},
		}}
	b, err := r.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("generating a receipt: %w", err)
	}
	return b, nil
}

// generatedReceipt hands a receipt from receiptFor to the core as if it had
// arrived on the channel. Its messageId was fixed when it was generated, so
// a repeat after a crash is a duplicate the core discards.
func (p *Pipeline) generatedReceipt(ctx context.Context, service string, raw []byte) error {
	doc, err := sbd.Decode(raw)
	if err != nil {
		return fmt.Errorf("reading the generated receipt: %w", err)
	}
	if di := doc.DocID(); di != nil {
		di.CreationDateAndTime = sbd.FormatTime(p.cfg.Now())
	}
	err = p.cfg.Messages.Receive(ctx, message.Received{Document: doc, Service: service})
	if err != nil && !errors.Is(err, message.ErrDuplicate) {
		return err
	}
	return nil
}

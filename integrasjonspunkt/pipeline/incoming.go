package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/integrasjonspunkt/message"
	"github.com/efm-go/efm/integrasjonspunkt/sbd"
	"github.com/efm-go/efm/internal/logattr"
	"github.com/efm-go/efm/transport"
)

// fetch drains one channel's inbox once.
func (p *Pipeline) fetch(ctx context.Context, service string, reg Registration) {
	var got atomic.Int64 // an inbox may deliver from several goroutines
	err := reg.Inbox.Fetch(ctx, func(ctx context.Context, d Delivery) error {
		err := p.receive(ctx, service, reg, d)
		if err == nil {
			got.Add(1)
		}
		return err
	})
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
	doc, err := sbd.Decode(d.SBD)
	if err != nil {
		p.log.Warn("incoming message unreadable, discarded", logattr.Service(service), logattr.Err(err))
		return fmt.Errorf("%w: %w", transport.ErrMalformed, err)
	}
	id := doc.MessageID()
	if !sbd.IsUUID(id) || !sbd.IsUUID(doc.ConversationID()) {
		p.log.Warn("incoming message without uuid ids, discarded", logattr.Service(service))
		return fmt.Errorf("%w: message or conversation id not a uuid", transport.ErrMalformed)
	}
	// A receipt proves the transfer went through even when our upload's
	// answer was lost and the retry is still waiting: record SENDT first, so
	// the history reads in order (local-api.md §14.2). The core ignores it
	// when SENDT is already there; the waiting retry then finds the message
	// gone from the outgoing store.
	answered := ""
	switch doc.Type {
	case sbd.TypeStatus:
		answered = id
	case sbd.TypeArkivmeldingKvittering:
		answered = doc.String("relatedToMessageId")
	}
	if sbd.IsUUID(answered) {
		err := p.cfg.Messages.SetStatus(ctx, message.Change{MessageID: answered, Status: "SENDT"})
		if err != nil && !errors.Is(err, message.ErrUnknownMessage) {
			return fmt.Errorf("recording SENDT before a receipt: %w", err)
		}
	}
	in := message.Received{Document: doc, Service: service}
	if d.Package != nil {
		f, err := os.CreateTemp(p.spool, "in-*.asice")
		if err != nil {
			return fmt.Errorf("spooling incoming package: %w", err)
		}
		defer func() { f.Close(); os.Remove(f.Name()) }()
		limit := reg.Packaging.SizeLimit
		if limit <= 0 {
			limit = 1 << 30
		}
		if err := p.cfg.Unpacker.Unpack(ctx, d.Package, f, limit); err != nil {
			if errors.Is(err, ErrPackage) {
				return p.refuse(ctx, doc, service, err)
			}
			return err
		}
		in.Package = f
	}
	err = p.cfg.Messages.Receive(ctx, in)
	if errors.Is(err, message.ErrDuplicate) {
		p.log.Info("incoming message already received, discarded", logattr.MessageID(id), logattr.Service(service))
		return nil
	}
	if err != nil {
		return fmt.Errorf("storing incoming message: %w", err)
	}
	p.log.Debug("message received", logattr.MessageID(id), logattr.Service(service))
	return nil
}

// refuse records a delivery whose package does not decrypt or verify as an
// incoming message that is FEIL (channels.md §1.9.2), never queued for the
// client, and lets the channel confirm it so it is not fetched again.
func (p *Pipeline) refuse(ctx context.Context, doc *sbd.Document, service string, cause error) error {
	id := doc.MessageID()
	p.log.Warn("incoming package does not open, recorded as FEIL", logattr.MessageID(id), logattr.Service(service),
		logattr.Err(cause))
	in := message.Received{Document: doc, Service: service, Failed: "Pakken kunne ikke dekrypteres",
		FailedReason: events.ReasonPayloadInvalid}
	if errors.Is(cause, ErrUnverified) {
		in.Failed, in.FailedReason = "Pakken eller signaturen kunne ikke verifiseres", events.ReasonSignatureInvalid
	}
	err := p.cfg.Messages.Receive(ctx, in)
	if err != nil && !errors.Is(err, message.ErrDuplicate) {
		return fmt.Errorf("recording an incoming package that does not open: %w", err)
	}
	return fmt.Errorf("%w: %w", transport.ErrMalformed, cause)
}

// track polls the statuses of the messages a Tracker follows.
func (p *Pipeline) track(ctx context.Context, service string, t Tracker) {
	es, err := p.ledger.tracking()
	if err != nil {
		p.log.Warn("listing tracked messages", logattr.Err(err))
		return
	}
	for id, e := range es {
		if ctx.Err() != nil {
			return
		}
		if e.Channel != service {
			continue
		}
		sts, done, err := t.Track(ctx, e.Reference)
		if errors.Is(err, transport.ErrNotFound) {
			sts, done, err = []Status{{Status: "ANNET", Description: "Meldingen er slettet i kanalen"}}, true, nil
		}
		if err != nil {
			p.log.Warn("polling status", logattr.MessageID(id), logattr.Service(service), logattr.Err(err))
			continue
		}
		gone := false
		for _, st := range sts {
			err := p.cfg.Messages.SetStatus(ctx, message.Change{MessageID: id, Status: st.Status, At: st.At, Description: st.Description})
			if errors.Is(err, message.ErrUnknownMessage) {
				gone = true
				break
			}
			if err != nil {
				p.log.Warn("recording polled status", logattr.MessageID(id), logattr.Err(err))
				break
			}
		}
		if done || gone {
			p.forget(id)
		}
	}
}

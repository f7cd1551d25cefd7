package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/efm-go/efm/internal/logattr"
	"github.com/efm-go/efm/packaging/cms"
	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/altinn"
	"github.com/efm-go/efm/transport/dpo"
)

// DPO adapts the broker client to Channel and Inbox (channels.md §2).
type DPO struct {
	Client *dpo.Client // must not be nil: the own system user
	// Reportees are the organisations we act for (difi.move.dpo.reportees),
	// each with its own system user: their inboxes are drained with ours,
	// and a message they send goes with their system user (§2.2, §2.4).
	Reportees []Reportee
	Logger    *slog.Logger
	exchange  *altinn.Exchanger // the own system user's, for check
}

// Reportee is one organisation the integration point acts for over DPO.
type Reportee struct {
	Org    string      // nine-digit organisation number
	Client *dpo.Client // must not be nil
}

// clientFor picks the system user for an SBD's sender: a reportee's own when
// the sender is (or acts for) a reportee, else ours.
func (d DPO) clientFor(sbd []byte) *dpo.Client {
	if len(d.Reportees) == 0 {
		return d.Client
	}
	h, err := transport.ParseHeader(sbd)
	if err != nil {
		return d.Client
	}
	parts := strings.Split(h.Sender, ":")
	for _, r := range d.Reportees {
		if slices.Contains(parts, r.Org) {
			return r.Client
		}
	}
	return d.Client
}

// DPOPackaging is how DPO packs: RSAES-OAEP and AES-256-CBC (§1.9.1), at
// most difi.move.dpo.upload-size-limit.
func DPOPackaging(limit int64) Packaging {
	return Packaging{Encrypt: true, KeyTransport: cms.RSAESOAEP, SizeLimit: limit}
}

// Send implements Channel. The checkpoint is the broker's fileTransferId,
// saved before the upload (see package dpo).
func (d DPO) Send(ctx context.Context, out Outgoing) (string, error) {
	o := dpo.Outgoing{SBD: out.SBD, TransferID: out.Checkpoint}
	if out.Package != nil {
		o.Payload = dpo.Payload(out.Package)
	}
	if out.Save != nil {
		o.Checkpoint = out.Save
	}
	if out.Route.Service == "" {
		// A status or receipt answering a message that arrived on a
		// message channel goes back on that channel (§2.3).
		if h, err := transport.ParseHeader(out.SBD); err == nil && h.MessageChannel != "" {
			o.Reference = h.MessageChannel
		}
	}
	return d.clientFor(out.SBD).Send(ctx, o)
}

// Fetch implements Inbox (§2.4): list, download, deliver, confirm. The
// broker lists at most 100 transfers, so a full page is followed by another
// listing at once rather than at the next tick. Transfers are handled a few
// at a time: each is an independent message, and the receipts of one
// message carry no order the core depends on.
func (d DPO) Fetch(ctx context.Context, deliver func(context.Context, Delivery) error) error {
	return d.FetchBatched(ctx, deliver, func(ctx context.Context, ds []Delivery) []error {
		errs := make([]error, len(ds))
		for i, del := range ds {
			errs[i] = deliver(ctx, del)
		}
		return errs
	})
}

// FetchBatched implements BatchInbox: the transfers of a page without a
// package are held until the page is downloaded, handed to deliverAll
// together, and confirmed after.
func (d DPO) FetchBatched(ctx context.Context, deliver func(context.Context, Delivery) error,
	deliverAll func(context.Context, []Delivery) []error) error {
	// One system user's failure (say, a reportee whose system user is not
	// approved yet) must not keep the others' messages waiting.
	errs := []error{d.fetch(ctx, d.Client, deliver, deliverAll)}
	for _, r := range d.Reportees {
		if ctx.Err() != nil {
			break
		}
		if err := d.fetch(ctx, r.Client, deliver, deliverAll); err != nil {
			errs = append(errs, fmt.Errorf("reportee %s: %w", r.Org, err))
		}
	}
	return errors.Join(errs...)
}

// held is a downloaded transfer without a package, waiting for its page.
type held struct {
	id  string
	sbd []byte
}

func (d DPO) fetch(ctx context.Context, c *dpo.Client, deliver func(context.Context, Delivery) error,
	deliverAll func(context.Context, []Delivery) []error) error {
	for {
		pending, err := c.Pending(ctx)
		if err != nil {
			return fmt.Errorf("listing dpo transfers: %w", err)
		}
		var mu sync.Mutex
		var page []held
		hold := func(h held) { mu.Lock(); page = append(page, h); mu.Unlock() }
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(fetchConcurrency)
		for _, ov := range pending {
			g.Go(func() error { return d.one(gctx, c, ov.FileTransferID, deliver, hold) })
		}
		err = g.Wait()
		// What was downloaded is delivered even when another transfer
		// failed: the work is done, and confirming it spares the next run.
		err = errors.Join(err, d.deliverHeld(ctx, c, page, deliverAll))
		if err != nil {
			return err
		}
		if len(pending) < dpoPage {
			return nil
		}
	}
}

// dpoPage is the most transfers one broker listing returns (§9.10).
const dpoPage = 100

// fetchConcurrency bounds the downloads of one inbox run.
const fetchConcurrency = 8

// one downloads a transfer and delivers and confirms it, or holds it for
// its page when it has no package.
func (d DPO) one(ctx context.Context, c *dpo.Client, id string, deliver func(context.Context, Delivery) error, hold func(held)) error {
	f, err := c.Download(ctx, id)
	if errors.Is(err, transport.ErrMalformed) {
		d.log().Warn("unreadable dpo transfer discarded", logattr.Err(err))
		return c.Confirm(ctx, id)
	}
	if err != nil {
		return fmt.Errorf("downloading dpo transfer: %w", err)
	}
	defer f.Close()
	if !f.HasPayload() {
		hold(held{id: id, sbd: f.SBD})
		return nil
	}
	rc, err := f.OpenPayload()
	if err != nil {
		return fmt.Errorf("opening dpo payload: %w", err)
	}
	defer rc.Close()
	if err := deliver(ctx, Delivery{SBD: f.SBD, Package: rc}); err != nil && !errors.Is(err, transport.ErrMalformed) {
		return err
	}
	return c.Confirm(ctx, id)
}

// deliverHeld hands a page's held transfers over together and confirms
// each that was delivered or is malformed; the others stay at the broker.
func (d DPO) deliverHeld(ctx context.Context, c *dpo.Client, page []held, deliverAll func(context.Context, []Delivery) []error) error {
	if len(page) == 0 {
		return nil
	}
	ds := make([]Delivery, len(page))
	for i, h := range page {
		ds[i] = Delivery{SBD: h.sbd}
	}
	errs := deliverAll(ctx, ds)
	var g errgroup.Group
	g.SetLimit(fetchConcurrency)
	for i, h := range page {
		if errs[i] != nil && !errors.Is(errs[i], transport.ErrMalformed) {
			continue
		}
		g.Go(func() error { return c.Confirm(ctx, h.id) })
	}
	var failed []error
	for _, err := range errs {
		if err != nil && !errors.Is(err, transport.ErrMalformed) {
			failed = append(failed, err)
			break // one says why; the rest are retried with it
		}
	}
	return errors.Join(append(failed, g.Wait())...)
}

func (d DPO) log() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

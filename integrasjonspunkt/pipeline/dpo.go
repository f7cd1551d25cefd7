package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/efm-go/efm/internal/logattr"
	"github.com/efm-go/efm/packaging/cms"
	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/dpo"
)

// DPO adapts the broker client to Channel and Inbox (channels.md §2).
type DPO struct {
	Client *dpo.Client // must not be nil
	Logger *slog.Logger
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
	return d.Client.Send(ctx, o)
}

// Fetch implements Inbox (§2.4): list, download, deliver, confirm.
func (d DPO) Fetch(ctx context.Context, deliver func(context.Context, Delivery) error) error {
	pending, err := d.Client.Pending(ctx)
	if err != nil {
		return fmt.Errorf("listing dpo transfers: %w", err)
	}
	for _, ov := range pending {
		if err := d.one(ctx, ov.FileTransferID, deliver); err != nil {
			return err
		}
	}
	return nil
}

func (d DPO) one(ctx context.Context, id string, deliver func(context.Context, Delivery) error) error {
	f, err := d.Client.Download(ctx, id)
	if errors.Is(err, transport.ErrMalformed) {
		d.log().Warn("unreadable dpo transfer discarded", logattr.Err(err))
		return d.Client.Confirm(ctx, id)
	}
	if err != nil {
		return fmt.Errorf("downloading dpo transfer: %w", err)
	}
	defer f.Close()
	del := Delivery{SBD: f.SBD}
	if f.HasPayload() {
		rc, err := f.OpenPayload()
		if err != nil {
			return fmt.Errorf("opening dpo payload: %w", err)
		}
		defer rc.Close()
		del.Package = rc
	}
	err = deliver(ctx, del)
	if err != nil && !errors.Is(err, transport.ErrMalformed) {
		return err
	}
	return d.Client.Confirm(ctx, id)
}

func (d DPO) log() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

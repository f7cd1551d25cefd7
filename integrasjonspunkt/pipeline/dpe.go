package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/efm-go/efm/internal/logattr"
	"github.com/efm-go/efm/packaging/cms"
	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/dpe"
)

// DPE adapts the Service Bus client to Channel and Inbox (channels.md §7).
type DPE struct {
	Client *dpe.Client // must not be nil
	// ReceiptQueue is difi.move.nextmove.serviceBus.receiptQueue; Mode is
	// difi.move.nextmove.serviceBus.mode (default innsyn).
	ReceiptQueue, Mode string
	Logger             *slog.Logger
	keys               srKey // for check
}

// DPEPackaging is how DPE packs: RSAES-PKCS1-v1_5 and AES-256-CBC, at most
// difi.move.nextmove.service-bus.upload-size-limit (§1.5, §1.9.1).
func DPEPackaging(limit int64) Packaging {
	return Packaging{Encrypt: true, KeyTransport: cms.RSAESPKCS1v15, SizeLimit: limit}
}

// maxDPEPackage bounds what Send reads into memory: DPE messages are at most
// 2 MB (§1.5) and the client holds them whole.
const maxDPEPackage = 64 << 20

// Send implements Channel. The bus's duplicate detection on the messageId
// makes a retried send harmless (see package dpe).
func (d DPE) Send(ctx context.Context, out Outgoing) (string, error) {
	h, err := transport.ParseHeader(out.SBD)
	if err != nil {
		return "", fmt.Errorf("%w: reading sbd: %w", transport.ErrRejected, err)
	}
	receiver := transport.OrgNumber(h.Receiver)
	var queue string
	switch {
	case h.Type == transport.TypeStatus:
		queue = dpe.StatusQueue(receiver, d.ReceiptQueue, d.mode())
	case h.Type == transport.TypeEinnsynKvittering:
		queue = dpe.KvitteringQueue(receiver, d.ReceiptQueue, false)
	case out.Route.Record.Service.EndpointURL != "":
		queue = dpe.ReceiverQueue(receiver, out.Route.Record.Service.EndpointURL)
	default:
		return "", fmt.Errorf("%w: the service registry gives no service bus queue for the receiver", transport.ErrRejected)
	}
	var pkg []byte
	if out.Package != nil {
		rc, err := out.Package()
		if err != nil {
			return "", fmt.Errorf("opening package: %w", err)
		}
		pkg, err = io.ReadAll(io.LimitReader(rc, maxDPEPackage+1))
		rc.Close()
		if err != nil {
			return "", fmt.Errorf("reading package: %w", err)
		}
		if len(pkg) > maxDPEPackage {
			return "", fmt.Errorf("%w: package larger than dpe carries", transport.ErrRejected)
		}
	}
	return "", d.Client.Send(ctx, queue, out.SBD, pkg)
}

func (d DPE) mode() string {
	if d.Mode == "" {
		return "innsyn"
	}
	return d.Mode
}

// Fetch implements Inbox (§7.4): peek-lock until the queue is empty, deliver,
// complete.
func (d DPE) Fetch(ctx context.Context, deliver func(context.Context, Delivery) error) error {
	for ctx.Err() == nil {
		m, err := d.Client.Receive(ctx)
		if errors.Is(err, transport.ErrMalformed) && m != nil {
			d.log().Warn("unreadable service bus message discarded", logattr.Err(err))
			if err := d.Client.Complete(ctx, m); err != nil {
				return fmt.Errorf("completing service bus message: %w", err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("receiving from service bus: %w", err)
		}
		if m == nil {
			return nil
		}
		del := Delivery{SBD: m.SBD}
		if m.CMS != nil {
			del.Package = bytes.NewReader(m.CMS)
		}
		if err := deliver(ctx, del); err != nil && !errors.Is(err, transport.ErrMalformed) {
			// Left locked: it reappears when the lock expires.
			return err
		}
		if err := d.Client.Complete(ctx, m); err != nil {
			return fmt.Errorf("completing service bus message: %w", err)
		}
	}
	return ctx.Err()
}

func (d DPE) log() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

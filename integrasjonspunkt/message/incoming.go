package message

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/integrasjonspunkt/payload"
	"github.com/efm-go/efm/integrasjonspunkt/sbd"
	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/internal/logattr"
)

// Received is a message a channel downloaded.
type Received struct {
	Document *sbd.Document // must not be nil
	Service  string        // the channel it arrived on: DPO, DPE, DPF, DPH, DPFIO
	// Package is the decrypted ASiC-E container; nil for receipts and
	// status messages.
	Package io.Reader
	// Failed, when not empty, says the package did not decrypt or verify
	// (channels.md §1.9.2): the conversation gets OPPRETTET and FEIL with
	// this description, and nothing is queued or answered. Package is nil.
	Failed string
	// FailedReason is the event reason for Failed; empty: payload_invalid.
	FailedReason events.ReasonCode
	// Sent, when not empty, is the id of an outgoing message this delivery
	// answers (a status message or an archive receipt): its arrival proves
	// the message went through even when our send's answer was lost, so
	// SENDT is recorded on it first, in the same transaction, and the
	// history reads in order (local-api.md §14.2). One transaction rather
	// than two: every receipt paid a second write on the store's one writer
	// for a SENDT that is nearly always there already (issue 18).
	Sent string
}

// ReceiveStatuses hands several incoming messages to the core as Receive
// would, the status messages among them in one transaction: a channel's
// page of receipts costs one write on the store's one writer, not one each
// (issue 18). It returns one error per message, nil for each recorded or
// ignored. When the shared transaction fails, each status message is tried
// on its own, so one that cannot be recorded holds up no other.
func (s *Service) ReceiveStatuses(ctx context.Context, ins []Received) []error {
	errs := make([]error, len(ins))
	var statuses []int
	for i, in := range ins {
		if in.Document.Type != sbd.TypeStatus {
			errs[i] = s.Receive(ctx, in)
			continue
		}
		statuses = append(statuses, i)
	}
	if len(statuses) == 0 {
		return errs
	}
	// By message, so that the receipts of one conversation share its read
	// and its summary write; stable, so each message's keep their order.
	slices.SortStableFunc(statuses, func(a, b int) int {
		return strings.Compare(ins[a].Document.MessageID(), ins[b].Document.MessageID())
	})
	var chs []Change
	for _, i := range statuses {
		in := ins[i]
		if in.Sent != "" {
			chs = append(chs, Change{MessageID: in.Sent, Status: "SENDT"})
		}
		chs = append(chs, Change{MessageID: in.Document.MessageID(), Status: in.Document.String("status")})
	}
	unknown, err := s.applyStatuses(ctx, chs)
	if err != nil {
		for _, i := range statuses {
			errs[i] = s.Receive(ctx, ins[i])
		}
		return errs
	}
	for _, i := range statuses {
		if id := ins[i].Document.MessageID(); unknown[id] {
			s.log.Info("status message for an unknown message ignored", logattr.MessageID(id))
		}
	}
	return errs
}

// ErrDuplicate means an incoming message with that id is already known; the
// channel discards the delivery (local-api.md §14.3).
var ErrDuplicate = errors.New("incoming message already received")

// Receive hands an incoming message to the core (local-api.md §6.1, §14.3):
// a status message updates its outgoing conversation; anything else gets an
// incoming conversation (OPPRETTET, INNKOMMENDE_MOTTATT) and a place on the
// queue, and for DPO and DPE a MOTTATT status reply to the sender. An
// archive receipt also records LEST or FEIL on the message it answers.
func (s *Service) Receive(ctx context.Context, in Received) error {
	doc := in.Document
	id := doc.MessageID()
	if doc.Type == sbd.TypeStatus {
		var chs []Change
		if in.Sent != "" {
			chs = append(chs, Change{MessageID: in.Sent, Status: "SENDT"})
		}
		chs = append(chs, Change{MessageID: id, Status: doc.String("status")})
		err := s.setStatuses(ctx, chs)
		if errors.Is(err, ErrUnknownMessage) {
			s.log.Info("status message for an unknown message ignored", logattr.MessageID(id))
			return nil
		}
		return err
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	var pkg string
	if in.Package != nil {
		w, err := s.cfg.Payloads.Create()
		if err != nil {
			return err
		}
		if _, err := w.ReadFrom(in.Package); err != nil {
			w.Abort()
			return fmt.Errorf("storing package: %w", err)
		}
		if err := w.Close(); err != nil {
			return err
		}
		pkg = w.Name()
	}
	now := s.cfg.Now()
	expiry, _ := sbd.ParseTime(doc.ExpectedResponse())
	sender, _ := s.cfg.IDPolicy.ParseID(doc.SenderValue())
	receiver, _ := s.cfg.IDPolicy.ParseID(doc.ReceiverValue())
	primary := func(id ident.ID) string {
		if id.Kind() == ident.KindUnknown {
			return ""
		}
		return id.RevealPrimary()
	}
	var evs []StatusEvent
	var files []string
	dup := false
	err = s.st.Update(ctx, func(tx *store.Tx) error {
		evs, files = nil, nil
		if in.Sent != "" {
			c, err := tx.Conversation(in.Sent, Outgoing)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if err == nil {
				if evs, files, err = s.record(tx, c, Change{MessageID: in.Sent, Status: "SENDT"}); err != nil {
					return err
				}
			}
		}
		if _, err := tx.Conversation(id, Incoming); err == nil {
			// Keep the SENDT above: a repeat still proves the send.
			dup = true
			return nil
		}
		c := &store.Conversation{MessageID: id, ConversationID: doc.ConversationID(), Direction: Incoming,
			Sender: doc.SenderValue(), SenderIdentifier: partOrPrimary(sender), Receiver: doc.ReceiverValue(),
			ReceiverIdentifier: primary(receiver), ProcessIdentifier: doc.Process(), DocumentIdentifier: doc.DocID().Standard,
			MessageReference: doc.ConversationID(), ServiceIdentifier: in.Service, Status: "OPPRETTET", Expiry: expiry, LastUpdate: now}
		if err := tx.InsertConversation(c); err != nil {
			return err
		}
		ev, _, err := s.record(tx, c, Change{MessageID: id, Direction: Incoming, Status: "OPPRETTET"})
		if err != nil {
			return err
		}
		evs = append(evs, ev...)
		if in.Failed != "" {
			reason := in.FailedReason
			if reason == "" {
				reason = events.ReasonPayloadInvalid
			}
			ev, _, err = s.record(tx, c, Change{MessageID: id, Direction: Incoming, Status: "FEIL", Description: in.Failed, Reason: reason})
			evs = append(evs, ev...)
			return err
		}
		if !expiry.IsZero() && !expiry.After(now) {
			ev, _, err = s.record(tx, c, Change{MessageID: id, Direction: Incoming, Status: "LEVETID_UTLOPT", Reason: events.ReasonTTLExpired})
			evs = append(evs, ev...)
			return err
		}
		if err := tx.InsertIncoming(&store.Incoming{MessageID: id, ConversationID: c.ConversationID,
			ProcessIdentifier: c.ProcessIdentifier, SenderIdentifier: primary(sender), ReceiverIdentifier: c.ReceiverIdentifier,
			ServiceIdentifier: in.Service, DocumentType: doc.Type, SBD: body, Package: pkg, Expiry: expiry, LastUpdated: now}); err != nil {
			return err
		}
		ev, _, err = s.record(tx, c, Change{MessageID: id, Direction: Incoming, Status: "INNKOMMENDE_MOTTATT"})
		if err != nil {
			return err
		}
		evs = append(evs, ev...)
		if err := s.statusReply(tx, doc, in.Service, "MOTTATT"); err != nil {
			return err
		}
		if doc.Type == sbd.TypeArkivmeldingKvittering {
			ev, err := s.receipt(tx, doc)
			evs = append(evs, ev...)
			return err
		}
		return nil
	})
	if err != nil {
		if pkg != "" {
			s.cfg.Payloads.Remove(pkg)
		}
		return fmt.Errorf("receiving message: %w", err)
	}
	s.after(evs, files)
	if dup {
		if pkg != "" {
			s.cfg.Payloads.Remove(pkg)
		}
		return ErrDuplicate
	}
	if !expiry.IsZero() && !expiry.After(now) && pkg != "" {
		s.cfg.Payloads.Remove(pkg)
	}
	return nil
}

func partOrPrimary(id ident.ID) string {
	switch id.Kind() {
	case ident.KindUnknown:
		return ""
	case ident.KindOrganisation:
		return id.PartOrPrimary().String()
	}
	return id.RevealPrimary()
}

// receipt records an arkivmelding_kvittering on the message it answers
// (local-api.md §12.2).
func (s *Service) receipt(tx *store.Tx, doc *sbd.Document) ([]StatusEvent, error) {
	rel := doc.String("relatedToMessageId")
	c, err := tx.Conversation(rel, Outgoing)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rt := doc.String("receiptType")
	ch := Change{MessageID: rel, Status: "LEST"}
	if rt == "ERROR" || rt == "NOTSUPPORTED" {
		raw, _ := json.Marshal(doc.Business)
		ch = Change{MessageID: rel, Status: "FEIL", Description: "ArkivmeldingKvittering: " + rt, RawReceipt: string(raw),
			Reason: events.ReasonChannelRejected}
	}
	evs, _, err := s.record(tx, c, ch)
	return evs, err
}

// responseProcess is the response process of a process's domain (§12.10).
func responseProcess(process string) string {
	switch {
	case strings.Contains(process, ":einnsyn:"):
		return "urn:no:difi:profile:einnsyn:response:ver1.0"
	case strings.Contains(process, ":avtalt:"):
		return "urn:no:difi:profile:avtalt:response:ver1.0"
	}
	return "urn:no:difi:profile:arkivmelding:response:ver1.0"
}

// statusReply writes the internal status message owed to the sender of a
// DPO or DPE message (local-api.md §12.10) in the caller's transaction.
func (s *Service) statusReply(tx *store.Tx, orig *sbd.Document, service, status string) error {
	if service != "DPO" && service != "DPE" {
		return nil
	}
	oh := orig.Header
	scopes := []sbd.Scope{{Type: sbd.ScopeConversationID, InstanceIdentifier: orig.ConversationID(), Identifier: responseProcess(orig.Process())}}
	if mc := orig.Scope(sbd.ScopeMessageChannel); mc != nil {
		scopes = append(scopes, *mc)
	}
	reply := &sbd.Document{Type: sbd.TypeStatus, Business: map[string]any{"status": status}, Header: &sbd.Header{
		HeaderVersion: "1.0",
		Sender:        oh.Receiver,
		Receiver:      oh.Sender,
		DocumentIdentification: &sbd.DocumentIdentification{
			Standard: sbd.Standards[sbd.TypeStatus], TypeVersion: "2.0", InstanceIdentifier: orig.MessageID(),
			Type: sbd.TypeStatus, CreationDateAndTime: sbd.FormatTime(s.cfg.Now()),
		},
		BusinessScope: &sbd.BusinessScope{Scope: scopes},
	}}
	body, err := json.Marshal(reply)
	if err != nil {
		return err
	}
	return tx.InsertStatusReply(&store.StatusReply{MessageID: orig.MessageID(), ConversationID: orig.ConversationID(),
		ServiceIdentifier: service, Status: status, SBD: body, CreatedAt: s.cfg.Now()})
}

// StatusReplies lists the internal status messages the channels owe senders,
// oldest first. The channel deletes each with DoneStatusReply once sent.
func (s *Service) StatusReplies(ctx context.Context, limit int) ([]store.StatusReply, error) {
	return s.st.StatusReplies(ctx, limit)
}

// DoneStatusReply removes a status reply its channel has carried.
func (s *Service) DoneStatusReply(ctx context.Context, id int64) error {
	return s.st.DeleteStatusReply(ctx, id)
}

// Peek is E10: lock the oldest unlocked message matching f and return its
// SBD; ok is false when nothing matches (204).
func (s *Service) Peek(ctx context.Context, f store.MessageFilter) (json.RawMessage, bool, error) {
	now := s.cfg.Now()
	var m *store.Incoming
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		var err error
		m, err = tx.LockNextIncoming(f, now, now.Add(s.cfg.LockTimeout))
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return m.SBD, true, nil
}

func (s *Service) locked(ctx context.Context, id string) (*store.Incoming, error) {
	m, err := s.st.GetIncoming(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, messageNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	if !m.LockedUntil.After(s.cfg.Now()) {
		return nil, bad(NameMessageNotLocked, "Message with messageId=%s is not locked", id)
	}
	return m, nil
}

// Pop is E11: the decrypted ASiC-E of a locked message; nil (204) for
// messages without a package. A package that cannot be read back removes the
// message from the queue with FEIL.
func (s *Service) Pop(ctx context.Context, id string) (io.ReadCloser, error) {
	m, err := s.locked(ctx, id)
	if err != nil {
		return nil, err
	}
	if m.Package == "" || sbd.IsReceipt(m.DocumentType) {
		return nil, nil
	}
	r, err := s.cfg.Payloads.Open(m.Package)
	switch {
	case err == nil:
		return r, nil
	case errors.Is(err, payload.ErrNotExist):
		if err := s.dropIncoming(ctx, id, Change{Status: "FEIL", Description: "The stored package asic.zip is missing",
			Reason: events.ReasonPayloadInvalid}); err != nil {
			return nil, err
		}
		return nil, notFound(NameFileNotFound, "File asic.zip not found for messageId=%s", id)
	default:
		if err := s.dropIncoming(ctx, id, Change{Status: "FEIL", Description: "The stored package asic.zip is unreadable",
			Reason: events.ReasonPayloadInvalid}); err != nil {
			return nil, err
		}
		return nil, &Error{Status: http.StatusInternalServerError, Name: NameAsicRead, Message: "Could not read asic.zip for messageId=" + id}
	}
}

// dropIncoming removes a message from the queue and records ch on its
// conversation.
func (s *Service) dropIncoming(ctx context.Context, id string, ch Change) error {
	ch.MessageID, ch.Direction = id, Incoming
	var evs []StatusEvent
	var pkg string
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		m, err := tx.Incoming(id)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		pkg = m.Package
		if err := tx.DeleteIncoming(id); err != nil {
			return err
		}
		c, err := tx.Conversation(id, Incoming)
		if errors.Is(err, store.ErrNotFound) {
			// The client deleted the conversation (E15): no history to
			// write, but the message still leaves the queue.
			return nil
		}
		if err != nil {
			return err
		}
		evs, _, err = s.record(tx, c, ch)
		return err
	})
	if err != nil {
		return err
	}
	if pkg != "" {
		s.after(evs, []string{pkg})
	} else {
		s.after(evs, nil)
	}
	return nil
}

// Acknowledge is E12: remove a locked message, record INNKOMMENDE_LEVERT and,
// for DPO and DPE, owe the sender a LEVERT status message. It returns the
// removed message's SBD.
func (s *Service) Acknowledge(ctx context.Context, id string) (json.RawMessage, error) {
	var evs []StatusEvent
	var m *store.Incoming
	now := s.cfg.Now()
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		var err error
		m, err = tx.Incoming(id)
		if errors.Is(err, store.ErrNotFound) {
			return messageNotFound(id)
		}
		if err != nil {
			return err
		}
		if !m.LockedUntil.After(now) {
			return bad(NameMessageNotLocked, "Message with messageId=%s is not locked", id)
		}
		if err := tx.DeleteIncoming(id); err != nil {
			return err
		}
		c, err := tx.Conversation(id, Incoming)
		if err != nil {
			return err
		}
		evs, _, err = s.record(tx, c, Change{MessageID: id, Direction: Incoming, Status: "INNKOMMENDE_LEVERT"})
		if err != nil {
			return err
		}
		doc, err := sbd.Decode(m.SBD)
		if err != nil {
			return err
		}
		return s.statusReply(tx, doc, m.ServiceIdentifier, "LEVERT")
	})
	if err != nil {
		return nil, err
	}
	var files []string
	if m.Package != "" {
		files = []string{m.Package}
	}
	s.after(evs, files)
	return m.SBD, nil
}

// LockTimeout is how long a peek holds a message.
func (s *Service) LockTimeout() time.Duration { return s.cfg.LockTimeout }

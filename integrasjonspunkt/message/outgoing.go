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

	"github.com/google/uuid"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/integrasjonspunkt/sbd"
	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/internal/logattr"
)

// MultipartPartLimit is the one-step send's limit per file: 5 MiB, exactly
// 5 242 880 bytes allowed (local-api.md §5.4).
const MultipartPartLimit = 5 << 20

// arkivmeldingXMLLimit caps how much of arkivmelding.xml is kept in memory
// for parsing; a Noark 5 arkivmelding is a few kilobytes.
const arkivmeldingXMLLimit = 16 << 20

// prepared is a validated, normalised message ready to persist.
type prepared struct {
	doc      *sbd.Document
	service  string
	sender   ident.ID
	receiver *ident.ID
	expiry   time.Time
	client   string
}

func newUUID() string { return uuid.New().String() }

// prepare runs E2's steps 1–6 (local-api.md §5.1) without writing anything,
// up to the semantic checks of §15.2, which check runs.
func (s *Service) prepare(ctx context.Context, doc *sbd.Document, client string) (*prepared, error) {
	now := s.cfg.Now()
	s.normaliseSender(doc)
	if vs := sbd.ValidateHeader(doc, now); len(vs) > 0 {
		return nil, Violation(vs)
	}
	if doc.Type == "" {
		// A document type the registry lists (feil) that no client may send.
		return nil, bad(NameUnknownMessageType, "Message type '%s' cannot be sent; valid types: %s", doc.DocID().Type, strings.Join(sbd.Types, ", "))
	}
	p := &prepared{doc: doc, client: client}
	p.sender, _ = s.cfg.IDPolicy.ParseID(doc.SenderValue())
	if rv := doc.ReceiverValue(); rv != "" {
		id, err := s.cfg.IDPolicy.ParseID(rv)
		if err != nil {
			return nil, Violation(sbd.Violations{{Path: "standardBusinessDocumentHeader.receiver[0].identifier.value",
				Code: "ReceiverValue", Message: "must be a valid party identifier: " + errText(err)}})
		}
		p.receiver = &id
	}
	svc, capab, err := s.channelFor(ctx, doc, p.receiver)
	if err != nil {
		return nil, err
	}
	p.service = svc
	s.applyDefaults(doc, svc, capab, now)
	p.expiry, _ = sbd.ParseTime(doc.ExpectedResponse())
	return p, nil
}

// check runs the semantic checks of local-api.md §15.2 that follow the
// duplicate check, in their order. The duplicate check itself runs in the
// write transaction (persist); a caller refusing the message for one of
// these reasons calls duplicateFirst, so a duplicate still wins as it does
// in §15.2's order.
func (s *Service) check(ctx context.Context, p *prepared) error {
	doc, svc := p.doc, p.service
	if err := s.certificate(); err != nil {
		return bad(NameInvalidCertificate, "The integration point's certificate cannot be used: %v", err)
	}
	if !s.cfg.Lenient {
		if vs := sbd.ValidateBusiness(doc); len(vs) > 0 {
			return Violation(vs)
		}
	}
	if rel := doc.String("relatedToMessageId"); rel != "" && !sbd.IsUUID(rel) {
		return bad(NameNotUUID, "relatedToMessageId '%s' is not a UUID", rel)
	}
	if svc == "UNKNOWN" || !s.cfg.Enabled(svc) {
		return bad(NameServiceNotEnabled, "Service %s is not enabled", svc)
	}
	if s.cfg.ChannelProblem != nil {
		if err := s.cfg.ChannelProblem(svc); err != nil {
			return bad(NameServiceNotEnabled, "Service %s is enabled but not configured: %v", svc, err)
		}
	}
	if doc.Type == sbd.TypePrint {
		if err := checkPrintAddresses(doc); err != nil {
			return err
		}
	}
	if di := doc.DocID(); !sbd.StandardFits(di.Standard, di.Type) {
		return bad(NameTypeDoesNotFitDocumentType, "Message type '%s' does not fit document type '%s'", di.Type, di.Standard)
	}
	if svc == "DPO" && s.cfg.MessageChannel != "" {
		if mc := doc.Scope(sbd.ScopeMessageChannel); mc != nil && mc.Identifier != s.cfg.MessageChannel {
			return bad(NameMessageChannelInvalid, "Message channel '%s' differs from the configured '%s'", mc.Identifier, s.cfg.MessageChannel)
		}
	}
	if svc == "DPF" {
		if err := s.checkForsendelseType(ctx, doc, p.sender); err != nil {
			return err
		}
	}
	if svc == "DPF" && s.cfg.SvarUtCredentials != nil {
		if part, ok := p.sender.Part(); ok && !s.cfg.SvarUtCredentials(part.String()) {
			return bad(NameMissingSvarUtCredentials, "No SvarUt account is configured for organisation %s", part)
		}
	}
	if svc == "DPH" {
		if err := s.checkNHNParties(p); err != nil {
			return err
		}
	}
	return nil
}

// checkForsendelseType is §15.2 step 9: a named dpf.forsendelseType must be
// one the (represented) sender's SvarUt account offers.
func (s *Service) checkForsendelseType(ctx context.Context, doc *sbd.Document, sender ident.ID) error {
	ft := doc.String("dpf.forsendelseType")
	if ft == "" || s.cfg.ForsendelseTyper == nil {
		return nil
	}
	org := sender.PartOrPrimary().String()
	valid, err := s.cfg.ForsendelseTyper(ctx, org)
	if err != nil {
		return fmt.Errorf("listing the SvarUt shipment types of %s: %w", org, err)
	}
	if !slices.Contains(valid, ft) {
		return bad(NameForsendelseTypeNotFound, "forsendelseType '%s' not found; valid types: %s", ft, strings.Join(valid, ","))
	}
	return nil
}

// checkNHNParties is §15.2 step 10: a DPH message goes from one of the
// daemon's own HER ids to an NHN identifier.
func (s *Service) checkNHNParties(p *prepared) error {
	if p.sender.Kind() != ident.KindHerID {
		return bad(NameSender, "Sender have to be a %s for DPH messages!", sbd.AuthorityNHN)
	}
	herID := strings.TrimPrefix(p.sender.RevealPrimary(), "her-id:")
	if !slices.Contains(s.cfg.HerIDs, herID) {
		return bad(NameSender, "Sender have to be one of the her-ids listed in the difi.move.dph.her-ids property!")
	}
	if p.receiver == nil || (p.receiver.Kind() != ident.KindHerID && p.receiver.Kind() != ident.KindFastlege) {
		return bad(NameReceiver, "Receiver have to be a %s for DPH messages!", sbd.AuthorityNHN)
	}
	return nil
}

// errText is an identifier error's text; ident never puts the number in it.
func errText(err error) string { return err.Error() }

// normaliseSender applies local-api.md §11.5.
func (s *Service) normaliseSender(doc *sbd.Document) {
	h := doc.Header
	if h == nil || s.cfg.OrgNumber == "" {
		return
	}
	own := ident.ICDNorwegianOrg + ":" + s.cfg.OrgNumber
	if len(h.Sender) == 0 {
		h.Sender = []sbd.Partner{{Identifier: &sbd.PartnerIdentification{Value: own, Authority: sbd.AuthorityISO6523}}}
		return
	}
	pi := h.Sender[0].Identifier
	if pi == nil || pi.Value == "" || doc.Type == sbd.TypePublisering {
		return
	}
	id, err := s.cfg.IDPolicy.ParseID(pi.Value)
	if err != nil || id.Kind() != ident.KindOrganisation {
		return
	}
	if _, part := id.Part(); part {
		return // the legacy on-behalf-of form is kept as is
	}
	if o, _ := id.Org(); o.String() != s.cfg.OrgNumber {
		pi.Value = own + ":" + o.String()
	} else {
		pi.Value = own
	}
}

// channelFor is E2 step 4: the first registry record that accepts the
// document type decides the channel.
func (s *Service) channelFor(ctx context.Context, doc *sbd.Document, receiver *ident.ID) (string, *Capability, error) {
	di := doc.DocID()
	if receiver == nil {
		if doc.Type == sbd.TypePrint {
			return "DPI", nil, nil
		}
		return "UNKNOWN", nil, nil
	}
	q := CapabilityQuery{Process: doc.Process(), ConversationID: doc.ConversationID()}
	if lvl, ok := doc.Int("sikkerhetsnivaa"); ok {
		q.SecurityLevel = lvl
	}
	refuse := func(desc string) error {
		return &Error{Status: http.StatusBadRequest, Name: NameReceiverDoesNotAcceptProcess,
			Message:     fmt.Sprintf("Receiver %s does not accept process '%s' with document type '%s'", receiver, q.Process, di.Standard),
			Description: desc}
	}
	if s.citizenWithoutDPI(receiver.RevealPrimary()) {
		return "", nil, refuse("DPI is not enabled in this integration point (difi.move.feature.enableDPI): it reaches no citizen")
	}
	caps, err := s.cfg.Registry.Capabilities(ctx, receiver.RevealPrimary(), q)
	if err != nil {
		var re *RegistryError
		switch {
		case errors.As(err, &re) && re.Description != "":
			return "", nil, refuse(re.Description)
		case errors.Is(err, ErrUnknownReceiver):
			return "", nil, refuse("The receiver is not registered in the service registry")
		case errors.Is(err, ErrInvalidReceiver):
			return "", nil, refuse("The receiver identifier is not valid")
		}
		s.log.Warn("service registry lookup failed", logattr.Err(err))
		return "", nil, refuse("The service registry could not be asked: " + lookupFailure)
	}
	for _, c := range caps {
		if c.Process != "" && c.Process != q.Process {
			continue
		}
		for _, dt := range c.DocumentTypes {
			if strings.EqualFold(dt.Standard, di.Standard) {
				// A standard that does not fit the type is reported later, as
				// MessageTypeDoesNotFitDocumentTypeException (§15.2 step 7).
				if chs, ok := channelOfType[doc.Type]; ok && !slices.Contains(chs, c.ServiceIdentifier) && sbd.StandardFits(di.Standard, doc.Type) {
					return "", nil, bad(NameUnknownMessageType, "Message type '%s' cannot be sent over %s; valid types: %s",
						doc.Type, c.ServiceIdentifier, strings.Join(sbd.Types, ", "))
				}
				return c.ServiceIdentifier, &c, nil
			}
		}
	}
	desc := fmt.Sprintf("The receiver has no service record for process %s with document type %s", q.Process, di.Standard)
	for _, c := range caps {
		if c.Description != "" {
			desc = c.Description
		}
	}
	return "", nil, refuse(desc)
}

const lookupFailure = "registry unreachable or failing"

// applyDefaults is local-api.md §11.4.
func (s *Service) applyDefaults(doc *sbd.Document, svc string, capab *Capability, now time.Time) {
	di := doc.DocID()
	if di.InstanceIdentifier == "" {
		di.InstanceIdentifier = newUUID()
	} else {
		di.InstanceIdentifier = strings.ToLower(di.InstanceIdentifier)
	}
	if di.CreationDateAndTime == "" {
		di.CreationDateAndTime = sbd.FormatTime(now)
	}
	bs := doc.Header.BusinessScope
	for i := range bs.Scope {
		if bs.Scope[i].InstanceIdentifier == "" {
			bs.Scope[i].InstanceIdentifier = newUUID()
		}
	}
	cs := doc.ConversationScope()
	cs.InstanceIdentifier = strings.ToLower(cs.InstanceIdentifier)
	if doc.ExpectedResponse() == "" {
		ttl := s.cfg.DefaultTTL
		if t, ok := s.cfg.TTL[svc]; ok && t > 0 {
			ttl = t
		}
		exp := sbd.FormatTime(now.Add(ttl))
		if len(cs.ScopeInformation) == 0 {
			cs.ScopeInformation = []sbd.ScopeInformation{{}}
		}
		cs.ScopeInformation[0].ExpectedResponseDateTime = exp
	}
	if svc == "DPO" && s.cfg.MessageChannel != "" {
		if mc := doc.Scope(sbd.ScopeMessageChannel); mc == nil {
			bs.Scope = append(bs.Scope, sbd.Scope{Type: sbd.ScopeMessageChannel, InstanceIdentifier: newUUID(), Identifier: s.cfg.MessageChannel})
		} else if mc.Identifier == "" {
			mc.Identifier = s.cfg.MessageChannel
		}
	}
	if doc.Type == sbd.TypePrint {
		setDefault(doc.Business, "utskriftsfarge", "SORT_HVIT")
		setDefault(doc.Business, "posttype", "B_OEKONOMI")
		if doc.ReceiverValue() != "" {
			if _, ok := doc.Business["mottaker"].(map[string]any); !ok {
				doc.Business["mottaker"] = map[string]any{}
			}
			r, ok := doc.Business["retur"].(map[string]any)
			if !ok {
				r = map[string]any{}
				doc.Business["retur"] = r
			}
			setDefault(r, "returhaandtering", "DIREKTE_RETUR")
			if _, ok := r["mottaker"].(map[string]any); !ok {
				r["mottaker"] = map[string]any{}
			}
			if capab != nil {
				// Empty address fields come from the registry: the
				// receiver's postal address and the sender's (§11.4 item 7).
				fillAddress(doc.Business["mottaker"].(map[string]any), capab.PostAddress)
				fillAddress(r["mottaker"].(map[string]any), capab.ReturnAddress)
			}
		} else if r, ok := doc.Business["retur"].(map[string]any); ok {
			setDefault(r, "returhaandtering", "DIREKTE_RETUR")
		}
	}
}

// fillAddress sets the empty fields of a print address from a registry
// address; street lines are separated by ";".
func fillAddress(m map[string]any, a *Address) {
	if a == nil {
		return
	}
	setDefault(m, "navn", a.Name)
	for i, line := range strings.SplitN(a.Street, ";", 4) {
		setDefault(m, fmt.Sprintf("adresselinje%d", i+1), strings.TrimSpace(line))
	}
	setDefault(m, "postnummer", a.PostalCode)
	setDefault(m, "poststed", a.PostalArea)
	setDefault(m, "land", a.Country)
}

func setDefault(m map[string]any, k, v string) {
	if s, _ := m[k].(string); s == "" && v != "" {
		m[k] = v
	}
}

func checkPrintAddresses(doc *sbd.Document) error {
	check := func(prefix string, a map[string]any) error {
		if a == nil {
			return bad(NameMissingAddressInformation, "Missing address information: %s", prefix)
		}
		str := func(k string) string { s, _ := a[k].(string); return strings.TrimSpace(s) }
		land := strings.ToLower(str("land"))
		norwegian := land == "" || land == "norge" || land == "norway"
		if str("adresselinje1") == "" {
			return bad(NameMissingAddressInformation, "Missing address information: %s.adresselinje1", prefix)
		}
		if norwegian && str("postnummer") == "" {
			return bad(NameMissingAddressInformation, "Missing address information: %s.postnummer", prefix)
		}
		if norwegian && str("poststed") == "" {
			return bad(NameMissingAddressInformation, "Missing address information: %s.poststed", prefix)
		}
		return nil
	}
	if err := check("mottaker", doc.Object("mottaker")); err != nil {
		return err
	}
	r := doc.Object("retur")
	if r == nil {
		return bad(NameMissingAddressInformation, "Missing address information: retur")
	}
	rm, _ := r["mottaker"].(map[string]any)
	return check("retur", rm)
}

// duplicateFirst is err, a refusal of a check that follows the duplicate
// check in §15.2's order, unless the message id is taken: then that is the
// answer. Only a refused message pays for this read; an accepted one is
// checked in its write transaction (persist).
func (s *Service) duplicateFirst(ctx context.Context, doc *sbd.Document, err error) error {
	taken, rerr := s.st.MessageIDTaken(ctx, doc.MessageID(), onlyOutgoing(doc))
	if rerr != nil {
		return rerr
	}
	if taken {
		return alreadyExists(doc)
	}
	return err
}

// onlyOutgoing says whether only the outgoing store counts for the duplicate
// check: a status message may share its id with the conversation it reports
// on (§12.10).
func onlyOutgoing(doc *sbd.Document) bool { return doc.Type == sbd.TypeStatus }

func alreadyExists(doc *sbd.Document) *Error {
	return bad(NameMessageAlreadyExists, "Message with messageId=%s already exists", doc.MessageID())
}

// Create is E2: validate, normalise and store a new outgoing message with
// status OPPRETTET. doc is updated in place; the returned JSON is doc as
// stored, the answer's body.
func (s *Service) Create(ctx context.Context, doc *sbd.Document, client string) (json.RawMessage, error) {
	p, err := s.prepare(ctx, doc, client)
	if err != nil {
		return nil, err
	}
	if err := s.check(ctx, p); err != nil {
		return nil, s.duplicateFirst(ctx, doc, err)
	}
	body, err := p.marshal()
	if err != nil {
		return nil, err
	}
	var evs []StatusEvent
	err = s.st.Update(ctx, func(tx *store.Tx) error {
		evs, err = s.persist(tx, p, body, store.StateCreated)
		return err
	})
	if err != nil {
		return nil, s.persistError(err, doc)
	}
	s.after(evs, nil)
	return body, nil
}

func (s *Service) persistError(err error, doc *sbd.Document) error {
	if errors.Is(err, store.ErrDuplicate) {
		// A key persist's check leaves to the insert (a status message
		// whose id an outgoing conversation has), or on PostgreSQL another
		// daemon's insert since.
		return alreadyExists(doc)
	}
	return err
}

// marshal is the SBD as persist stores it, made before the write: whatever
// runs inside Update runs on the store's one writer, one message at a time.
// It is the answer's body too: the document's JSON is compact and escapes
// HTML already, so encoding it again would give the same bytes.
func (p *prepared) marshal() (json.RawMessage, error) { return p.doc.MarshalJSON() }

func (s *Service) persist(tx *store.Tx, p *prepared, body []byte, state string) ([]StatusEvent, error) {
	doc := p.doc
	// The duplicate check of §15.2, here and not before: the writer reads
	// it from its page cache, and nothing can take the id in between.
	taken, err := tx.MessageIDTaken(doc.MessageID(), onlyOutgoing(doc))
	if err != nil {
		return nil, err
	}
	if taken {
		return nil, alreadyExists(doc)
	}
	now := s.cfg.Now()
	senderID, receiverID := "", ""
	if p.sender.Kind() != ident.KindUnknown {
		senderID = p.sender.PartOrPrimary().String()
		if p.sender.Kind() != ident.KindOrganisation {
			senderID = p.sender.RevealPrimary()
		}
	}
	if p.receiver != nil {
		receiverID = p.receiver.RevealPrimary()
	}
	o := &store.Outgoing{MessageID: doc.MessageID(), ConversationID: doc.ConversationID(), ProcessIdentifier: doc.Process(),
		SenderIdentifier: senderID, ReceiverIdentifier: receiverID, ServiceIdentifier: p.service, DocumentType: doc.Type,
		SBD: body, State: state, Expiry: p.expiry, LastUpdated: now}
	if err := tx.InsertOutgoing(o); err != nil {
		return nil, err
	}
	c := &store.Conversation{MessageID: o.MessageID, ConversationID: o.ConversationID, Direction: Outgoing,
		Sender: doc.SenderValue(), SenderIdentifier: senderID, Receiver: doc.ReceiverValue(), ReceiverIdentifier: receiverID,
		ProcessIdentifier: o.ProcessIdentifier, DocumentIdentifier: doc.DocID().Standard, MessageReference: o.ConversationID,
		ServiceIdentifier: p.service, Client: p.client, Status: "OPPRETTET", Expiry: p.expiry, LastUpdate: now}
	if err := tx.InsertConversation(c); err != nil {
		return nil, err
	}
	evs, _, err := s.record(tx, c, Change{MessageID: o.MessageID, Status: "OPPRETTET", At: now})
	return evs, err
}

// unsent reads a message of the outgoing store. One already handed to its
// channel is no longer there: sent says so, and a repeated upload or send
// of it is a no-op (D6).
func (s *Service) unsent(ctx context.Context, messageID string) (o *store.Outgoing, sent bool, err error) {
	o, err = s.st.GetOutgoing(ctx, messageID)
	if errors.Is(err, store.ErrNotFound) {
		if c, err := s.st.ConversationByMessageID(ctx, messageID, Outgoing); err == nil &&
			slices.ContainsFunc(c.Statuses, func(st store.Status) bool { return st.Status == "SENDT" }) {
			return nil, true, nil
		}
		return nil, false, messageNotFound(messageID)
	}
	return o, false, err
}

// Send is E4: check the message is complete and queue it. A repeated send of
// a queued message is a no-op (local-api.md §5.3, D6).
func (s *Service) Send(ctx context.Context, messageID string) error {
	o, sent, err := s.unsent(ctx, messageID)
	if sent || err != nil {
		return err
	}
	if o.State == store.StateQueued {
		return s.publish(ctx, messageID) // dedup: the queue keeps one entry
	}
	doc, err := sbd.Decode(o.SBD)
	if err != nil {
		return fmt.Errorf("reading stored sbd: %w", err)
	}
	if !o.Expiry.IsZero() && !o.Expiry.After(s.cfg.Now()) {
		if err := s.SetStatus(ctx, Change{MessageID: messageID, Status: "LEVETID_UTLOPT"}); err != nil {
			return err
		}
		return bad(NameTimeToLive, "The message expired at %s", sbd.FormatTime(o.Expiry))
	}
	atts, err := s.st.Attachments(ctx, messageID)
	if err != nil {
		return err
	}
	if err := s.checkSend(doc, o.ServiceIdentifier, atts, nil); err != nil {
		return err
	}
	err = s.st.Update(ctx, func(tx *store.Tx) error {
		return tx.SetOutgoingState(messageID, store.StateQueued, s.cfg.Now())
	})
	if err != nil {
		return err
	}
	return s.enqueue(ctx, messageID, o.ServiceIdentifier, doc.Type)
}

// enqueue hands a queued message to the pipeline. A receipt to a DPV or DPF
// receiver is not carried (those channels have no receipts) and gets SENDT,
// LEVERT and LEST at once (local-api.md §12.2, §14.3).
func (s *Service) enqueue(ctx context.Context, messageID, svc, typ string) error {
	if (svc == "DPV" || svc == "DPF") && (typ == sbd.TypeArkivmeldingKvittering || typ == sbd.TypeStatus) {
		for _, st := range []string{"SENDT", "LEVERT", "LEST"} {
			if err := s.SetStatus(ctx, Change{MessageID: messageID, Status: st}); err != nil {
				return err
			}
		}
		return nil
	}
	return s.publish(ctx, messageID)
}

// publish puts a message whose QUEUED state is committed on the queue. The
// client's answer does not wait for the queue's, which is only a hint: an
// entry lost after the answer leaves the message QUEUED in the store, where
// the pipeline's sweep and the next start's re-enqueue find it.
func (s *Service) publish(ctx context.Context, messageID string) error {
	if aq, ok := s.cfg.Queue.(AsyncEnqueuer); ok && aq.EnqueueAsync(messageID) == nil {
		return nil
	}
	return s.cfg.Queue.Enqueue(ctx, messageID)
}

// checkSend applies E4's checks (local-api.md §5.3). xmls holds
// arkivmelding.xml's bytes when the caller has them (E5); otherwise the
// stored file is read back.
func (s *Service) checkSend(doc *sbd.Document, svc string, atts []store.Attachment, xml []byte) error {
	if len(atts) == 0 && !sbd.NeedsNoAttachment(doc.Type) {
		return bad(NameMissingFile, "The message has no attachments")
	}
	names := make(map[string]bool, len(atts))
	for _, a := range atts {
		names[a.Filename] = true
	}
	if doc.Type == sbd.TypeArkivmelding {
		i := slices.IndexFunc(atts, func(a store.Attachment) bool { return a.Filename == "arkivmelding.xml" })
		if i < 0 {
			return bad(NameMissingArkivmelding, "The message has no arkivmelding.xml")
		}
		if xml == nil {
			b, err := s.readAll(atts[i], arkivmeldingXMLLimit)
			if err != nil {
				return err
			}
			xml = b
		}
		am, err := parseArkivmelding(xml)
		if err != nil {
			return bad(NameUnmarshalArkivmelding, "Could not read arkivmelding.xml: %v", err)
		}
		var missing []string
		for _, f := range am.Files {
			if !names[f] && !slices.Contains(missing, f) {
				missing = append(missing, f)
			}
		}
		if len(missing) > 0 {
			return bad(NameMissingArkivmeldingFile, "Files referenced from arkivmelding.xml are not attached: %s", strings.Join(missing, ", "))
		}
	}
	if doc.Type == sbd.TypeDigital {
		var missing []string
		for k, v := range doc.Object("metadataFiler") {
			vs, _ := v.(string)
			for _, n := range []string{k, vs} {
				if n != "" && !names[n] && !slices.Contains(missing, n) {
					missing = append(missing, n)
				}
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			return notFound(NameFileNotFound, "Metadata files are not attached: %s", strings.Join(missing, ", "))
		}
	}
	if svc == "DPI" || doc.Type == sbd.TypeDialogmelding {
		if !slices.ContainsFunc(atts, func(a store.Attachment) bool { return a.Primary }) {
			return bad(NameMissingPrimaryDocument, "No attachment is the main document %q", doc.String("hoveddokument"))
		}
	}
	return nil
}

func (s *Service) readAll(a store.Attachment, max int64) ([]byte, error) {
	r, err := s.OpenAttachment(a)
	if err != nil {
		return nil, fmt.Errorf("opening attachment: %w", err)
	}
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, max))
}

// CreateAndSend is E5 after its parts are staged: E2, E3 for each file in
// part order, E4 and queueing, all or nothing (local-api.md §5.4, D6). On
// error nothing is persisted; the caller discards the staged files. The
// returned JSON is doc as stored, the answer's body.
func (s *Service) CreateAndSend(ctx context.Context, doc *sbd.Document, files []*Staged, client string) (json.RawMessage, error) {
	p, err := s.prepare(ctx, doc, client)
	if err != nil {
		return nil, err
	}
	if err := s.checkFiles(ctx, p, files); err != nil {
		return nil, s.duplicateFirst(ctx, doc, err)
	}
	body, err := p.marshal()
	if err != nil {
		return nil, err
	}
	var evs []StatusEvent
	err = s.st.Update(ctx, func(tx *store.Tx) error {
		evs, err = s.persist(tx, p, body, store.StateQueued)
		if err != nil {
			return err
		}
		// A new message: its files are numbered in part order, with no
		// look at the store.
		for i, f := range files {
			if err := s.attachNo(tx, doc, doc.MessageID(), f, i+1); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, s.persistError(err, doc)
	}
	s.after(evs, nil)
	if err := s.enqueue(ctx, doc.MessageID(), p.service, doc.Type); err != nil {
		// Committed: the start-up re-enqueue picks it up if this failed.
		s.log.Warn("enqueueing message", logattr.MessageID(doc.MessageID()), logattr.Err(err))
	}
	return body, nil
}

// checkFiles is E5's checks after the duplicate check: E2's, then E3's for
// each file in part order, then E4's.
func (s *Service) checkFiles(ctx context.Context, p *prepared, files []*Staged) error {
	if err := s.check(ctx, p); err != nil {
		return err
	}
	doc := p.doc
	limit := s.sizeLimit(p.service)
	var atts []store.Attachment
	var total int64
	var xml []byte
	main := doc.String("hoveddokument")
	for _, f := range files {
		if err := checkUpload(doc, p.service, f.Upload, atts); err != nil {
			return err
		}
		if total += f.Size; total > limit {
			return tooLarge(p.service, limit)
		}
		if err := checkDPHDocument(doc, p.service, f); err != nil {
			return err
		}
		if f.Filename == "arkivmelding.xml" {
			if _, err := parseArkivmelding(f.xml); err != nil {
				return bad(NameUnmarshalArkivmelding, "Could not read arkivmelding.xml: %v", err)
			}
			xml = f.xml
		}
		atts = append(atts, store.Attachment{Filename: f.Filename, Size: f.Size, Primary: main != "" && f.Filename == main, File: f.File, Data: f.Inline})
	}
	return s.checkSend(doc, p.service, atts, xml)
}

// GetOutgoing returns a message of the outgoing store as its SBD JSON.
func (s *Service) GetOutgoing(ctx context.Context, messageID string) (json.RawMessage, error) {
	o, err := s.st.GetOutgoing(ctx, messageID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, messageNotFound(messageID)
	}
	if err != nil {
		return nil, err
	}
	return o.SBD, nil
}

// DeleteOutgoing is E8: remove an unsent message and its files; unknown ids
// are not an error. The conversation stays.
func (s *Service) DeleteOutgoing(ctx context.Context, messageID string) error {
	var files []string
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		var err error
		files, err = tx.DeleteOutgoing(messageID)
		return err
	})
	if err != nil {
		return err
	}
	s.after(nil, files)
	return nil
}

// Message is an outgoing message as the pipeline reads it.
type Message struct {
	Document *sbd.Document
	Service  string
	State    string
	Expiry   time.Time
}

// Outgoing returns a message of the outgoing store for the pipeline;
// store.ErrNotFound once it has left the store. Its attachments are read
// apart (OutgoingAttachments): a message the pipeline turns away (a busy
// channel, a redelivery of one already sent) never needs them.
func (s *Service) Outgoing(ctx context.Context, messageID string) (*Message, error) {
	o, err := s.st.GetOutgoing(ctx, messageID)
	if err != nil {
		return nil, err
	}
	doc, err := sbd.Decode(o.SBD)
	if err != nil {
		return nil, fmt.Errorf("reading stored sbd: %w", err)
	}
	return &Message{Document: doc, Service: o.ServiceIdentifier, State: o.State, Expiry: o.Expiry}, nil
}

// OutgoingAttachments returns the attachments of a message Outgoing returned.
func (s *Service) OutgoingAttachments(ctx context.Context, messageID string) ([]store.Attachment, error) {
	return s.st.Attachments(ctx, messageID)
}

// OpenAttachment returns the decrypted content of an attachment.
func (s *Service) OpenAttachment(a store.Attachment) (io.ReadCloser, error) {
	if a.File == "" {
		return s.cfg.Payloads.OpenInline(a.Data)
	}
	return s.cfg.Payloads.Open(a.File)
}

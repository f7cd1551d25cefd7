package pipeline

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/efm-go/efm/addressing/sr"
	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/integrasjonspunkt/sbd"
	"github.com/efm-go/efm/packaging/cms"
	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/dpf"
)

// SvarUt is what DPF needs from a SvarUt client: *dpf.RESTClient is one.
type SvarUt interface {
	Send(ctx context.Context, sender string, f dpf.Forsendelse, retry bool) (string, error)
	Statuses(ctx context.Context, sender string, ids []string) ([]dpf.Status, error)
	ForsendelseTyper(ctx context.Context, sender string) ([]string, error)
}

// DPF adapts the KS FIKS clients to Channel, Tracker and Inbox (channels.md
// §5): each document goes CMS-encrypted on its own to SvarUt's certificate
// from the SR record; SvarUt guarantees delivery once it has accepted, so
// LEVERT follows SENDT at once (Registration.DeliveredOnSend); LEST is polled.
type DPF struct {
	Out SvarUt // must not be nil
	// Settings from difi.move.fiks.*.
	Kryptert            bool     // difi.move.fiks.kryptert (default true)
	Konteringskode      string   // difi.move.fiks.ut.konteringsKode
	KunDigitalLevering  bool     // difi.move.fiks.ut.kun-digital-levering
	EkskluderesFraPrint []string // difi.move.fiks.ut.ekskluderes-fra-print: extensions, or *
	KeyTransport        cms.KeyTransport
	// OwnOrg sends when the SBD names no sender.
	OwnOrg string
	// SenderInfo gives the sending org's SR info record, the answer address
	// when the arkivmelding names no correspondence party of type avsender
	// (§5.1); nil: none is sent then.
	SenderInfo func(ctx context.Context, org string) (*sr.InfoRecord, error)
}

// DPFPackaging: DPF encrypts each document itself (no container).
func DPFPackaging(limit int64) Packaging { return Packaging{SizeLimit: limit} }

// dpfCheckpoint marks a send that may have reached SvarUt: a retry looks the
// shipment up by its external reference first.
const dpfCheckpoint = "svarut-sending"

// Send implements Channel (§5.1, §5.2).
func (d DPF) Send(ctx context.Context, out Outgoing) (string, error) {
	if out.Route.Service == "" {
		// Receipts to a DPF receiver are not sent (§5.1); the pipeline
		// settles them.
		return "", nil
	}
	doc, err := sbd.Decode(out.SBD)
	if err != nil {
		return "", fmt.Errorf("%w: reading sbd: %w", transport.ErrRejected, err)
	}
	sender := transport.OrgNumber(doc.SenderValue())
	if sender == "" {
		sender = d.OwnOrg
	}
	f, err := d.forsendelse(ctx, out, doc, sender)
	if err != nil {
		return "", err
	}
	retry := out.Checkpoint != ""
	if !retry && out.Save != nil {
		if err := out.Save(ctx, dpfCheckpoint); err != nil {
			return "", fmt.Errorf("saving checkpoint: %w", err)
		}
	}
	id, err := d.Out.Send(ctx, sender, f, retry)
	if err != nil {
		return "", err
	}
	return sender + "/" + id, nil
}

// forsendelse maps the message onto SvarUt's shipment (§5.1's table).
func (d DPF) forsendelse(ctx context.Context, out Outgoing, doc *sbd.Document, sender string) (dpf.Forsendelse, error) {
	rt := out.Route
	am := readArkivmelding(out.Files)
	f := dpf.Forsendelse{
		Tittel:                 firstNonEmpty(am.offentligTittel, am.tittel, "Melding"),
		Mottaker:               dpf.Mottaker{Navn: firstNonEmpty(rt.Info.OrganizationName, rt.Receiver.RevealPrimary()), DigitalID: rt.Receiver.RevealPrimary()},
		Konteringskode:         d.Konteringskode,
		KunDigitalLevering:     d.KunDigitalLevering,
		Kryptert:               d.Kryptert,
		Utskriftskonfigurasjon: &dpf.Utskrift{Tosidig: true},
		Forsendelsestype:       doc.String("dpf.forsendelseType"),
		EksternReferanse:       out.MessageID,
		ID:                     out.MessageID,
		Sikkerhetsniva:         "HOYESTE",
	}
	if pa := rt.Info.Postadresse; pa != nil && pa.Adresse != "" && pa.Poststed != "" {
		f.Mottaker.Adresse = &dpf.Adresse{Adresselinje1: pa.Adresse, Postnummer: pa.Postnummer, Poststed: pa.Poststed}
	}
	level := rt.SecurityLevel
	if v, ok := doc.Int("sikkerhetsnivaa"); ok {
		level = v
	}
	if level == 3 {
		f.Sikkerhetsniva = "BETYDELIG"
	}
	if s := doc.Scope(sbd.ScopeSenderRef); s != nil && sbd.IsUUID(s.InstanceIdentifier) {
		f.ID = s.InstanceIdentifier
	}
	if s := doc.Scope(sbd.ScopeReceiverRef); s != nil && sbd.IsUUID(s.InstanceIdentifier) {
		f.SvarPaForsendelseID = s.InstanceIdentifier
	}
	if am.avsender.navn != "" && am.avsender.adresse1 != "" && am.avsender.poststed != "" {
		f.SvarSendesTil = &dpf.SvarSendesTil{Navn: am.avsender.navn, Type: "ORGANISASJON", DigitalID: dpf.PersonOrOrg(sender),
			Adresse: dpf.Adresse{Adresselinje1: am.avsender.adresse1, Adresselinje2: am.avsender.adresse2,
				Postnummer: am.avsender.postnr, Poststed: am.avsender.poststed}}
	}
	if f.SvarSendesTil == nil && d.SenderInfo != nil {
		info, err := d.SenderInfo(ctx, sender)
		if err != nil {
			return f, fmt.Errorf("looking up the sender's address in the service registry: %w", err)
		}
		if pa := info.Postadresse; pa != nil && info.OrganizationName != "" && pa.Adresse != "" && pa.Poststed != "" {
			f.SvarSendesTil = &dpf.SvarSendesTil{Navn: info.OrganizationName, Type: "ORGANISASJON", DigitalID: dpf.PersonOrOrg(sender),
				Adresse: dpf.Adresse{Adresselinje1: pa.Adresse, Postnummer: pa.Postnummer, Poststed: pa.Poststed}}
		}
	}
	f.MetadataFraAvleverendeSystem = am.metadata()
	if d.Kryptert && rt.Certificate == nil {
		return f, final(errors.New("the service registry gives no svarut certificate for the receiver"), events.ReasonCertificateInvalid)
	}
	names := am.order(out.Files)
	for _, name := range names {
		i := slices.IndexFunc(out.Files, func(fl File) bool { return fl.Name == name })
		fl := out.Files[i]
		dk := dpf.Dokument{Filnavn: fl.Name, MimeType: fl.MimeType, Open: fl.Open,
			SkalEkskluderesFraUtskrift: d.excludedFromPrint(fl.Name)}
		if d.Kryptert {
			dk = dpf.Encrypted(dk, rt.Certificate, d.KeyTransport)
		}
		f.Dokumenter = append(f.Dokumenter, dk)
	}
	if len(f.Dokumenter) == 0 {
		return f, fmt.Errorf("%w: the message has no documents for svarut", transport.ErrRejected)
	}
	return f, nil
}

// excludedFromPrint: false for PDF; true when the extension is listed in
// difi.move.fiks.ut.ekskluderes-fra-print or the list holds * (§5.1).
func (d DPF) excludedFromPrint(name string) bool {
	ext := strings.TrimPrefix(strings.ToLower(path.Ext(name)), ".")
	if ext == "pdf" {
		return false
	}
	for _, e := range d.EkskluderesFraPrint {
		if e = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(e)), "."); e == "*" || e == ext {
			return true
		}
	}
	return false
}

// Track implements Tracker: only LEST counts (§5.1); the reference is
// "<sending org>/<shipment id>".
func (d DPF) Track(ctx context.Context, reference string) ([]Status, bool, error) {
	sender, id, ok := strings.Cut(reference, "/")
	if !ok {
		return nil, true, nil
	}
	sts, err := d.Out.Statuses(ctx, sender, []string{id})
	if err != nil {
		return nil, false, err
	}
	// LEVERT was recorded at send; it is repeated here (the core ignores
	// repeats) so that a crash between SENDT and LEVERT loses nothing.
	out := []Status{{Status: "LEVERT"}}
	for _, s := range sts {
		if s.ID == id && s.Status == "LEST" {
			at, _ := time.Parse(time.RFC3339Nano, s.At)
			return append(out, Status{Status: "LEST", At: at}), true, nil
		}
	}
	return out, false, nil
}

// ShipmentTypes lists the shipment types a sending org may use, for the
// check at create (local-api.md §15.2 step 9), each org's list cached for
// an hour as the reference does (§5.1). Safe for concurrent use.
type ShipmentTypes struct {
	Out SvarUt // must not be nil
	Now func() time.Time

	mu    sync.Mutex
	cache map[string]cachedTypes
}

type cachedTypes struct {
	types []string
	at    time.Time
}

// ForsendelseTyper implements message.ForsendelseTypeLister.
func (s *ShipmentTypes) ForsendelseTyper(ctx context.Context, org string) ([]string, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	s.mu.Lock()
	c, ok := s.cache[org]
	s.mu.Unlock()
	if ok && now().Sub(c.at) < time.Hour {
		return c.types, nil
	}
	types, err := s.Out.ForsendelseTyper(ctx, org)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.cache == nil {
		s.cache = map[string]cachedTypes{}
	}
	s.cache[org] = cachedTypes{types: types, at: now()}
	s.mu.Unlock()
	return types, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}

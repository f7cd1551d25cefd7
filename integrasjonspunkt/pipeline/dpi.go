package pipeline

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/efm-go/efm/addressing"
	"github.com/efm-go/efm/addressing/krr"
	"github.com/efm-go/efm/addressing/sr"
	"github.com/efm-go/efm/integrasjonspunkt/config"
	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/integrasjonspunkt/message"
	"github.com/efm-go/efm/integrasjonspunkt/sbd"
	"github.com/efm-go/efm/internal/logattr"
	"github.com/efm-go/efm/packaging/keystore"
	"github.com/efm-go/efm/packaging/maskinporten"
	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/dpi"
)

// DPI adapts the access point client to Channel, Tracker and ReceiptSource
// (channels.md §4). It packs the document package itself: DPI's container
// is XAdES-signed with its own manifest, not the eFormidling one the
// pipeline's packer writes.
type DPI struct {
	Client *dpi.Client // must not be nil
	Key    *rsa.PrivateKey
	Cert   *x509.Certificate
	Chain  []*x509.Certificate
	// Roots verify the receipts' signers as business certificates.
	Roots *x509.CertPool
	// Print is KRR's print endpoint (provider and certificate); nil: the
	// print record's own certificate and provider are used.
	Print *krr.Client
	// Channels are the kanal values (mpcId, or mpcId-0 … -n); sends take
	// them round-robin, receipts are polled on all (§4.3).
	Channels []string
	// Avsenderidentifikatorer are polled for receipts besides (when
	// PollWithout) the receipts without one (§4.6).
	Avsenderidentifikatorer []string
	PollWithout             bool
	Language                string // difi.move.dpi.language, default NO
	SpoolDir                string // "" for the system temp dir
	Logger                  *slog.Logger
	Now                     func() time.Time
	next                    *atomic.Uint64
}

// DPIPackaging: the channel packs (and encrypts) by itself.
func DPIPackaging(limit int64) Packaging { return Packaging{SizeLimit: limit} }

// posted is the checkpoint saved before the POST: a retry asks the access
// point whether the message arrived before sending it again.
const posted = "posted"

// Send implements Channel.
func (d DPI) Send(ctx context.Context, out Outgoing) (string, error) {
	if out.Route.Service == "" {
		return "", nil // DPI carries no status messages
	}
	if out.Checkpoint == posted {
		_, err := d.Client.Statuses(ctx, out.MessageID)
		if err == nil {
			return out.MessageID, nil // the earlier attempt got through
		}
		if !errors.Is(err, transport.ErrNotFound) {
			return "", err
		}
	}
	doc, err := sbd.Decode(out.SBD)
	if err != nil {
		return "", fmt.Errorf("%w: reading sbd: %w", transport.ErrRejected, err)
	}
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	sender := transport.OrgNumber(doc.SenderValue())
	if sender == "" {
		return "", fmt.Errorf("%w: the sender is no organisation number", transport.ErrRejected)
	}
	rec := out.Route.Record
	onPaper := doc.Type == sbd.TypePrint
	receiver, cert := rec.OrgnrPostkasse, out.Route.Certificate
	if onPaper && d.Print != nil {
		pc, err := d.Print.PrintCertificate(ctx)
		if err != nil {
			return "", fmt.Errorf("fetching the print certificate: %w", err)
		}
		receiver, cert = pc.Postkasseleverandoeradresse, pc.Certificate
	}
	if onPaper && receiver == "" {
		receiver = transport.OrgNumber(out.Route.Receiver.RevealPrimary())
	}
	if cert == nil || transport.OrgNumber(receiver) == "" {
		return "", fmt.Errorf("%w: no mailbox supplier or certificate for the receiver", transport.ErrRejected)
	}
	lang := d.Language
	if lang == "" {
		lang = "NO"
	}
	if onPaper && rec.Spraak != "" {
		lang = rec.Spraak
	} else if !onPaper && doc.String("spraak") != "" {
		lang = doc.String("spraak")
	}
	pkg := dpi.Package{SenderOrg: sender, Avsenderidentifikator: doc.String("avsenderId"),
		FakturaReferanse: doc.String("fakturaReferanse"), Lang: strings.ToUpper(lang)}
	if !onPaper {
		if rec.PostkasseAdresse == nil || *rec.PostkasseAdresse == "" {
			return "", fmt.Errorf("%w: the receiver has no digital mailbox", transport.ErrRejected)
		}
		pkg.Postkasseadresse = *rec.PostkasseAdresse
	}
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for _, f := range out.Files {
		rc, err := f.Open()
		if err != nil {
			return "", fmt.Errorf("opening document: %w", err)
		}
		closers = append(closers, rc)
		pkg.Documents = append(pkg.Documents, dpi.Document{Name: f.Name, Title: f.Title, MimeType: f.MimeType, Content: rc})
	}
	spool, err := os.CreateTemp(d.SpoolDir, "dpi-*.cms")
	if err != nil {
		return "", fmt.Errorf("spooling dpi package: %w", err)
	}
	defer func() { spool.Close(); os.Remove(spool.Name()) }()
	fp, err := dpi.WritePackage(spool, pkg, d.Key, d.Cert, d.Chain, cert, now())
	if err != nil {
		return "", final(err, events.ReasonPayloadInvalid)
	}
	consumer := sender
	token, err := d.Client.Token(ctx, consumer)
	if err != nil {
		return "", fmt.Errorf("getting a maskinporten token: %w", err)
	}
	expected, _ := sbd.ParseTime(doc.ExpectedResponse())
	h := dpi.NewHeader(map[bool]string{true: "utskrift", false: "digital"}[onPaper], sender, transport.OrgNumber(receiver),
		out.MessageID, doc.ConversationID(), now(), expected)
	avs := dpi.Avsender{Virksomhetsidentifikator: dpi.Org(sender), Avsenderidentifikator: pkg.Avsenderidentifikator,
		FakturaReferanse: pkg.FakturaReferanse}
	var body any
	if onPaper {
		body = d.utskrift(doc, rec.PostAddress, rec.ReturnAddress, avs, fp, token)
	} else {
		body = d.digital(doc, out.Route, avs, fp, token)
	}
	bm, err := dpi.Marshal(h, body)
	if err != nil {
		return "", final(err, events.ReasonInternalError)
	}
	signed, err := dpi.Sign(bm, d.Key, d.Cert)
	if err != nil {
		return "", final(err, events.ReasonPayloadInvalid)
	}
	if out.Save != nil {
		if err := out.Save(ctx, posted); err != nil {
			return "", err
		}
	}
	err = d.Client.Send(ctx, dpi.Outgoing{MessageID: out.MessageID, Channel: d.channel(), ConsumerOrg: consumer, Token: token,
		JWS: signed, Package: func() (io.ReadCloser, error) { return os.Open(spool.Name()) }})
	if err != nil && out.Checkpoint == posted {
		// The earlier attempt's POST may still have been on its way when
		// this one asked (a crash right after the upload): the access point
		// then refuses this one as a duplicate. If it knows the message now,
		// the earlier one got through, and this is no failure.
		if _, serr := d.Client.Statuses(ctx, out.MessageID); serr == nil {
			return out.MessageID, nil
		}
	}
	if err != nil {
		return "", err
	}
	return out.MessageID, nil
}

func (d DPI) channel() string {
	if len(d.Channels) == 0 {
		return "no_difi_move_integrasjonspunkt"
	}
	if d.next == nil {
		return d.Channels[0]
	}
	return d.Channels[int(d.next.Add(1)-1)%len(d.Channels)]
}

// digital fills the digital business message (§4.4).
func (d DPI) digital(doc *sbd.Document, rt addressing.Route, avs dpi.Avsender, fp dpi.Fingerprint, token string) dpi.Digital {
	rec := rt.Record
	level, ok := doc.Int("sikkerhetsnivaa")
	if !ok || (level != 3 && level != 4) {
		level = 4
	}
	spraak := strings.ToUpper(doc.String("spraak"))
	if len(spraak) != 2 {
		spraak = "NO"
	}
	dg := dpi.Digital{Avsender: avs, Mottaker: dpi.Mailbox{Postkasseadresse: *rec.PostkasseAdresse},
		Dokumentpakkefingeravtrykk: fp, Maskinportentoken: token, Sikkerhetsnivaa: level,
		Ikkesensitivtittel: doc.String("tittel"), Spraak: spraak}
	if dg.Ikkesensitivtittel == "" {
		dg.Ikkesensitivtittel = "Melding"
	}
	if v, ok := lookupBool(doc, "digitalPostInfo", "aapningskvittering"); ok {
		dg.Aapningskvittering = v
	}
	if vd := doc.String("digitalPostInfo.virkningsdato"); vd != "" {
		if t, err := time.ParseInLocation("2006-01-02", vd, sbd.Oslo); err == nil {
			dg.Virkningstidspunkt = t.Format(time.RFC3339)
		}
	}
	var v dpi.Varsler
	if t := doc.String("varsler.epostTekst"); t != "" && rec.EpostAdresse != "" {
		v.Epostvarsel = &dpi.Varsel{Epostadresse: rec.EpostAdresse, Varslingstekst: t, Repetisjoner: []int{0, 7}}
	}
	if t := doc.String("varsler.smsTekst"); t != "" && rec.Mobilnummer != "" {
		v.Smsvarsel = &dpi.Varsel{Mobiltelefonnummer: rec.Mobilnummer, Varslingstekst: t, Repetisjoner: []int{0, 7}}
	}
	if v.Epostvarsel != nil || v.Smsvarsel != nil {
		dg.Varsler = &v
	}
	return dg
}

func lookupBool(doc *sbd.Document, obj, key string) (bool, bool) {
	m := doc.Object(obj)
	if m == nil {
		return false, false
	}
	b, ok := m[key].(bool)
	return b, ok
}

// utskrift fills the print business message (§4.4): the address blocks of
// the message, their gaps filled from the print record, foreign addresses
// folded; black and white, B and direct return by default.
func (d DPI) utskrift(doc *sbd.Document, post, ret *sr.PostAddress, avs dpi.Avsender, fp dpi.Fingerprint, token string) dpi.Utskrift {
	u := dpi.Utskrift{Avsender: avs, Dokumentpakkefingeravtrykk: fp, Maskinportentoken: token,
		Utskriftstype: "SORT_HVIT", Posttype: "B", Retur: dpi.Retur{Returposthaandtering: "DIREKTE_RETUR"}}
	if doc.String("utskriftsfarge") == "FARGE" {
		u.Utskriftstype = "FARGE"
	}
	if doc.String("posttype") == "A_PRIORITERT" {
		u.Posttype = "A"
	}
	if doc.String("retur.returhaandtering") == "MAKULERING_MED_MELDING" {
		u.Retur.Returposthaandtering = "MAKULERING_MED_MELDING"
	}
	u.Mottaker = addressOf(doc.Object("mottaker"), post).Fold()
	r, _ := doc.Object("retur")["mottaker"].(map[string]any)
	u.Retur.Mottaker = addressOf(r, ret).Fold()
	return u
}

// addressOf reads an address block of the business message; the fields it
// lacks come from the registry's address, whose street lines are joined by ";".
func addressOf(m map[string]any, reg *sr.PostAddress) dpi.Address {
	str := func(k string) string { v, _ := m[k].(string); return strings.TrimSpace(v) }
	a := dpi.Address{Navn: str("navn"), Adresselinje1: str("adresselinje1"), Adresselinje2: str("adresselinje2"),
		Adresselinje3: str("adresselinje3"), Adresselinje4: str("adresselinje4"), Postnummer: str("postnummer"),
		Poststed: str("poststed"), Land: str("land")}
	if reg == nil {
		return a
	}
	fill := func(dst *string, v string) {
		if *dst == "" {
			*dst = strings.TrimSpace(v)
		}
	}
	fill(&a.Navn, reg.Name)
	lines := []*string{&a.Adresselinje1, &a.Adresselinje2, &a.Adresselinje3, &a.Adresselinje4}
	if a.Adresselinje1 == "" {
		for i, l := range strings.SplitN(reg.Street, ";", 4) {
			fill(lines[i], l)
		}
	}
	fill(&a.Postnummer, reg.PostalCode)
	fill(&a.Poststed, reg.PostalArea)
	fill(&a.Land, reg.Country)
	return a
}

// Receipts implements ReceiptSource (§4.6): every channel, once without
// avsenderidentifikator (when PollWithout) and once per configured one.
func (d DPI) Receipts(ctx context.Context, handle func(ctx context.Context, r Receipt) error) error {
	chs := d.Channels
	if len(chs) == 0 {
		chs = []string{"no_difi_move_integrasjonspunkt"}
	}
	var ids []string
	if d.PollWithout || len(d.Avsenderidentifikatorer) == 0 {
		ids = append(ids, "")
	}
	ids = append(ids, d.Avsenderidentifikatorer...)
	var errs []error
	for _, ch := range chs {
		for _, id := range ids {
			if err := d.receiptsOf(ctx, ch, id, handle); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (d DPI) receiptsOf(ctx context.Context, ch, avsID string, handle func(ctx context.Context, r Receipt) error) error {
	for ctx.Err() == nil {
		items, err := d.Client.Incoming(ctx, ch, avsID, 100)
		if err != nil {
			return err
		}
		done := 0
		for _, it := range items {
			r, err := dpi.ReadReceipt([]byte(it.Forretningsmelding), dpi.ReadOptions{Roots: d.Roots})
			if err != nil {
				// Unreadable or unverifiable: it never will be. Logged and
				// marked read, so it does not hold up the receipts behind it.
				d.Logger.Warn("dpi receipt refused", logattr.Service("DPI"), logattr.Err(err))
				if id := dpi.UnverifiedID([]byte(it.Forretningsmelding)); id != "" {
					if err := d.Client.MarkRead(ctx, id); err != nil {
						return err
					}
					done++
				}
				continue
			}
			if err := handle(ctx, Receipt{ConversationID: r.ConversationID, Status: r.Status, At: r.At, Description: r.Description}); err != nil {
				d.Logger.Warn("recording a dpi receipt, will retry", logattr.Err(err))
				continue
			}
			if err := d.Client.MarkRead(ctx, r.MessageID); err != nil {
				return err
			}
			done++
		}
		if len(items) < 100 || done == 0 {
			return nil
		}
	}
	return ctx.Err()
}

// Track implements Tracker (§4.5): the access point's OPPRETTET is our
// SENDT, its SENDT our MOTTATT, FEILET is FEIL; polling stops at MOTTATT or
// FEIL.
func (d DPI) Track(ctx context.Context, reference string) ([]Status, bool, error) {
	sts, err := d.Client.Statuses(ctx, reference)
	if err != nil {
		return nil, false, err
	}
	var out []Status
	done := false
	for _, s := range sts {
		switch s.Status {
		case "SENDT":
			out = append(out, Status{Status: "MOTTATT", At: s.Timestamp})
			done = true
		case "FEILET":
			out = append(out, Status{Status: "FEIL", At: s.Timestamp, Description: "Feilet i aksesspunktet: " + s.Beskrivelse})
			done = true
		}
	}
	return out, done, nil
}

// receipts polls one channel's receipt stream once (§4.6): each receipt is
// recorded on the outgoing message of its conversation, SENDT first (the
// receipt proves the send), with the receipt's own time.
func (p *Pipeline) receipts(ctx context.Context, service string, src ReceiptSource) {
	err := src.Receipts(ctx, func(ctx context.Context, r Receipt) error {
		id, err := p.cfg.Messages.OutgoingByConversation(ctx, r.ConversationID, service)
		if errors.Is(err, message.ErrUnknownMessage) {
			p.log.Info("receipt for an unknown conversation, marked read", logattr.Service(service))
			return nil
		}
		if err != nil {
			return err
		}
		if err := p.cfg.Messages.SetStatus(ctx, message.Change{MessageID: id, Status: "SENDT"}); err != nil &&
			!errors.Is(err, message.ErrUnknownMessage) {
			return err
		}
		ch := message.Change{MessageID: id, Status: r.Status, At: r.At, Description: r.Description}
		if r.Status == "FEIL" {
			ch.Reason = events.ReasonChannelRejected
		}
		err = p.cfg.Messages.SetStatus(ctx, ch)
		if errors.Is(err, message.ErrUnknownMessage) {
			return nil
		}
		return err
	})
	if err != nil && ctx.Err() == nil {
		p.log.Warn("polling receipts", logattr.Service(service), logattr.Err(err))
	}
}

// dpiChannel builds the DPI channel from difi.move.dpi.* (channels.md §4).
func dpiChannel(cfg *config.Config, mp *maskinporten.Client, ks *keystore.Keystore, roots *x509.CertPool, printKRR *krr.Client,
	log *slog.Logger) (DPI, error) {
	c, err := dpi.New(dpi.Config{BaseURL: cfg.Value("difi.move.dpi.uri"), Tokens: func(ctx context.Context, consumer string) (string, error) {
		tok, err := mp.Token(ctx, maskinporten.Request{Scopes: []string{dpi.Scope}, ConsumerOrg: consumer})
		if err != nil {
			return "", err
		}
		return tok.AccessToken, nil
	}})
	if err != nil {
		return DPI{}, fmt.Errorf("configuring dpi: %w", err)
	}
	if roots == nil {
		if roots, err = x509.SystemCertPool(); err != nil {
			return DPI{}, fmt.Errorf("loading system trust anchors: %w", err)
		}
	}
	mpc := cfg.Value("difi.move.dpi.mpcId")
	if mpc == "" {
		mpc = "no.difi.move.integrasjonspunkt"
	}
	mpc = strings.ReplaceAll(mpc, ".", "_")
	var chs []string
	for _, v := range strings.Split(cfg.Value("difi.move.dpi.mpcIdListe"), ",") {
		if v = strings.TrimSpace(v); v != "" {
			chs = append(chs, strings.ReplaceAll(v, ".", "_"))
		}
	}
	if len(chs) == 0 {
		n := 1
		fmt.Sscan(cfg.Value("difi.move.dpi.mpcConcurrency"), &n)
		if n > 1 {
			for i := range n {
				chs = append(chs, fmt.Sprintf("%s-%d", mpc, i))
			}
		} else {
			chs = []string{mpc}
		}
	}
	var ids []string
	for _, v := range strings.Split(cfg.Value("difi.move.dpi.avsenderidentifikatorListe"), ",") {
		if v = strings.TrimSpace(v); v != "" {
			ids = append(ids, v)
		}
	}
	spool := ""
	if cfg.DataDir != "" {
		// The pipeline's own spool, emptied at every start: a package a
		// SIGKILL left behind is not kept.
		spool = filepath.Join(cfg.DataDir, "pipeline", "spool")
	}
	return DPI{Client: c, SpoolDir: spool, Key: ks.Key, Cert: ks.Cert, Chain: ks.Chain, Roots: roots, Print: printKRR, Channels: chs,
		Avsenderidentifikatorer: ids, PollWithout: cfg.Value("difi.move.dpi.pollWithoutAvsenderidentifikator") != "false",
		Language: cfg.Value("difi.move.dpi.language"), Logger: log.With(logattr.Component("dpi")), next: new(atomic.Uint64)}, nil
}

package pipeline

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/sbd"
	"github.com/efm-go/efm/internal/logattr"
	"github.com/efm-go/efm/packaging/cms"
	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/dpf"
)

// DPFInbox is DPF's incoming side (§5.3): it drains SvarInn receiving
// systems. It is separate from DPF so that sending works without SvarInn.
type DPFInbox struct {
	In []*dpf.SvarInn // must not be empty
	// Key and Cert decrypt what SvarUt encrypted to us
	// (difi.move.fiks.keystore, else the business certificate).
	Key  *rsa.PrivateKey
	Cert *x509.Certificate
	// Packer and OwnCert re-pack a shipment in the stored form of DPO: a
	// signed ASiC-E encrypted to our business certificate.
	Packer  Packer
	OwnCert *x509.Certificate
	OwnOrg  string
	// SBD defaults of §5.3 step 4.
	FallbackSender string // difi.move.fiks.inn.fallback-sender-org-nr (999999999)
	Process        string // difi.move.fiks.inn.process
	DocumentType   string // difi.move.fiks.inn.document-type
	MaxSize        int64  // a shipment's size, encrypted or unzipped; 0: 1 GiB
	TempDir        string
	Logger         *slog.Logger
	Now            func() time.Time
}

// Fetch implements Inbox: every receiving system, every waiting shipment.
// A shipment that cannot be opened is reported with mottakFeilet and never
// holds up the others; one the core did not store stays for the next run.
// The core discards a shipment it already holds (its id is the messageId),
// so a crash between storing and kvitterMottak neither loses nor doubles.
func (d DPFInbox) Fetch(ctx context.Context, deliver func(context.Context, Delivery) error) error {
	var errs []error
	for _, c := range d.In {
		list, err := c.New(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("listing svarinn shipments: %w", err))
			continue
		}
		for _, sh := range list {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err := d.one(ctx, c, sh, deliver); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// errShipment marks a shipment that will never open: mottakFeilet.
var errShipment = errors.New("svarinn shipment cannot be opened")

func (d DPFInbox) one(ctx context.Context, c *dpf.SvarInn, sh dpf.Shipment, deliver func(context.Context, Delivery) error) error {
	log := d.log().With(logattr.MessageID(sh.ID), logattr.Service("DPF"))
	pkg, cleanup, err := d.open(ctx, c, sh)
	defer cleanup()
	if errors.Is(err, errShipment) || errors.Is(err, transport.ErrMalformed) {
		log.Warn("svarinn shipment cannot be opened, reported as failed", logattr.Err(err))
		if ferr := c.Failed(ctx, sh.ID, "Forsendelsen kunne ikke åpnes av integrasjonspunktet", true); ferr != nil {
			return fmt.Errorf("reporting failed svarinn import: %w", ferr)
		}
		return nil
	}
	if err != nil {
		return err
	}
	raw, err := d.sbdFor(sh, pkg.primary)
	if err != nil {
		return err
	}
	f, err := os.Open(pkg.path)
	if err != nil {
		return fmt.Errorf("opening repacked shipment: %w", err)
	}
	defer f.Close()
	err = deliver(ctx, Delivery{SBD: raw, Package: f})
	if err != nil && !errors.Is(err, transport.ErrMalformed) {
		return err
	}
	if err := c.Acknowledge(ctx, sh.ID); err != nil {
		return fmt.Errorf("acknowledging svarinn shipment: %w", err)
	}
	log.Debug("svarinn shipment received")
	return nil
}

type repacked struct {
	path    string
	primary string
}

// open downloads, decrypts and unzips a shipment and re-packs it with an
// arkivmelding.xml built from its metadata.
func (d DPFInbox) open(ctx context.Context, c *dpf.SvarInn, sh dpf.Shipment) (repacked, func(), error) {
	var tmp []string
	cleanup := func() {
		for _, p := range tmp {
			os.Remove(p)
		}
	}
	if !sbd.IsUUID(sh.ID) {
		return repacked{}, cleanup, fmt.Errorf("%w: shipment id is not a uuid", errShipment)
	}
	limit := d.MaxSize
	if limit <= 0 {
		limit = 1 << 30
	}
	rc, err := c.Download(ctx, sh)
	if err != nil {
		return repacked{}, cleanup, err
	}
	defer rc.Close()
	plain, err := os.CreateTemp(d.TempDir, "svarinn-*.zip")
	if err != nil {
		return repacked{}, cleanup, fmt.Errorf("spooling svarinn shipment: %w", err)
	}
	tmp = append(tmp, plain.Name())
	defer plain.Close()
	info, err := cms.Decrypt(plain, rc, d.Key, cms.DecryptOptions{Cert: d.Cert, FirstRecipient: true, MaxSize: limit})
	if err != nil {
		if ctx.Err() != nil || transport.Retryable(err) && !isCMSVerdict(err) {
			return repacked{}, cleanup, fmt.Errorf("downloading svarinn shipment: %w", err)
		}
		return repacked{}, cleanup, fmt.Errorf("%w: decrypting: %w", errShipment, err)
	}
	zr, err := zip.NewReader(plain, info.Size)
	if err != nil {
		return repacked{}, cleanup, fmt.Errorf("%w: reading zip: %w", errShipment, err)
	}
	files, err := d.unzip(zr, sh, limit)
	if err != nil {
		return repacked{}, cleanup, err
	}
	names := make([]string, 0, len(files))
	for _, f := range files {
		names = append(names, f.Name)
	}
	am, err := buildArkivmelding(sh, names, d.now())
	if err != nil {
		return repacked{}, cleanup, err
	}
	all := append([]File{{Name: "arkivmelding.xml", MimeType: "application/xml", Size: int64(len(am)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(am)), nil }}}, files...)
	out, err := os.CreateTemp(d.TempDir, "svarinn-*.cms")
	if err != nil {
		return repacked{}, cleanup, fmt.Errorf("spooling svarinn shipment: %w", err)
	}
	tmp = append(tmp, out.Name())
	err = d.Packer.Pack(ctx, PackRequest{SenderOrg: d.senderOrg(sh), ReceiverOrg: d.receiverOrg(sh), Files: all,
		Recipient: d.OwnCert, KeyTransport: cms.RSAESOAEP}, out)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return repacked{}, cleanup, fmt.Errorf("repacking svarinn shipment: %w", err)
	}
	return repacked{path: out.Name(), primary: "arkivmelding.xml"}, cleanup, nil
}

func isCMSVerdict(err error) bool {
	return errors.Is(err, cms.ErrMalformed) || errors.Is(err, cms.ErrDecrypt) || errors.Is(err, cms.ErrUnsupported) ||
		errors.Is(err, cms.ErrTooLarge) || errors.Is(err, cms.ErrNoRecipient) || errors.Is(err, cms.ErrAuthentication)
}

// maxEntries bounds the files of one shipment; SvarUt's own limit is far
// below it.
const maxEntries = 1000

// unzip checks the ZIP's entries (names safe, sizes bounded) and returns
// them as files that read from the ZIP.
func (d DPFInbox) unzip(zr *zip.Reader, sh dpf.Shipment, limit int64) ([]File, error) {
	if len(zr.File) == 0 || len(zr.File) > maxEntries {
		return nil, fmt.Errorf("%w: %d files in the zip", errShipment, len(zr.File))
	}
	mimes := map[string]string{}
	for _, fm := range sh.Filmetadata {
		mimes[fm.Filnavn] = fm.Mimetype
	}
	var total int64
	var files []File
	seen := map[string]bool{}
	for _, zf := range zr.File {
		name := zf.Name
		if name == "" || strings.ContainsAny(name, `/\:`) || strings.Contains(name, "..") || name == "arkivmelding.xml" ||
			seen[name] || zf.FileInfo().IsDir() {
			return nil, fmt.Errorf("%w: file name %q not allowed", errShipment, name)
		}
		seen[name] = true
		total += int64(zf.UncompressedSize64)
		if zf.UncompressedSize64 > uint64(limit) || total > limit {
			return nil, fmt.Errorf("%w: larger than %d bytes unzipped", errShipment, limit)
		}
		mime := mimes[name]
		if mime == "" {
			mime = "application/octet-stream"
		}
		zf := zf
		files = append(files, File{Name: name, Title: name, MimeType: mime, Size: int64(zf.UncompressedSize64),
			Open: func() (io.ReadCloser, error) {
				rc, err := zf.Open()
				if err != nil {
					return nil, err
				}
				// A ZIP may understate a size; never read past what it declared.
				return struct {
					io.Reader
					io.Closer
				}{io.LimitReader(rc, int64(zf.UncompressedSize64)), rc}, nil
			}})
	}
	return files, nil
}

func (d DPFInbox) senderOrg(sh dpf.Shipment) string {
	if st := sh.SvarSendesTil; st != nil && transport.OrgNumber(st.Orgnr) != "" {
		return transport.OrgNumber(st.Orgnr)
	}
	if d.FallbackSender != "" {
		return d.FallbackSender
	}
	return "999999999"
}

func (d DPFInbox) receiverOrg(sh dpf.Shipment) string {
	if o := transport.OrgNumber(sh.Mottaker.Orgnr); o != "" {
		return o
	}
	return d.OwnOrg
}

// sbdFor is the SBD of §5.3 step 4: messageId = conversationId = the
// shipment id, the SvarUt answer reference as ReceiverRef.
func (d DPFInbox) sbdFor(sh dpf.Shipment, primary string) ([]byte, error) {
	process := d.Process
	if process == "" {
		process = "urn:no:difi:profile:arkivmelding:administrasjon:ver1.0"
	}
	standard := d.DocumentType
	if standard == "" {
		standard = sbd.Standards[sbd.TypeArkivmelding]
	}
	scopes := []sbd.Scope{{Type: sbd.ScopeConversationID, InstanceIdentifier: sh.ID, Identifier: process}}
	if sbd.IsUUID(sh.SvarPaForsendelse) {
		scopes = append(scopes, sbd.Scope{Type: sbd.ScopeReceiverRef, InstanceIdentifier: sh.SvarPaForsendelse, Identifier: process})
	}
	party := func(org string) []sbd.Partner {
		return []sbd.Partner{{Identifier: &sbd.PartnerIdentification{Value: "0192:" + org, Authority: sbd.AuthorityISO6523}}}
	}
	business := map[string]any{"hoveddokument": primary}
	if n, err := strconv.Atoi(sh.Niva); err == nil {
		business["sikkerhetsnivaa"] = n
	}
	doc := &sbd.Document{Type: sbd.TypeArkivmelding, Business: business, Header: &sbd.Header{
		HeaderVersion: "1.0", Sender: party(d.senderOrg(sh)), Receiver: party(d.receiverOrg(sh)),
		DocumentIdentification: &sbd.DocumentIdentification{Standard: standard, TypeVersion: "2.0", InstanceIdentifier: sh.ID,
			Type: sbd.TypeArkivmelding, CreationDateAndTime: sbd.FormatTime(d.now())},
		BusinessScope: &sbd.BusinessScope{Scope: scopes},
	}}
	b, err := doc.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("building the sbd of a svarinn shipment: %w", err)
	}
	return b, nil
}

func (d DPFInbox) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d DPFInbox) log() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

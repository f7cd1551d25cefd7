package dpisim

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"io"
	"strings"
	"time"

	"github.com/efm-go/efm/packaging/asic"
	"github.com/efm-go/efm/packaging/cms"
	"github.com/efm-go/efm/packaging/jws"
	"github.com/efm-go/efm/transport/dpi"
)

// orgOf reads the organisation number a business certificate carries:
// organizationIdentifier NTRNO-<orgnr> (SEID 2), else serialNumber (SEID 1).
func orgOf(c *x509.Certificate) string {
	for _, n := range c.Subject.Names {
		if n.Type.Equal(asn1.ObjectIdentifier{2, 5, 4, 97}) {
			if v, ok := n.Value.(string); ok {
				if org, ok := strings.CutPrefix(v, "NTRNO-"); ok {
					return org
				}
			}
		}
	}
	return c.Subject.SerialNumber
}

// open is corners 3 and 4: decrypt with the citizen's or the print key,
// verify the XAdES signature and digests, and check the DPI manifest
// against the business message. It returns the document names and titles,
// or what went wrong.
func (s *Sim) open(bm *businessMessage, pkg []byte) (docs, titles []string, problem string) {
	var id *Identity
	if bm.Type == "digital" {
		if m, ok := s.opts.Mailboxes[bm.Mailbox]; ok {
			id = &m
		}
	} else {
		id = s.opts.Print
	}
	if id == nil {
		return nil, nil, "no key for the receiver"
	}
	var plain bytes.Buffer
	if _, err := cms.Decrypt(&plain, bytes.NewReader(pkg), id.Key, cms.DecryptOptions{Cert: id.Cert, MaxSize: maxPart}); err != nil {
		return nil, nil, "decrypting: " + err.Error()
	}
	c, err := asic.Open(bytes.NewReader(plain.Bytes()), int64(plain.Len()), asic.ReadOptions{Roots: s.opts.Roots, CurrentTime: s.opts.Now()})
	if err != nil {
		return nil, nil, "verifying container: " + err.Error()
	}
	if c.Kind != asic.XAdES {
		return nil, nil, "container is not XAdES-signed"
	}
	if "0192:"+orgOf(c.Signer) != bm.Header.Sender[0].Identifier.Value {
		return nil, nil, "container not signed by the sender"
	}
	e := c.Entry("manifest.xml")
	if e == nil {
		return nil, nil, "no manifest.xml"
	}
	rc, err := e.Open()
	if err != nil {
		return nil, nil, "reading manifest: " + err.Error()
	}
	m, err := dpi.ParseManifest(rc)
	rc.Close()
	if err != nil {
		return nil, nil, err.Error()
	}
	if m.Avsender.Organisasjon.Value != bm.Avsender.Virksomhetsidentifikator.Value {
		return nil, nil, "manifest avsender is not the sender"
	}
	if bm.Type == "digital" && (m.Mottaker == nil || m.Mottaker.Postkasseadresse != bm.Mailbox) {
		return nil, nil, "manifest mottaker is not the mailbox"
	}
	for _, d := range append([]dpi.ManifestDoc{m.Hoveddokument}, m.Vedlegg...) {
		if c.Entry(d.Href) == nil {
			return nil, nil, "manifest names a missing document"
		}
		docs, titles = append(docs, d.Href), append(titles, d.Tittel.Text)
	}
	return docs, titles, ""
}

// scheduleReceipts queues the receipts of one message; s.mu is held.
func (s *Sim) scheduleReceipts(m *message, bm *businessMessage, sc Schedule, kanal, problem string) {
	supplier := strings.TrimPrefix(m.received.Receiver, "0192:")
	signer, ok := s.opts.Suppliers[supplier]
	if !ok {
		return
	}
	deliver := m.sentAt.Add(time.Duration(sc.Deliver))
	tamper := false
	add := func(typ string, at time.Time, extra map[string]any) {
		tok, id, err := s.signReceipt(signer, supplier, bm, typ, at, extra)
		if err != nil {
			return
		}
		if tamper {
			// One changed character in the signature: it no longer verifies.
			i := strings.LastIndex(tok, ".") + 8
			tok = tok[:i] + map[bool]string{true: "A", false: "B"}[tok[i] != 'A'] + tok[i+1:]
			tamper = false
		}
		s.receipts = append(s.receipts, &receipt{id: id, consumer: m.consumer, kanal: strings.ToLower(kanal),
			avsenderID: m.avsenderID, availableAt: at, token: tok})
	}
	if problem != "" {
		add("feil", deliver, map[string]any{"feiltype": "KLIENT", "detaljer": "Dokumentpakken kunne ikke åpnes"})
		return
	}
	first := "leveringskvittering"
	if bm.Type == "utskrift" {
		first = "mottakskvittering"
	}
	switch sc.Outcome {
	case "feil":
		add("feil", deliver, map[string]any{"feiltype": "SERVER", "detaljer": "Intern feil hos postkasseleverandør"})
	case "unknown":
		add("flyttetkvittering", deliver, nil)
	case "badsig":
		tamper = true
		add(first, deliver, nil)
		add(first, deliver.Add(time.Duration(sc.Open)), nil)
	case "early":
		add(first, m.created, nil)
	case "varslingfeilet":
		add(first, deliver, nil)
		add("varslingfeiletkvittering", deliver.Add(time.Duration(sc.Open)), map[string]any{"varslingskanal": "epost"})
	case "returpost":
		add(first, deliver, nil)
		add("returpostkvittering", deliver.Add(time.Duration(sc.Open)), nil)
	default:
		add(first, deliver, nil)
		if bm.Opening {
			add("aapningskvittering", deliver.Add(time.Duration(sc.Open)), nil)
		}
	}
}

// signReceipt builds and signs one receipt from the supplier back to the
// sender, in the message's conversation.
func (s *Sim) signReceipt(signer Identity, supplier string, bm *businessMessage, typ string, at time.Time,
	extra map[string]any) (string, string, error) {
	id := newUUID()
	sender := strings.TrimPrefix(bm.Header.Sender[0].Identifier.Value, "0192:")
	h := dpi.NewHeader(typ, supplier, sender, id, bm.Header.ConversationID(), at, time.Time{})
	body := map[string]any{"avsender": bm.Avsender,
		"mottaker":  map[string]any{"virksomhetsidentifikator": dpi.Org(supplier)},
		"tidspunkt": at.UTC().Format(time.RFC3339Nano)}
	for k, v := range extra {
		body[k] = v
	}
	doc, err := dpi.Marshal(h, body)
	if err != nil {
		return "", "", err
	}
	if _, known := map[string]bool{"flyttetkvittering": true}[typ]; !known {
		if _, err := dpi.Validate(doc); err != nil {
			return "", "", err
		}
	}
	tok, err := jws.Sign(signer.Key, doc, map[string]any{"x5c": jws.X5CHeader(signer.Cert)})
	return string(tok), id, err
}

func newUUID() string {
	var b [16]byte
	_, _ = io.ReadFull(rand.Reader, b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

package sandbox

import (
	"crypto/rsa"
	"fmt"
	"log/slog"

	"github.com/efm-go/efm/transport/dpi/dpisim"
)

// citizenKeys issues the encryption certificates of the seeded citizens
// with a mailbox, from the test CA: KRR hands out the certificate, and the
// DPI simulator's mailbox suppliers decrypt with the key. Files are named
// by seed position, never by person number.
func (sb *Sandbox) citizenKeys() (certs map[string][]byte, mailboxes map[string]dpisim.Identity, err error) {
	certs, mailboxes = map[string][]byte{}, map[string]dpisim.Identity{}
	for i, p := range sb.Seed.Persons {
		if p.KRR == nil || !p.KRR.Certificate || p.KRR.DigitalPost == nil {
			continue
		}
		dp := p.KRR.DigitalPost
		id, err := sb.PKI.Issue(dp.Postkasseleverandoeradresse, "citizen mailbox key", fmt.Sprintf("citizen-%d", i))
		if err != nil {
			return nil, nil, fmt.Errorf("issuing the mailbox key of persons[%d]: %w", i, err)
		}
		certs[p.Personidentifikator] = id.CertPEM
		mailboxes[dp.Postkasseadresse] = dpisim.Identity{Key: id.Key, Cert: id.Cert}
	}
	return certs, mailboxes, nil
}

// startDPI starts the DPI access point with the mailbox suppliers and the
// print service behind it.
func (sb *Sandbox) startDPI(mpKey *rsa.PublicKey, mailboxes map[string]dpisim.Identity, log *slog.Logger) error {
	suppliers := map[string]dpisim.Identity{}
	for _, p := range sb.Seed.Persons {
		if p.KRR != nil && p.KRR.DigitalPost != nil {
			org := p.KRR.DigitalPost.Postkasseleverandoeradresse
			if id := sb.PKI.Orgs[org]; id != nil {
				suppliers[org] = dpisim.Identity{Key: id.Key, Cert: id.Cert}
			}
		}
	}
	var print *dpisim.Identity
	if p := sb.PKI.Print; p != nil {
		print = &dpisim.Identity{Key: p.Key, Cert: p.Cert}
		suppliers[p.OrgNumber] = *print
	}
	sim, err := dpisim.New(dpisim.Options{MaskinportenKeys: []*rsa.PublicKey{mpKey}, Roots: sb.PKI.Pool(),
		Mailboxes: mailboxes, Print: print, Suppliers: suppliers})
	if err != nil {
		return fmt.Errorf("starting the dpi simulator: %w", err)
	}
	_, err = sb.serve(simulator{
		name: "dpi", description: "DPI access point with the mailbox suppliers and the print service behind it",
		handler: sim,
		keys:    map[string]string{"difi.move.dpi.uri": ""},
	}, log)
	return err
}

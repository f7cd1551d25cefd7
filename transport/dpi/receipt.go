package dpi

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/efm-go/efm/packaging/jws"
	"github.com/efm-go/efm/transport"
)

// Receipt is a receipt the mailbox supplier or the print service sent,
// verified and mapped to our status (§4.6).
type Receipt struct {
	// MessageID is the receipt's own instanceIdentifier, the id to mark read.
	MessageID      string
	ConversationID string
	Type           string    // leveringskvittering, aapningskvittering, …
	Status         string    // LEVERT, LEST, FEIL or ANNET
	At             time.Time // tidspunkt
	// Description says why for FEIL and ANNET: the feil receipt's feiltype
	// and detaljer, or the unknown type.
	Description string
	// Signer is the certificate the receipt was signed with.
	Signer *x509.Certificate
}

// statusOf maps a receipt type to our status (§4.6).
var statusOf = map[string]string{
	"leveringskvittering":      "LEVERT",
	"aapningskvittering":       "LEST",
	"mottakskvittering":        "LEVERT",
	"returpostkvittering":      "FEIL",
	"varslingfeiletkvittering": "FEIL",
	"feil":                     "FEIL",
}

// ReadOptions decide which signatures a receipt reader trusts.
type ReadOptions struct {
	// Roots are the business certificate CAs the x5c chain must reach; must
	// not be nil.
	Roots *x509.CertPool
	// Now is when the chain must be valid; zero means now.
	Now time.Time
}

// ReadReceipt verifies a receipt JWS against its x5c certificate, checks that
// certificate as a business certificate, validates the payload against the
// schema of its type and maps it (§4.6). A receipt of a type without a
// schema of ours is ANNET, once its signature verifies. Every error wraps
// transport.ErrMalformed: a receipt that fails now fails forever.
func ReadReceipt(token []byte, opts ReadOptions) (*Receipt, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: dpi receipt: %s", transport.ErrMalformed, fmt.Sprintf(format, args...))
	}
	if opts.Roots == nil {
		return nil, errors.New("dpi: ReadReceipt needs Roots")
	}
	payload, leaf, err := VerifyJWS(token, opts.Roots, opts.Now)
	if err != nil {
		return nil, bad("%v", err)
	}
	var doc struct {
		SBD map[string]json.RawMessage `json:"standardBusinessDocument"`
	}
	if err := json.Unmarshal(payload, &doc); err != nil || doc.SBD == nil {
		return nil, bad("payload is not a standard business document")
	}
	var h Header
	if err := json.Unmarshal(doc.SBD["standardBusinessDocumentHeader"], &h); err != nil {
		return nil, bad("header: %v", err)
	}
	r := &Receipt{MessageID: h.DocumentIdentification.InstanceIdentifier, ConversationID: h.ConversationID(),
		Type: h.DocumentIdentification.Type, Signer: leaf}
	if r.MessageID == "" || r.ConversationID == "" {
		return nil, bad("header without instanceIdentifier or conversation id")
	}
	st, known := statusOf[r.Type]
	if !known {
		r.Status, r.Description = "ANNET", "Ukjent kvitteringstype: "+truncate(r.Type, 64)
		r.At = opts.Now
		return r, nil
	}
	if _, err := Validate(payload); err != nil {
		return nil, bad("%v", err)
	}
	var body struct {
		Tidspunkt time.Time `json:"tidspunkt"`
		Feiltype  string    `json:"feiltype"`
		Detaljer  string    `json:"detaljer"`
	}
	if err := json.Unmarshal(doc.SBD[r.Type], &body); err != nil {
		return nil, bad("%s: %v", r.Type, err)
	}
	r.Status, r.At = st, body.Tidspunkt
	switch r.Type {
	case "feil":
		r.Description = truncate("Feil fra postkasse eller utskrift ("+body.Feiltype+"): "+body.Detaljer, 500)
	case "returpostkvittering":
		r.Description = "Brevet kom i retur"
	case "varslingfeiletkvittering":
		r.Description = "Varsling feilet"
	}
	return r, nil
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// VerifyJWS verifies a compact JWS against the certificate of its x5c
// header, and that certificate, with the rest of x5c as intermediates,
// against roots at now (zero: the current time): the check the business
// message and every receipt get. It returns the payload and the signer.
func VerifyJWS(token []byte, roots *x509.CertPool, now time.Time) ([]byte, *x509.Certificate, error) {
	hdr, err := jws.Header(token)
	if err != nil {
		return nil, nil, err
	}
	if alg, _ := hdr["alg"].(string); alg != "RS256" {
		return nil, nil, errors.New("alg must be RS256")
	}
	chain, err := jws.X5C(hdr)
	if err != nil || len(chain) == 0 {
		return nil, nil, errors.New("no x5c certificate")
	}
	leaf := chain[0]
	pub, ok := leaf.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, nil, errors.New("x5c certificate has no RSA key")
	}
	payload, _, err := jws.Verify(token, pub)
	if err != nil {
		return nil, nil, fmt.Errorf("signature: %w", err)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, nil, fmt.Errorf("signer is not a trusted business certificate: %w", err)
	}
	return payload, leaf, nil
}

// UnverifiedID reads the instanceIdentifier of a receipt whose signature or
// content could not be trusted, "" when there is none. It is only good for
// marking such a receipt read, so that it stops blocking the ones behind it.
func UnverifiedID(token []byte) string {
	parts := bytes.SplitN(token, []byte("."), 3)
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(string(parts[1]))
	if err != nil {
		return ""
	}
	var doc struct {
		SBD struct {
			Header Header `json:"standardBusinessDocumentHeader"`
		} `json:"standardBusinessDocument"`
	}
	if json.Unmarshal(payload, &doc) != nil {
		return ""
	}
	id := doc.SBD.Header.DocumentIdentification.InstanceIdentifier
	if len(id) != 36 {
		return ""
	}
	return id
}

package dpi_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/packaging/jws"
	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/dpi"
	"github.com/efm-go/efm/transport/dpi/dpisim"
)

func startSim(t *testing.T, sc dpisim.Schedule) (*dpisim.Sim, *dpi.Client) {
	t.Helper()
	sim, err := dpisim.New(dpisim.Options{MaskinportenKeys: []*rsa.PublicKey{&mpSigner.Key.PublicKey}, Roots: pki.Pool(),
		Mailboxes: map[string]dpisim.Identity{mailbox: {Key: citizen.Key, Cert: citizen.Cert}},
		Print:     &dpisim.Identity{Key: pki.Print.Key, Cert: pki.Print.Cert},
		Suppliers: map[string]dpisim.Identity{supplierOrg: {Key: supplierKey.Key, Cert: supplierKey.Cert}}, Schedule: &sc})
	require.NoError(t, err)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c, err := dpi.New(dpi.Config{BaseURL: srv.URL, Tokens: tokens})
	require.NoError(t, err)
	return sim, c
}

// letter is one message ready to send: its JWS and CMS.
type letter struct {
	id, conversation string
	jws, cms         []byte
	token            string
}

func digitalLetter(t *testing.T, opening bool, tweak func(*dpi.Digital)) letter {
	t.Helper()
	var pkg bytes.Buffer
	fp, err := dpi.WritePackage(&pkg, dpi.Package{SenderOrg: senderOrg, Postkasseadresse: mailbox, Lang: "NO",
		Documents: []dpi.Document{{Name: "vedtak.pdf", Title: "Vedtak", MimeType: "application/pdf", Content: strings.NewReader("%PDF-1.4 vedtak")},
			{Name: "vedlegg.pdf", MimeType: "application/pdf", Content: strings.NewReader("%PDF-1.4 vedlegg")}}},
		sender.Key, sender.Cert, nil, citizen.Cert, time.Now())
	require.NoError(t, err)
	l := letter{id: uuid.NewString(), conversation: uuid.NewString(), cms: pkg.Bytes(), token: mint(senderOrg, dpi.Scope)}
	h := dpi.NewHeader("digital", senderOrg, supplierOrg, l.id, l.conversation, time.Now(), time.Now().Add(24*time.Hour))
	d := dpi.Digital{Avsender: dpi.Avsender{Virksomhetsidentifikator: dpi.Org(senderOrg)}, Mottaker: dpi.Mailbox{Postkasseadresse: mailbox},
		Dokumentpakkefingeravtrykk: fp, Maskinportentoken: l.token, Sikkerhetsnivaa: 4, Aapningskvittering: opening,
		Ikkesensitivtittel: "Vedtak", Spraak: "NO",
		Varsler: &dpi.Varsler{Smsvarsel: &dpi.Varsel{Mobiltelefonnummer: "+4799999999", Varslingstekst: "Brev", Repetisjoner: []int{0, 7}}}}
	if tweak != nil {
		tweak(&d)
	}
	doc, err := dpi.Marshal(h, d)
	require.NoError(t, err)
	typ, err := dpi.Validate(doc)
	require.NoError(t, err, "the client's business message must match the owners' schema")
	require.Equal(t, "digital", typ)
	l.jws, err = dpi.Sign(doc, sender.Key, sender.Cert)
	require.NoError(t, err)
	return l
}

func (l letter) out() dpi.Outgoing {
	return dpi.Outgoing{MessageID: l.id, Channel: "no_difi_move_integrasjonspunkt", ConsumerOrg: senderOrg, Token: l.token, JWS: l.jws,
		Package: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(l.cms)), nil }}
}

// receipts waits for n receipts on the channel, reads and marks each read.
func receipts(t *testing.T, c *dpi.Client, n int) []*dpi.Receipt {
	t.Helper()
	ctx := context.Background()
	var got []*dpi.Receipt
	require.Eventually(t, func() bool {
		items, err := c.Incoming(ctx, "no_difi_move_integrasjonspunkt", "", 100)
		require.NoError(t, err)
		for _, it := range items {
			// Every receipt of a known type must match the owners' schema;
			// the "unknown" outcome sends a type no schema has.
			if typ, err := dpi.Validate(jwsPayload(t, it.Forretningsmelding)); typ != "flyttetkvittering" {
				require.NoError(t, err, "the simulator's receipt must match the owners' schema")
			}
			r, err := dpi.ReadReceipt([]byte(it.Forretningsmelding), dpi.ReadOptions{Roots: pki.Pool()})
			require.NoError(t, err)
			require.NoError(t, c.MarkRead(ctx, r.MessageID))
			got = append(got, r)
		}
		return len(got) >= n
	}, 10*time.Second, 20*time.Millisecond)
	return got
}

func jwsPayload(t *testing.T, tok string) []byte {
	t.Helper()
	payload, _, err := jws.Verify([]byte(tok), &supplierKey.Key.PublicKey)
	require.NoError(t, err)
	return payload
}

// TestClient_DigitalRoundTrip: a letter goes out, the access point reports
// OPPRETTET then SENDT, the mailbox supplier opens the package and answers
// with a delivery and an opening receipt, both valid against the schemas.
func TestClient_DigitalRoundTrip(t *testing.T) {
	sim, c := startSim(t, dpisim.DefaultSchedule)
	ctx := context.Background()
	l := digitalLetter(t, true, nil)
	require.NoError(t, c.Send(ctx, l.out()))

	require.Eventually(t, func() bool {
		sts, err := c.Statuses(ctx, l.id)
		require.NoError(t, err)
		return len(sts) == 2 && sts[0].Status == "OPPRETTET" && sts[1].Status == "SENDT"
	}, 5*time.Second, 10*time.Millisecond)

	got := receipts(t, c, 2)
	require.Len(t, got, 2)
	assert.Equal(t, "leveringskvittering", got[0].Type)
	assert.Equal(t, "LEVERT", got[0].Status)
	assert.Equal(t, "aapningskvittering", got[1].Type)
	assert.Equal(t, "LEST", got[1].Status)
	for _, r := range got {
		assert.Equal(t, l.conversation, r.ConversationID)
		assert.False(t, r.At.IsZero())
	}
	items, err := c.Incoming(ctx, "no_difi_move_integrasjonspunkt", "", 100)
	require.NoError(t, err)
	assert.Empty(t, items, "receipts marked read are not listed again")

	m := sim.Messages()
	require.Len(t, m, 1)
	assert.Empty(t, m[0].Problem)
	assert.Equal(t, []string{"vedtak.pdf", "vedlegg.pdf"}, m[0].Documents)
	assert.Equal(t, []string{"Vedtak", "Missing title"}, m[0].Titles)
	assert.Equal(t, []string{"sms"}, m[0].Notified)

	_, err = c.Statuses(ctx, uuid.NewString())
	assert.ErrorIs(t, err, transport.ErrNotFound)
	assert.NoError(t, c.MarkRead(ctx, uuid.NewString()), "an unknown receipt is no error")
}

// TestClient_EveryReceiptType: each outcome the simulator can be told to
// produce reads as the status §4.6 gives it.
func TestClient_EveryReceiptType(t *testing.T) {
	for outcome, want := range map[string][]string{
		"feil":           {"FEIL"},
		"varslingfeilet": {"LEVERT", "FEIL"},
		"unknown":        {"ANNET"},
		"early":          {"LEVERT"},
	} {
		t.Run(outcome, func(t *testing.T) {
			sc := dpisim.DefaultSchedule
			sc.Outcome = outcome
			_, c := startSim(t, sc)
			require.NoError(t, c.Send(context.Background(), digitalLetter(t, false, nil).out()))
			got := receipts(t, c, len(want))
			var sts []string
			for _, r := range got {
				sts = append(sts, r.Status)
			}
			assert.Equal(t, want, sts)
		})
	}
}

// TestSim_Refuses: what the access point checks before it accepts (§9.12),
// each refusal a 4xx the client reports as final.
func TestSim_Refuses(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		mutate func(*letter)
		status int
	}{
		"no scope":              {func(l *letter) { l.token = mint(senderOrg, "eformidling:dpo") }, http.StatusForbidden},
		"bearer is not in body": {func(l *letter) { l.token = mint(senderOrg, dpi.Scope+" x") }, http.StatusBadRequest},
		"consumer not sender":   {func(l *letter) { l.token = mint(supplierOrg, dpi.Scope) }, http.StatusBadRequest},
		"fingerprint":           {func(l *letter) { l.cms = append(l.cms, 0) }, http.StatusBadRequest},
		"untrusted signer": {func(l *letter) {
			payload, _, _ := jws.Verify(l.jws, &sender.Key.PublicKey)
			l.jws, _ = jws.Sign(mpSigner.Key, payload, map[string]any{"x5c": []string{"bm90IGEgY2VydA=="}})
		}, http.StatusBadRequest},
	} {
		t.Run(name, func(t *testing.T) {
			sim, c := startSim(t, dpisim.DefaultSchedule)
			l := digitalLetter(t, false, nil)
			tc.mutate(&l)
			err := c.Send(ctx, l.out())
			var se *transport.StatusError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tc.status, se.StatusCode, se.Title)
			assert.False(t, transport.Retryable(err), "a refusal is final")
			assert.Empty(t, sim.Messages())
		})
	}
	t.Run("duplicate messageId", func(t *testing.T) {
		sim, c := startSim(t, dpisim.DefaultSchedule)
		l := digitalLetter(t, false, nil)
		require.NoError(t, c.Send(ctx, l.out()))
		err := c.Send(ctx, l.out())
		assert.ErrorIs(t, err, transport.ErrRejected)
		assert.Equal(t, 1, sim.Messages()[0].Duplicates)
	})
	t.Run("schema", func(t *testing.T) {
		l := digitalLetter(t, false, nil)
		payload, _, err := jws.Verify(l.jws, &sender.Key.PublicKey)
		require.NoError(t, err)
		bad := bytes.Replace(payload, []byte(`"sikkerhetsnivaa":4`), []byte(`"sikkerhetsnivaa":2`), 1)
		_, err = dpi.Sign(bad, sender.Key, sender.Cert)
		assert.ErrorIs(t, err, dpi.ErrSchema, "the client never signs what the schema refuses")
	})
}

// TestPackage_IndependentTools: openssl decrypts our CMS with the
// recipient's key, xmllint finds manifest.xml valid against the owners'
// sdp-manifest.xsd, and xmlsec1 verifies the XAdES signature over the
// unpacked files.
func TestPackage_IndependentTools(t *testing.T) {
	openssl := requireTool(t, "openssl", "openssl")
	xmllint := requireTool(t, "xmllint", "libxml2-utils")
	xmlsec1 := requireTool(t, "xmlsec1", "xmlsec1")
	l := digitalLetter(t, false, nil)
	dir := t.TempDir()
	cmsPath := filepath.Join(dir, "asic.cms")
	require.NoError(t, os.WriteFile(cmsPath, l.cms, 0o600))
	zipPath := filepath.Join(dir, "asic.zip")
	out, err := exec.Command(openssl, "cms", "-decrypt", "-inform", "DER", "-in", cmsPath, "-recip", citizen.CertPEMPath,
		"-inkey", citizen.KeyPEMPath, "-out", zipPath).CombinedOutput()
	require.NoError(t, err, "openssl: %s", out)

	zr, err := zip.OpenReader(zipPath)
	require.NoError(t, err)
	defer zr.Close()
	for _, f := range zr.File {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(f.Name)), 0o750))
		rc, err := f.Open()
		require.NoError(t, err)
		b, err := io.ReadAll(rc)
		rc.Close()
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f.Name), b, 0o600))
	}
	xsd, err := filepath.Abs("testdata/xsd/sdp-manifest.xsd")
	require.NoError(t, err)
	out, err = exec.Command(xmllint, "--noout", "--schema", xsd, filepath.Join(dir, "manifest.xml")).CombinedOutput()
	require.NoError(t, err, "xmllint: %s", out)

	cmd := exec.Command(xmlsec1, "--verify", "--trusted-pem", pki.CAPath(), "--id-attr:Id", "http://uri.etsi.org/01903/v1.3.2#:SignedProperties",
		filepath.Join(dir, "META-INF", "signatures.xml"))
	cmd.Dir = dir
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "xmlsec1: %s", out)
	assert.Contains(t, string(out), "OK")
}

// TestAddress_Fold: Norwegian addresses keep postnummer and poststed and
// lose land; foreign ones fold them into the first free line (§4.4), and
// both forms pass the schema's oneOf.
func TestAddress_Fold(t *testing.T) {
	no := dpi.Address{Navn: "Nora", Adresselinje1: "Fjordgata 3", Postnummer: "6856", Poststed: "SOGNDAL", Land: "Norge"}.Fold()
	assert.Equal(t, dpi.Address{Navn: "Nora", Adresselinje1: "Fjordgata 3", Postnummer: "6856", Poststed: "SOGNDAL"}, no)
	se := dpi.Address{Navn: "Sven", Adresselinje1: "Storgatan 1", Adresselinje2: "c/o Berg", Postnummer: "111 22", Poststed: "STOCKHOLM",
		Land: "Sverige"}.Fold()
	assert.Equal(t, dpi.Address{Navn: "Sven", Adresselinje1: "Storgatan 1", Adresselinje2: "c/o Berg", Adresselinje3: "111 22 STOCKHOLM",
		Land: "Sverige"}, se)
	for _, a := range []dpi.Address{no, se} {
		h := dpi.NewHeader("utskrift", senderOrg, supplierOrg, uuid.NewString(), uuid.NewString(), time.Now(), time.Time{})
		doc, err := dpi.Marshal(h, dpi.Utskrift{Avsender: dpi.Avsender{Virksomhetsidentifikator: dpi.Org(senderOrg)}, Mottaker: a,
			Dokumentpakkefingeravtrykk: dpi.Fingerprint{DigestMethod: dpi.DigestSHA256, DigestValue: "x"}, Maskinportentoken: "t",
			Utskriftstype: "SORT_HVIT", Posttype: "B", Retur: dpi.Retur{Mottaker: no, Returposthaandtering: "DIREKTE_RETUR"}})
		require.NoError(t, err)
		_, err = dpi.Validate(doc)
		assert.NoError(t, err)
	}
	var both map[string]any
	b, _ := json.Marshal(dpi.Address{Navn: "N", Adresselinje1: "A", Postnummer: "0150", Poststed: "OSLO", Land: "Norge"})
	require.NoError(t, json.Unmarshal(b, &both))
	assert.True(t, errors.Is(validateUtskriftMottaker(both), dpi.ErrSchema), "a Norwegian address with land matches both forms: refused")
}

func validateUtskriftMottaker(m map[string]any) error {
	h := dpi.NewHeader("utskrift", senderOrg, supplierOrg, uuid.NewString(), uuid.NewString(), time.Now(), time.Time{})
	a := map[string]any{"navn": "R", "adresselinje1": "Gate 1", "postnummer": "0150", "poststed": "OSLO"}
	doc, _ := dpi.Marshal(h, map[string]any{"avsender": dpi.Avsender{Virksomhetsidentifikator: dpi.Org(senderOrg)}, "mottaker": m,
		"dokumentpakkefingeravtrykk": dpi.Fingerprint{DigestMethod: dpi.DigestSHA256, DigestValue: "x"}, "maskinportentoken": "t",
		"utskriftstype": "SORT_HVIT", "retur": map[string]any{"mottaker": a, "returposthaandtering": "DIREKTE_RETUR"}})
	_, err := dpi.Validate(doc)
	return err
}

// TestReadReceipt_BrokenSignature: a receipt whose payload changed after
// signing is refused, and its id can still be read to mark it read.
func TestReadReceipt_BrokenSignature(t *testing.T) {
	sc := dpisim.DefaultSchedule
	sc.Outcome = "badsig"
	_, c := startSim(t, sc)
	l := digitalLetter(t, false, nil)
	require.NoError(t, c.Send(context.Background(), l.out()))
	var items []dpi.Item
	require.Eventually(t, func() bool {
		var err error
		items, err = c.Incoming(context.Background(), "no_difi_move_integrasjonspunkt", "", 100)
		require.NoError(t, err)
		return len(items) > 0
	}, 5*time.Second, 20*time.Millisecond)
	_, err := dpi.ReadReceipt([]byte(items[0].Forretningsmelding), dpi.ReadOptions{Roots: pki.Pool()})
	require.ErrorIs(t, err, transport.ErrMalformed)
	id := dpi.UnverifiedID([]byte(items[0].Forretningsmelding))
	require.NotEmpty(t, id)
	require.NoError(t, c.MarkRead(context.Background(), id))
	assert.Empty(t, dpi.UnverifiedID([]byte("not.a.jws")))
}

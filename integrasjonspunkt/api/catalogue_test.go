package api_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestErrorCatalogue reaches the entries of local-api.md §15.3 that the
// conformance items do not already reach, each through HTTP with its status
// and exception. The others are named in the comment beside each group.
func TestErrorCatalogue(t *testing.T) {
	d := startDaemon(t, nil)
	pdf := []byte("%PDF-1.4")

	// Reached by the conformance items: ConstraintViolation (C07, C10, C11, C62),
	// ReceiverDoesNotAcceptProcess (C12, C13), MessageAlreadyExists (C06),
	// ServiceNotEnabled (C14), MissingAddressInformation (C16),
	// MessageTypeDoesNotFitDocumentType (C08), MessageNotFound (C19, C29, C40, C50),
	// MissingHttpHeader (C19), DuplicateFilename (C18, C32), MaxFileSizeExceeded (C21),
	// MultipartFileToLarge (C31), MissingFileTitle (C22), MissingFile (C24),
	// TimeToLive (C60), MissingArkivmelding (C33), MissingArkivmeldingFile (C25),
	// MissingPrimaryDocument (C26), NoContent (C36, C38, C58: 204 without a body),
	// MessageNotLocked (C37, C40), ConversationNotFound (C49),
	// IdentifierNotFound (C02), SubscriptionNotFound (C69, C70),
	// SubscriptionWithSameNameAndPushEndpointAlreadyExists (C64),
	// WebhookUnknownFilter (C65, as the WebhookFilter constraint the spec allows).
	// ForsendelseTypeNotFound: TestErrorCatalogue_DPF. SenderException,
	// ReceiverException, InvalidContentType, InvalidDocument and
	// MissingFileTitle (DPH): TestErrorCatalogue_DPH.
	// MultiplePrimaryDocumentsNotAllowed is shadowed by DuplicateFilename in
	// E3 and E5, as in the reference (message.TestCheckUpload_PrimaryDocument).

	t.Run("UnknownMessageTypeException", func(t *testing.T) {
		s := newSBD("feil", "urn:no:difi:arkivmelding:xsd::feil", "urn:no:difi:profile:arkivmelding:response:ver1.0", "0192:"+dpoOrg, map[string]any{})
		requireError(t, d.postJSON("/api/messages/out", s), 400, "UnknownMessageTypeException")
	})
	t.Run("MissingMessageTypeException", func(t *testing.T) {
		s := arkivSBD(dpoOrg)
		delete(s, "arkivmelding")
		requireError(t, d.postJSON("/api/messages/out", s), 400, "MissingMessageTypeException")
	})
	t.Run("NotUUIDException", func(t *testing.T) {
		s := newSBD("arkivmelding_kvittering", "urn:no:difi:arkivmelding:xsd::arkivmelding_kvittering",
			"urn:no:difi:profile:arkivmelding:response:ver1.0", "0192:"+dpoOrg, map[string]any{"receiptType": "OK", "relatedToMessageId": "1234"})
		requireError(t, d.postJSON("/api/messages/out", s), 400, "NotUUIDException")
	})
	t.Run("HttpMessageNotReadableException", func(t *testing.T) {
		r := d.do("POST", "/api/messages/out", strings.NewReader(`{"standardBusinessDocumentHeader": {"receiver": {}}}`), "Content-Type", "application/json")
		requireError(t, r, 400, "org.springframework.http.converter.HttpMessageNotReadableException")
	})
	t.Run("UnmarshalArkivmeldingException", func(t *testing.T) {
		_, id := d.create(arkivSBD(dpoOrg))
		r := d.put("/api/messages/out/"+id, []byte("<arkivmelding><mappe>"), "Content-Disposition", cd("am", "arkivmelding.xml"))
		requireError(t, r, 400, "UnmarshalArkivmeldingException")
	})
	t.Run("FileNotFoundException_metadata", func(t *testing.T) {
		s := digitalSBD(citizen)
		s["digital"].(map[string]any)["metadataFiler"] = map[string]any{"vedtak.pdf": "lenke.xml"}
		_, id := d.create(s)
		require.Equal(t, 200, d.put("/api/messages/out/"+id, pdf, "Content-Disposition", cd("Vedtak", "vedtak.pdf")).Code)
		m := requireError(t, d.do("POST", "/api/messages/out/"+id, nil), 404, "FileNotFoundException")
		assert.Contains(t, m["message"], "lenke.xml")
	})
	t.Run("MessageAlreadySentException", func(t *testing.T) {
		_, id := d.create(avtaltSBD(dpoOrg))
		require.Equal(t, 200, d.do("POST", "/api/messages/out/"+id, nil).Code)
		r := d.put("/api/messages/out/"+id, pdf, "Content-Disposition", cd("Sent", "sent.pdf"))
		requireError(t, r, 400, "MessageAlreadySentException")
	})
	t.Run("PropertyReferenceException", func(t *testing.T) {
		requireError(t, d.get("/api/statuses?sort=colour,desc"), 400, "org.springframework.data.mapping.PropertyReferenceException")
	})
	t.Run("MethodNotAllowed", func(t *testing.T) {
		r := d.do("PUT", "/api/statuses/peek", nil)
		requireError(t, r, 405, "")
		assert.Contains(t, r.Header.Get("Allow"), "GET")
	})
	t.Run("MaxUploadSizeExceeded_413", func(t *testing.T) {
		small := startDaemon(t, map[string]string{"efm.http.max-multipart-size": "1MB"})
		r := small.multipart(avtaltSBD(dpoOrg), part{"Stor", "stor.pdf", "application/pdf", make([]byte, 2<<20)})
		requireError(t, r, 413, "")
	})
}

func TestErrorCatalogue_Configured(t *testing.T) {
	t.Run("InvalidCertificateException", func(t *testing.T) {
		d := startDaemon(t, map[string]string{"difi.move.org.keystore.path": filepath.Join(t.TempDir(), "missing.p12")})
		requireError(t, d.postJSON("/api/messages/out", arkivSBD(dpoOrg)), 400, "InvalidCertificateException")
	})
	t.Run("MessageChannelInvalidException", func(t *testing.T) {
		d := startDaemon(t, map[string]string{"difi.move.dpo.message-channel": "kanal-a"})
		m, _ := d.create(arkivSBD(dpoOrg))
		assert.Contains(t, string(mustJSON(t, m)), `"identifier":"kanal-a"`, "the configured channel is added")
		s := arkivSBD(dpoOrg)
		h := s.header()["businessScope"].(map[string]any)
		h["scope"] = append(h["scope"].([]any), map[string]any{"type": "MessageChannel", "identifier": "kanal-b"})
		requireError(t, d.postJSON("/api/messages/out", s), 400, "MessageChannelInvalidException")
	})
	t.Run("MissingSvarUtCredentialsException", func(t *testing.T) {
		d := startDaemon(t, map[string]string{"difi.move.feature.enableDPF": "true",
			"difi.move.fiks.inn.username": "inn", "difi.move.fiks.inn.password": "x",
			"difi.move.fiks.ut.username": "ut", "difi.move.fiks.ut.password": "x"})
		s := arkivSBD(dpfOrg)
		s.header()["sender"] = []any{map[string]any{"identifier": map[string]any{"authority": "iso6523-actorid-upis", "value": "0192:" + otherOrg}}}
		requireError(t, d.postJSON("/api/messages/out", s), 400, "MissingSvarUtCredentialsException")
		d.create(arkivSBD(dpfOrg)) // the daemon's own account is there
	})
	t.Run("WebhookPushEndpointPingFailedException", func(t *testing.T) {
		d := startDaemon(t, map[string]string{"efm.webhook.strict-ping": "true"})
		r := d.postJSON("/api/subscriptions", subscription("strict", "http://127.0.0.1:1/none", ""))
		requireError(t, r, 400, "WebhookPushEndpointPingFailedException")
		assert.EqualValues(t, 0, d.get("/api/subscriptions").JSON(t)["totalElements"], "nothing saved")
	})
}

func TestErrorCatalogue_Storage(t *testing.T) {
	d := startDaemon(t, nil)
	payloadDir := filepath.Join(d.dir, "payload")
	files := func() []string {
		es, err := os.ReadDir(payloadDir)
		require.NoError(t, err)
		var out []string
		for _, e := range es {
			out = append(out, e.Name())
		}
		return out
	}
	newFile := func(before []string) string {
		for _, f := range files() {
			if !slices.Contains(before, f) {
				return f
			}
		}
		t.Fatal("no new payload file")
		return ""
	}

	t.Run("AsicReadException", func(t *testing.T) {
		before := files()
		id := d.receive(arkivIn(), "DPO", asic(t))
		f := filepath.Join(payloadDir, newFile(before))
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		copy(b, "XXXXXX")
		require.NoError(t, os.WriteFile(f, b, 0o600))
		require.Equal(t, 200, d.get("/api/messages/in/peek?messageId="+id).Code)
		requireError(t, d.get("/api/messages/in/pop/"+id), 500, "AsicReadException")
		assert.Contains(t, statusesOf(t, d, id), "FEIL")
		assert.EqualValues(t, 0, d.get("/api/messages/in?messageId=" + id).JSON(t)["totalElements"])
	})
	t.Run("FileNotFoundException_package", func(t *testing.T) {
		before := files()
		id := d.receive(arkivIn(), "DPO", asic(t))
		require.NoError(t, os.Remove(filepath.Join(payloadDir, newFile(before))))
		require.Equal(t, 200, d.get("/api/messages/in/peek?messageId="+id).Code)
		requireError(t, d.get("/api/messages/in/pop/"+id), 404, "FileNotFoundException")
		assert.Contains(t, statusesOf(t, d, id), "FEIL")
	})
	t.Run("MessagePersistException", func(t *testing.T) {
		_, id := d.create(arkivSBD(dpoOrg))
		require.NoError(t, os.RemoveAll(payloadDir))
		require.NoError(t, os.WriteFile(payloadDir, []byte("not a directory"), 0o600))
		t.Cleanup(func() { os.Remove(payloadDir); os.Mkdir(payloadDir, 0o700) })
		// Larger than one payload chunk, so it goes to a file of its own.
		r := d.put("/api/messages/out/"+id, make([]byte, 100<<10), "Content-Disposition", cd("Vedtak", "vedtak.pdf"))
		m := requireError(t, r, 500, "MessagePersistException")
		assert.NotContains(t, m["message"], d.dir, "no internal paths in a 5xx body")
	})
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := jsonMarshal(v)
	require.NoError(t, err)
	return b
}

// TestConcurrentDuplicates: racing creates of one messageId and racing
// uploads of one file name end in one success and the catalogue's refusal,
// never a 500.
func TestConcurrentDuplicates(t *testing.T) {
	d := startDaemon(t, nil)
	s := avtaltSBD(dpoOrg)
	s.docID()["instanceIdentifier"] = newID()
	body := mustJSON(t, s)
	codes := make(chan resp, 8)
	for range 8 {
		go func() {
			codes <- d.do("POST", "/api/messages/out", bytes.NewReader(body), "Content-Type", "application/json")
		}()
	}
	ok := 0
	for range 8 {
		r := <-codes
		if r.Code == 200 {
			ok++
			continue
		}
		requireError(t, r, 400, "MessageAlreadyExistsException")
	}
	assert.Equal(t, 1, ok)

	_, id := d.create(arkivSBD(dpoOrg))
	for range 8 {
		go func() {
			codes <- d.put("/api/messages/out/"+id, []byte("%PDF"), "Content-Disposition", cd("V", "v.pdf"))
		}()
	}
	ok = 0
	for range 8 {
		r := <-codes
		if r.Code == 200 {
			ok++
			continue
		}
		requireError(t, r, 400, "DuplicateFilenameException")
	}
	assert.Equal(t, 1, ok)
}

func TestCapabilities_Identifiers(t *testing.T) {
	d := startDaemon(t, nil) // difi.move.identifier.synthetic.allow=true
	requireError(t, d.get("/api/capabilities/910077474"), 400, "jakarta.validation.ConstraintViolationException")
	assert.Equal(t, 200, d.get("/api/capabilities/0192:"+dpoOrg).Code, "the 0192: prefix is stripped")
	r := d.get("/api/capabilities/17912099997")
	require.Equal(t, 200, r.Code, "a synthetic number under synthetic.allow: %s", r.Body)
	requireError(t, d.get("/api/capabilities/"+dpoOrg+"?securityLevel=fire"), 400, "")

	strict := startDaemon(t, map[string]string{"difi.move.identifier.synthetic.allow": "false"})
	m := requireError(t, strict.get("/api/capabilities/17912099997"), 400, "")
	assert.NotContains(t, m["message"], "17912099997")
}

// TestPrint_AddressesFromRegistry: a print to a citizen without addresses
// gets them from the registry (local-api.md §11.4 item 7).
func TestPrint_AddressesFromRegistry(t *testing.T) {
	d := startDaemon(t, nil)
	s := newSBD("print", "urn:no:difi:digitalpost:xsd:fysisk::print", vedtakProc, printOnly, map[string]any{"hoveddokument": "brev.pdf"})
	m, _ := d.create(s)
	p := m["print"].(map[string]any)
	mottaker := p["mottaker"].(map[string]any)
	assert.NotEmpty(t, mottaker["navn"])
	assert.NotEmpty(t, mottaker["adresselinje1"])
	assert.NotEmpty(t, mottaker["postnummer"])
	retur := p["retur"].(map[string]any)
	assert.Equal(t, "DIREKTE_RETUR", retur["returhaandtering"])
	assert.NotEmpty(t, retur["mottaker"].(map[string]any)["adresselinje1"])
}

// TestReceiptToDPV: a receipt to a channel without receipts is not carried
// and gets SENDT, LEVERT and LEST at once (local-api.md §12.2).
func TestReceiptToDPV(t *testing.T) {
	d := startDaemon(t, nil)
	s := newSBD("arkivmelding_kvittering", "urn:no:difi:arkivmelding:xsd::arkivmelding_kvittering",
		"urn:no:difi:profile:arkivmelding:response:ver1.0", "0192:"+dpvOrg, map[string]any{"receiptType": "OK", "relatedToMessageId": newID()})
	r := d.postJSON("/api/messages/out", s)
	require.Equal(t, 200, r.Code, "body: %s", r.Body)
	id := doc(r.JSON(t)).docID()["instanceIdentifier"].(string)
	require.Equal(t, 200, d.do("POST", "/api/messages/out/"+id, nil).Code)
	assert.Equal(t, []string{"OPPRETTET", "SENDT", "LEVERT", "LEST"}, statusesOf(t, d, id))
	assert.Equal(t, 404, d.get("/api/messages/out/"+id).Code, "left the outgoing store")
}

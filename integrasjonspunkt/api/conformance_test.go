package api_test

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt/message"
	"github.com/efm-go/efm/integrasjonspunkt/sbd"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// TestConformance runs the checklist of local-api.md §18, one subtest per
// item, against a real daemon over HTTP. Items that need their own
// configuration start their own daemon.
func TestConformance(t *testing.T) {
	d := startDaemon(t, nil)

	t.Run("C01_capabilities_of_registered_org", func(t *testing.T) {
		r := d.get("/api/capabilities/" + dpoOrg)
		require.Equal(t, 200, r.Code, "body: %s", r.Body)
		caps := r.JSON(t)["capabilities"].([]any)
		require.NotEmpty(t, caps)
		for _, c := range caps {
			c := c.(map[string]any)
			assert.NotEmpty(t, c["process"])
			assert.NotEmpty(t, c["serviceIdentifier"])
			dts := c["documentTypes"].([]any)
			for _, dt := range dts {
				assert.NotEmpty(t, dt.(map[string]any)["standard"])
			}
		}
		withType := false
		for _, c := range caps {
			for _, dt := range c.(map[string]any)["documentTypes"].([]any) {
				if dt.(map[string]any)["type"] != nil {
					withType = true
				}
			}
		}
		assert.True(t, withType, "documentTypes carry type")
	})

	t.Run("C02_capabilities_unknown_receiver_404", func(t *testing.T) {
		r := d.get("/api/capabilities/" + unknownOrg)
		m := requireError(t, r, 404, "IdentifierNotFoundException")
		assert.True(t, strings.HasSuffix(m["exception"].(string), "IdentifierNotFoundException"))
	})

	t.Run("C03_capabilities_of_DPI_citizen_have_addresses", func(t *testing.T) {
		// The simulated registry gives postal addresses on print records.
		r := d.get("/api/capabilities/" + printOnly)
		require.Equal(t, 200, r.Code, "body: %s", r.Body)
		sawDPI := false
		for _, c := range r.JSON(t)["capabilities"].([]any) {
			c := c.(map[string]any)
			if c["serviceIdentifier"] == "DPI" {
				sawDPI = true
				assert.Contains(t, c, "postAddress")
				assert.Contains(t, c, "returnAddress")
				assert.Contains(t, c, "digitalPostAddress")
			} else {
				assert.NotContains(t, c, "postAddress")
				assert.NotContains(t, c, "returnAddress")
				assert.NotContains(t, c, "digitalPostAddress")
			}
		}
		assert.True(t, sawDPI)
		r = d.get("/api/capabilities/" + dpoOrg)
		for _, c := range r.JSON(t)["capabilities"].([]any) {
			assert.NotContains(t, c.(map[string]any), "postAddress")
		}
	})

	var c04ID string
	t.Run("C04_create_fills_defaults", func(t *testing.T) {
		before := time.Now()
		m, id := d.create(arkivSBD(dpoOrg))
		c04ID = id
		s := doc(m)
		assert.Regexp(t, uuidRE, id)
		assert.Regexp(t, uuidRE, s.scope()["instanceIdentifier"])
		sender := s.header()["sender"].([]any)[0].(map[string]any)["identifier"].(map[string]any)
		assert.Equal(t, "0192:"+ownOrg, sender["value"])
		assert.Equal(t, "iso6523-actorid-upis", sender["authority"])
		created, err := sbd.ParseTime(s.docID()["creationDateAndTime"].(string))
		require.NoError(t, err)
		assert.WithinDuration(t, before, created, 5*time.Second)
		info := s.scope()["scopeInformation"].([]any)[0].(map[string]any)
		exp, err := sbd.ParseTime(info["expectedResponseDateTime"].(string))
		require.NoError(t, err)
		assert.WithinDuration(t, before.Add(24*time.Hour), exp, 10*time.Second)
	})

	t.Run("C05_created_message_listed_with_one_status", func(t *testing.T) {
		require.NotEmpty(t, c04ID)
		r := d.get("/api/messages/out?messageId=" + c04ID)
		require.Equal(t, 200, r.Code)
		content := r.JSON(t)["content"].([]any)
		require.Len(t, content, 1)
		assert.Equal(t, c04ID, doc(content[0].(map[string]any)).docID()["instanceIdentifier"])
		r = d.get("/api/messages/out/" + c04ID)
		require.Equal(t, 200, r.Code)
		assert.Equal(t, c04ID, doc(r.JSON(t)).docID()["instanceIdentifier"])
		assert.Equal(t, []string{"OPPRETTET"}, statusesOf(t, d, c04ID))
	})

	t.Run("C06_duplicate_messageId", func(t *testing.T) {
		s := arkivSBD(dpoOrg)
		_, id := d.create(s)
		s.docID()["instanceIdentifier"] = id
		requireError(t, d.postJSON("/api/messages/out", s), 400, "no.difi.meldingsutveksling.exceptions.MessageAlreadyExistsException")
	})

	t.Run("C06_duplicate_before_later_checks", func(t *testing.T) {
		// The id is checked in the write transaction when all else passes;
		// a message refused for a later reason still hears of the duplicate
		// first, as §15.2 orders them: here E5 without its arkivmelding.xml.
		s := arkivSBD(dpoOrg)
		_, id := d.create(s)
		s.docID()["instanceIdentifier"] = id
		requireError(t, d.multipart(s, part{"Vedlegg", "v.pdf", "application/pdf", []byte("%PDF")}), 400,
			"no.difi.meldingsutveksling.exceptions.MessageAlreadyExistsException")
		requireError(t, d.multipart(arkivSBD(dpoOrg), part{"Vedlegg", "v.pdf", "application/pdf", []byte("%PDF")}), 400,
			"no.difi.meldingsutveksling.exceptions.MissingArkivmeldingException")
	})

	t.Run("C07_unknown_type_brev", func(t *testing.T) {
		s := newSBD("brev", "urn:no:difi:arkivmelding:xsd::brev", archiveProc, "0192:"+dpoOrg, map[string]any{})
		m := requireError(t, d.postJSON("/api/messages/out", s), 400, "jakarta.validation.ConstraintViolationException")
		e := m["errors"].([]any)[0].(map[string]any)
		assert.Equal(t, "standardBusinessDocumentHeader.documentIdentification.type", e["field"])
		assert.Equal(t, "MessageType", e["code"])
		assert.Equal(t, "brev", e["rejectedValue"])
		assert.Equal(t, false, e["bindingFailure"])
	})

	t.Run("C08_standard_does_not_fit_type", func(t *testing.T) {
		s := digitalSBD(citizen)
		s.docID()["standard"] = "urn:no:difi:arkivmelding:xsd::arkivmelding"
		s.scope()["identifier"] = archiveProc
		s.header()["receiver"] = []any{map[string]any{"identifier": map[string]any{"authority": "iso6523-actorid-upis", "value": "0192:" + dpoOrg}}}
		requireError(t, d.postJSON("/api/messages/out", s), 400, "MessageTypeDoesNotFitDocumentTypeException")
	})

	t.Run("C09_business_member_differs_from_type", func(t *testing.T) {
		s := arkivSBD(dpoOrg)
		s["digital"] = s["arkivmelding"]
		delete(s, "arkivmelding")
		r := d.postJSON("/api/messages/out", s)
		requireError(t, r, 400, "")
	})

	t.Run("C10_non_uuid_instanceIdentifier", func(t *testing.T) {
		s := arkivSBD(dpoOrg)
		s.docID()["instanceIdentifier"] = "not-a-uuid"
		m := requireError(t, d.postJSON("/api/messages/out", s), 400, message.NameConstraintViolation)
		assert.Equal(t, "UUID", m["errors"].([]any)[0].(map[string]any)["code"])
	})

	t.Run("C11_expectedResponseDateTime_in_past", func(t *testing.T) {
		s := arkivSBD(dpoOrg)
		s.scope()["scopeInformation"] = []any{map[string]any{"expectedResponseDateTime": "2020-01-01T00:00:00+01:00"}}
		m := requireError(t, d.postJSON("/api/messages/out", s), 400, message.NameConstraintViolation)
		assert.Equal(t, "Future", m["errors"].([]any)[0].(map[string]any)["code"])
	})

	t.Run("C12_unknown_receiver", func(t *testing.T) {
		m := requireError(t, d.postJSON("/api/messages/out", arkivSBD(unknownOrg)), 400, "ReceiverDoesNotAcceptProcessException")
		assert.NotEmpty(t, m["description"])
	})

	t.Run("C13_digital_to_print_only_citizen", func(t *testing.T) {
		requireError(t, d.postJSON("/api/messages/out", digitalSBD(printOnly)), 400, "ReceiverDoesNotAcceptProcessException")
	})

	t.Run("C14_channel_disabled", func(t *testing.T) {
		// DPF is not enabled in this daemon; the registry routes this receiver to DPF.
		requireError(t, d.postJSON("/api/messages/out", arkivSBD(dpfOrg)), 400, "ServiceNotEnabledException")
	})

	t.Run("C15_on_behalf_of", func(t *testing.T) {
		s := arkivSBD(dpoOrg)
		s.header()["sender"] = []any{map[string]any{"identifier": map[string]any{"authority": "iso6523-actorid-upis", "value": "0192:" + otherOrg}}}
		m, id := d.create(s)
		sender := doc(m).header()["sender"].([]any)[0].(map[string]any)["identifier"].(map[string]any)
		assert.Equal(t, "0192:"+ownOrg+":"+otherOrg, sender["value"])
		assert.Equal(t, otherOrg, outConversation(t, d, id)["senderIdentifier"])
	})

	t.Run("C16_print_addresses", func(t *testing.T) {
		s := newSBD("print", "urn:no:difi:digitalpost:xsd:fysisk::print", vedtakProc, "", map[string]any{"hoveddokument": "brev.pdf"})
		requireError(t, d.postJSON("/api/messages/out", s), 400, "MissingAddressInformationException")
		addr := map[string]any{"navn": "Ola Nordmann", "adresselinje1": "1 Main Street", "land": "Sverige"}
		s = newSBD("print", "urn:no:difi:digitalpost:xsd:fysisk::print", vedtakProc, "", map[string]any{
			"hoveddokument": "brev.pdf", "mottaker": addr,
			"retur": map[string]any{"mottaker": map[string]any{"navn": "Etat", "adresselinje1": "Postboks 1", "postnummer": "0101", "poststed": "OSLO"}},
		})
		m, _ := d.create(s)
		p := m["print"].(map[string]any)
		assert.Equal(t, "SORT_HVIT", p["utskriftsfarge"])
		assert.Equal(t, "B_OEKONOMI", p["posttype"])
	})
}

func TestConformanceUploads(t *testing.T) {
	d := startDaemon(t, nil)
	pdf := []byte("%PDF-1.4 test")

	_, id := d.create(arkivSBD(dpoOrg))
	t.Run("C17_put_with_unquoted_spaces", func(t *testing.T) {
		r := d.put("/api/messages/out/"+id, pdf, "Content-Type", "application/pdf", "Content-Disposition", cd("Vedtak om tilskudd", "vedtak.pdf"))
		require.Equal(t, 200, r.Code, "body: %s", r.Body)
		assert.Empty(t, r.Body)
	})
	t.Run("C18_duplicate_filename", func(t *testing.T) {
		r := d.put("/api/messages/out/"+id, pdf, "Content-Type", "application/pdf", "Content-Disposition", cd("Igjen", "vedtak.pdf"))
		requireError(t, r, 400, "DuplicateFilenameException")
	})
	t.Run("C19_missing_header_and_unknown_message", func(t *testing.T) {
		r := d.put("/api/messages/out/"+id, pdf, "Content-Type", "application/pdf")
		requireError(t, r, 400, "MissingHttpHeaderException")
		r = d.put("/api/messages/out/"+newID(), pdf, "Content-Type", "application/pdf", "Content-Disposition", cd("x", "x.pdf"))
		requireError(t, r, 404, "MessageNotFoundException")
	})
	t.Run("C20_rfc5987_filename", func(t *testing.T) {
		r := d.put("/api/messages/out/"+id, pdf, "Content-Type", "application/pdf",
			"Content-Disposition", `attachment; name="Søknad"; filename="soknad.pdf"; filename*=UTF-8''s%C3%B8knad.pdf`)
		require.Equal(t, 200, r.Code, "body: %s", r.Body)
		atts, err := d.core.OutgoingAttachments(context.Background(), id)
		require.NoError(t, err)
		var names []string
		for _, a := range atts {
			names = append(names, a.Filename)
		}
		assert.Contains(t, names, "søknad.pdf")
	})
	t.Run("C21_DPE_total_over_2MB", func(t *testing.T) {
		s := newSBD("publisering", "urn:no:difi:einnsyn:xsd::publisering", einnsynProc, "0192:"+dpeOrg, map[string]any{"orgnr": ownOrg})
		_, eid := d.create(s)
		big := bytes.Repeat([]byte("a"), 1<<20+512<<10)
		r := d.put("/api/messages/out/"+eid, big, "Content-Type", "application/json", "Content-Disposition", cd("a", "a.json"))
		require.Equal(t, 200, r.Code, "body: %s", r.Body)
		r = d.put("/api/messages/out/"+eid, big, "Content-Type", "application/json", "Content-Disposition", cd("b", "b.json"))
		requireError(t, r, 400, "MaxFileSizeExceededException")
	})
	t.Run("C22_DPV_file_without_title", func(t *testing.T) {
		s := newSBD("arkivmelding", "urn:no:difi:arkivmelding:xsd::arkivmelding", archiveProc, "0192:"+dpvOrg, map[string]any{"hoveddokument": "vedtak.pdf"})
		_, vid := d.create(s)
		r := d.put("/api/messages/out/"+vid, pdf, "Content-Type", "application/pdf", "Content-Disposition", "attachment; filename=vedtak.pdf")
		requireError(t, r, 400, "MissingFileTitleException")
	})
	t.Run("C23_arkivmelding_xml_sets_title", func(t *testing.T) {
		_, aid := d.create(arkivSBD(dpoOrg))
		r := d.put("/api/messages/out/"+aid, arkivmeldingXML("Tilskudd til leirskole", "vedtak.pdf"), "Content-Type", "text/xml", "Content-Disposition", cd("arkivmelding", "arkivmelding.xml"))
		require.Equal(t, 200, r.Code, "body: %s", r.Body)
		c := outConversation(t, d, aid)
		assert.Equal(t, "Tilskudd til leirskole", c["messageTitle"])
		assert.Equal(t, "2024/118-7", c["messageReference"])
	})
}

// channel plays the pipeline's consumer: it takes queued messages, counts
// them and records SENDT as a channel's handover would.
type channel struct {
	mu   sync.Mutex
	seen map[string]int
}

func startChannel(t *testing.T, d *daemon) *channel {
	ch := &channel{seen: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = d.q.Consume(ctx, 2, func(ctx context.Context, id string) error {
			if _, err := d.core.Outgoing(ctx, id); err != nil {
				return nil // left the store: nothing to send
			}
			ch.mu.Lock()
			ch.seen[id]++
			ch.mu.Unlock()
			atts, err := d.core.OutgoingAttachments(ctx, id)
			if err != nil {
				return err
			}
			for _, a := range atts {
				rc, err := d.core.OpenAttachment(a)
				if err != nil {
					return err
				}
				rc.Close()
			}
			return d.core.SetStatus(ctx, message.Change{MessageID: id, Status: "SENDT"})
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ch
}

func (c *channel) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[id]
}

func TestConformanceSend(t *testing.T) {
	d := startDaemon(t, nil)
	pdf := []byte("%PDF-1.4 test")

	t.Run("C24_send_without_attachments", func(t *testing.T) {
		_, id := d.create(arkivSBD(dpoOrg))
		requireError(t, d.do("POST", "/api/messages/out/"+id, nil), 400, "MissingFileException")
	})
	t.Run("C25_referenced_file_missing", func(t *testing.T) {
		_, id := d.create(arkivSBD(dpoOrg))
		require.Equal(t, 200, d.put("/api/messages/out/"+id, arkivmeldingXML("T", "vedtak.pdf", "bilag.pdf"), "Content-Disposition", cd("am", "arkivmelding.xml")).Code)
		require.Equal(t, 200, d.put("/api/messages/out/"+id, pdf, "Content-Disposition", cd("Vedtak", "vedtak.pdf")).Code)
		m := requireError(t, d.do("POST", "/api/messages/out/"+id, nil), 400, "MissingArkivmeldingFileException")
		assert.Contains(t, m["message"], "bilag.pdf")
	})
	t.Run("C26_digital_without_main_document", func(t *testing.T) {
		_, id := d.create(digitalSBD(citizen))
		require.Equal(t, 200, d.put("/api/messages/out/"+id, pdf, "Content-Disposition", cd("Vedlegg", "vedlegg.pdf")).Code)
		requireError(t, d.do("POST", "/api/messages/out/"+id, nil), 400, "MissingPrimaryDocumentException")
	})
	t.Run("C27_avtalt_without_attachments", func(t *testing.T) {
		_, id := d.create(avtaltSBD(dpoOrg))
		r := d.do("POST", "/api/messages/out/"+id, nil)
		assert.Equal(t, 200, r.Code, "body: %s", r.Body)
	})

	ch := startChannel(t, d)
	var sentID string
	t.Run("C28_send_is_idempotent", func(t *testing.T) {
		_, id := d.create(arkivSBD(dpoOrg))
		sentID = id
		require.Equal(t, 200, d.put("/api/messages/out/"+id, arkivmeldingXML("T", "vedtak.pdf"), "Content-Disposition", cd("am", "arkivmelding.xml")).Code)
		require.Equal(t, 200, d.put("/api/messages/out/"+id, pdf, "Content-Disposition", cd("Vedtak", "vedtak.pdf")).Code)
		r := d.do("POST", "/api/messages/out/"+id, nil)
		require.Equal(t, 200, r.Code, "body: %s", r.Body)
		assert.Empty(t, r.Body)
		r = d.do("POST", "/api/messages/out/"+id, nil)
		require.Equal(t, 200, r.Code, "body: %s", r.Body)
		eventually(t, func() bool { return ch.count(id) == 1 }, "channel got the message")
		time.Sleep(200 * time.Millisecond)
		assert.Equal(t, 1, ch.count(id))
	})
	t.Run("C29_after_handover_gone_from_store", func(t *testing.T) {
		eventually(t, func() bool { return d.get("/api/messages/out/"+sentID).Code == 404 }, "message left the store")
		requireError(t, d.get("/api/messages/out/"+sentID), 404, "MessageNotFoundException")
		assert.Contains(t, statusesOf(t, d, sentID), "SENDT")
	})
}

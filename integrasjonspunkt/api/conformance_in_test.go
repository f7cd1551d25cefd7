package api_test

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt/message"
	"github.com/efm-go/efm/integrasjonspunkt/sbd"
)

// part is one part of a one-step send.
type part struct {
	name, filename, contentType string
	body                        []byte
}

func multipartBody(t testing.TB, s doc, parts ...part) (*bytes.Buffer, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if s != nil {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="sbd"; filename="sbd.json"`)
		h.Set("Content-Type", "application/json")
		w, err := mw.CreatePart(h)
		require.NoError(t, err)
		require.NoError(t, jsonEncode(w, s))
	}
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="%s"; filename="%s"`, p.name, p.filename))
		h.Set("Content-Type", p.contentType)
		w, err := mw.CreatePart(h)
		require.NoError(t, err)
		_, err = w.Write(p.body)
		require.NoError(t, err)
	}
	require.NoError(t, mw.Close())
	return &buf, mw.FormDataContentType()
}

func (d *daemon) multipart(s doc, parts ...part) resp {
	body, ct := multipartBody(d.t, s, parts...)
	return d.do("POST", "/api/messages/out/multipart", body, "Content-Type", ct)
}

func TestConformanceMultipart(t *testing.T) {
	d := startDaemon(t, nil)
	ch := startChannel(t, d)

	t.Run("C30_one_step_send", func(t *testing.T) {
		r := d.multipart(avtaltSBD(dpoOrg), part{"Vedlegg", "vedlegg.pdf", "application/pdf", bytes.Repeat([]byte("x"), 1024)})
		require.Equal(t, 200, r.Code, "body: %s", r.Body)
		id := doc(r.JSON(t)).docID()["instanceIdentifier"].(string)
		require.Regexp(t, uuidRE, id)
		eventually(t, func() bool { return ch.count(id) == 1 }, "transmitted without further calls")
	})
	t.Run("C31_part_size_limit", func(t *testing.T) {
		r := d.multipart(avtaltSBD(dpoOrg), part{"Stor", "stor.pdf", "application/pdf", make([]byte, 5242881)})
		requireError(t, r, 400, "MultipartFileToLargeException")
		r = d.multipart(avtaltSBD(dpoOrg), part{"Akkurat", "akkurat.pdf", "application/pdf", make([]byte, 5242880)})
		require.Equal(t, 200, r.Code, "body: %s", r.Body)
	})
	t.Run("C32_duplicate_filenames", func(t *testing.T) {
		r := d.multipart(avtaltSBD(dpoOrg), part{"A", "same.pdf", "application/pdf", []byte("a")}, part{"B", "same.pdf", "application/pdf", []byte("b")})
		m := requireError(t, r, 400, "DuplicateFilenameException")
		assert.Contains(t, m["message"], "same.pdf")
	})
	t.Run("C33_failed_one_step_send_leaves_nothing", func(t *testing.T) {
		s := arkivSBD(dpoOrg)
		id := newID()
		s.docID()["instanceIdentifier"] = id
		// No arkivmelding.xml: refused at the send step, after create and upload.
		r := d.multipart(s, part{"Vedtak", "vedtak.pdf", "application/pdf", []byte("%PDF")})
		requireError(t, r, 400, "MissingArkivmeldingException")
		requireError(t, d.get("/api/messages/out/"+id), 404, "MessageNotFoundException")
		requireError(t, d.get("/api/conversations/messageId/"+id), 404, "MessageNotFoundException")
		assert.Empty(t, statusesOf(t, d, id))
		r = d.multipart(s, part{"arkivmelding", "arkivmelding.xml", "text/xml", arkivmeldingXML("T", "vedtak.pdf")},
			part{"Vedtak", "vedtak.pdf", "application/pdf", []byte("%PDF")})
		require.Equal(t, 200, r.Code, "body: %s", r.Body)
	})
	t.Run("C34_wrong_content_type", func(t *testing.T) {
		r := d.do("POST", "/api/messages/out", strings.NewReader("hei"), "Content-Type", "text/plain")
		requireError(t, r, 415, "")
	})
	t.Run("C35_delete_outgoing", func(t *testing.T) {
		_, id := d.create(arkivSBD(dpoOrg))
		assert.Equal(t, 200, d.do("DELETE", "/api/messages/out/"+id, nil).Code)
		assert.Equal(t, 200, d.do("DELETE", "/api/messages/out/"+newID(), nil).Code)
		r := d.get("/api/messages/out?messageId=" + id)
		assert.Empty(t, r.JSON(t)["content"])
		assert.Equal(t, []string{"OPPRETTET"}, statusesOf(t, d, id), "conversation and statuses stay")
	})
}

func asic(t testing.TB) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "mimetype", Method: zip.Store})
	require.NoError(t, err)
	w.Write([]byte("application/vnd.etsi.asic-e+zip"))
	w, err = zw.Create("vedtak.pdf")
	require.NoError(t, err)
	w.Write([]byte("%PDF-1.4"))
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func arkivIn() doc {
	return incomingSBD(archiveProc, "arkivmelding", "urn:no:difi:arkivmelding:xsd::arkivmelding", map[string]any{"hoveddokument": "vedtak.pdf"})
}

func TestConformanceIncoming(t *testing.T) {
	d := startDaemon(t, nil)
	pkg := asic(t)

	var id string
	t.Run("C36_peek_locks", func(t *testing.T) {
		id = d.receive(arkivIn(), "DPO", pkg)
		r := d.get("/api/messages/in/peek")
		require.Equal(t, 200, r.Code, "body: %s", r.Body)
		assert.Equal(t, id, doc(r.JSON(t)).docID()["instanceIdentifier"])
		r = d.get("/api/messages/in/peek")
		assert.Equal(t, 204, r.Code)
		assert.Empty(t, r.Body)
	})
	t.Run("C37_pop_needs_lock", func(t *testing.T) {
		other := d.receive(arkivIn(), "DPO", pkg)
		requireError(t, d.get("/api/messages/in/pop/"+other), 400, "MessageNotLockedException")
		r := d.get("/api/messages/in/pop/" + id)
		require.Equal(t, 200, r.Code, "body: %s", r.Body)
		assert.Equal(t, "application/vnd.etsi.asic-e+zip", r.Header.Get("Content-Type"))
		assert.Equal(t, "attachment; filename=asic.zip", r.Header.Get("Content-Disposition"))
		assert.Equal(t, pkg, r.Body)
		_, err := zip.NewReader(bytes.NewReader(r.Body), int64(len(r.Body)))
		assert.NoError(t, err)
		// Clean the queue for what follows.
		require.Equal(t, 200, d.get("/api/messages/in/peek?messageId="+other).Code)
		require.Equal(t, 200, d.do("DELETE", "/api/messages/in/"+other, nil).Code)
	})
	t.Run("C38_pop_receipt_is_204", func(t *testing.T) {
		kv := incomingSBD("urn:no:difi:profile:arkivmelding:response:ver1.0", "arkivmelding_kvittering",
			"urn:no:difi:arkivmelding:xsd::arkivmelding_kvittering", map[string]any{"receiptType": "OK", "relatedToMessageId": newID()})
		kid := d.receive(kv, "DPO", nil)
		require.Equal(t, 200, d.get("/api/messages/in/peek?messageId="+kid).Code)
		r := d.get("/api/messages/in/pop/" + kid)
		assert.Equal(t, 204, r.Code)
		assert.Empty(t, r.Body)
		require.Equal(t, 200, d.do("DELETE", "/api/messages/in/"+kid, nil).Code)
	})
	t.Run("C39_delete_acknowledges", func(t *testing.T) {
		r := d.do("DELETE", "/api/messages/in/"+id, nil)
		require.Equal(t, 200, r.Code, "body: %s", r.Body)
		assert.Equal(t, id, doc(r.JSON(t)).docID()["instanceIdentifier"])
		r = d.get("/api/conversations?direction=INCOMING&messageId=" + id)
		c := r.JSON(t)["content"].([]any)[0].(map[string]any)
		assert.Equal(t, true, c["finished"])
		assert.Contains(t, statusesOf(t, d, id), "INNKOMMENDE_LEVERT")
		replies, err := d.core.StatusReplies(context.Background(), 100)
		require.NoError(t, err)
		found := false
		for _, rp := range replies {
			if rp.MessageID == id && rp.Status == "LEVERT" {
				found = true
				s, err := sbd.Decode(rp.SBD)
				require.NoError(t, err)
				assert.Equal(t, "status", s.Type)
				assert.Equal(t, id, s.MessageID())
				assert.Equal(t, "LEVERT", s.String("status"))
				assert.Equal(t, "0192:"+dpoOrg, s.ReceiverValue(), "sender and receiver swapped")
			}
		}
		assert.True(t, found, "a LEVERT status message is owed to the sender")
	})
	t.Run("C40_delete_needs_lock", func(t *testing.T) {
		other := d.receive(arkivIn(), "DPO", pkg)
		requireError(t, d.do("DELETE", "/api/messages/in/"+other, nil), 400, "MessageNotLockedException")
		requireError(t, d.do("DELETE", "/api/messages/in/"+newID(), nil), 404, "MessageNotFoundException")
		require.Equal(t, 200, d.get("/api/messages/in/peek?messageId="+other).Code)
		require.Equal(t, 200, d.do("DELETE", "/api/messages/in/"+other, nil).Code)
	})
	t.Run("C42_peek_filters", func(t *testing.T) {
		einnsyn := incomingSBD("urn:no:difi:profile:einnsyn:innsynskrav:ver1.0", "innsynskrav", "urn:no:difi:einnsyn:xsd::innsynskrav",
			map[string]any{"orgnr": ownOrg, "epost": "a@example.test"})
		eid := d.receive(einnsyn, "DPE", pkg)
		aid := d.receive(arkivIn(), "DPO", pkg)
		r := d.get("/api/messages/in/peek?process=" + archiveProc)
		require.Equal(t, 200, r.Code)
		assert.Equal(t, aid, doc(r.JSON(t)).docID()["instanceIdentifier"])
		assert.Equal(t, 204, d.get("/api/messages/in/peek?process="+archiveProc).Code)
		r = d.get("/api/messages/in/peek?serviceIdentifier=DPE")
		require.Equal(t, 200, r.Code)
		assert.Equal(t, eid, doc(r.JSON(t)).docID()["instanceIdentifier"])
		bare := d.get("/api/messages/in?receiverIdentifier=" + ownOrg).JSON(t)
		prefixed := d.get("/api/messages/in?receiverIdentifier=0192:" + ownOrg).JSON(t)
		assert.Equal(t, bare["content"], prefixed["content"])
		assert.EqualValues(t, 2, bare["totalElements"])
		for _, x := range []string{aid, eid} {
			require.Equal(t, 200, d.do("DELETE", "/api/messages/in/"+x, nil).Code)
		}
	})
	t.Run("C43_incoming_expiry", func(t *testing.T) {
		s := arkivIn()
		s.scope()["scopeInformation"] = []any{map[string]any{"expectedResponseDateTime": sbd.FormatTime(time.Now().Add(1500 * time.Millisecond))}}
		xid := d.receive(s, "DPO", pkg)
		assert.EqualValues(t, 1, d.get("/api/messages/in?messageId=" + xid).JSON(t)["totalElements"])
		eventually(t, func() bool {
			return d.get("/api/messages/in?messageId=" + xid).JSON(t)["totalElements"] == float64(0)
		}, "expired message left the queue")
		assert.Contains(t, statusesOf(t, d, xid), "LEVETID_UTLOPT")
	})
	t.Run("C44_incoming_status_message", func(t *testing.T) {
		_, oid := d.create(avtaltSBD(dpoOrg))
		st := incomingSBD("urn:no:difi:profile:avtalt:response:ver1.0", "status", "urn:no:difi:eformidling:xsd::status", map[string]any{"status": "MOTTATT"})
		st.docID()["instanceIdentifier"] = oid
		d.receive(st, "DPO", nil)
		assert.Contains(t, statusesOf(t, d, oid), "MOTTATT")
		assert.EqualValues(t, 0, d.get("/api/messages/in?messageId=" + oid).JSON(t)["totalElements"])
	})
	t.Run("C61_archive_receipt_records_on_original", func(t *testing.T) {
		_, errID := d.create(arkivSBD(dpoOrg))
		_, okID := d.create(arkivSBD(dpoOrg))
		for rel, rt := range map[string]string{errID: "ERROR", okID: "OK"} {
			kv := incomingSBD("urn:no:difi:profile:arkivmelding:response:ver1.0", "arkivmelding_kvittering",
				"urn:no:difi:arkivmelding:xsd::arkivmelding_kvittering", map[string]any{"receiptType": rt, "relatedToMessageId": rel})
			d.receive(kv, "DPO", nil)
		}
		assert.Contains(t, statusesOf(t, d, errID), "FEIL")
		assert.Contains(t, statusesOf(t, d, okID), "LEST")
		r := d.get("/api/statuses?status=FEIL&messageId=" + errID)
		st := r.JSON(t)["content"].([]any)[0].(map[string]any)
		assert.Equal(t, "ArkivmeldingKvittering: ERROR", st["description"])
		assert.Contains(t, st["rawReceipt"], "ERROR")
	})
}

func TestConformanceLockTimeout(t *testing.T) {
	d := startDaemon(t, map[string]string{"efm.incoming.lock-timeout": "500ms"})
	t.Run("C41_lock_expires", func(t *testing.T) {
		id := d.receive(arkivIn(), "DPO", asic(t))
		require.Equal(t, 200, d.get("/api/messages/in/peek").Code)
		eventually(t, func() bool { return d.get("/api/messages/in/peek").Code == 200 }, "peekable again after the lock timeout")
		require.Equal(t, 200, d.do("DELETE", "/api/messages/in/"+id, nil).Code)
	})
}

func TestConformancePaging(t *testing.T) {
	d := startDaemon(t, nil)
	for range 31 {
		d.receive(arkivIn(), "DPO", nil)
	}
	pageKeys := []string{"content", "pageable", "last", "totalElements", "totalPages", "size", "number", "sort", "first", "numberOfElements", "empty"}
	t.Run("C45_page_keys_and_arithmetic", func(t *testing.T) {
		for _, p := range []string{"/api/messages/in", "/api/messages/out", "/api/conversations", "/api/conversations/queue",
			"/api/statuses", "/api/statuses/" + newID(), "/api/subscriptions"} {
			r := d.get(p)
			require.Equal(t, 200, r.Code, p)
			m := r.JSON(t)
			for _, k := range pageKeys {
				assert.Contains(t, m, k, p)
			}
			pg := m["pageable"].(map[string]any)
			for _, k := range []string{"pageNumber", "pageSize", "sort", "offset", "paged", "unpaged"} {
				assert.Contains(t, pg, k, p)
			}
		}
		m := d.get("/api/messages/in?page=3&size=10").JSON(t)
		assert.Len(t, m["content"], 1)
		assert.EqualValues(t, 3, m["number"])
		assert.EqualValues(t, 4, m["totalPages"])
		assert.Equal(t, false, m["first"])
		assert.Equal(t, true, m["last"])
		assert.EqualValues(t, 30, m["pageable"].(map[string]any)["offset"])
		assert.EqualValues(t, 31, m["totalElements"])
	})
	t.Run("C46_size_cap_and_default", func(t *testing.T) {
		assert.EqualValues(t, 2000, d.get("/api/messages/in?size=5000").JSON(t)["size"])
		m := d.get("/api/messages/in?size=0").JSON(t)
		assert.EqualValues(t, 10, m["size"])
		assert.Len(t, m["content"], 10)
	})
	t.Run("C47_conversation_sort", func(t *testing.T) {
		m := d.get("/api/conversations?size=50").JSON(t)
		assert.Equal(t, true, m["sort"].(map[string]any)["sorted"])
		times := conversationTimes(t, m)
		for i := 1; i < len(times); i++ {
			assert.False(t, times[i].After(times[i-1]), "descending by lastUpdate")
		}
		m = d.get("/api/conversations?size=50&sort=lastUpdated,asc").JSON(t)
		times = conversationTimes(t, m)
		for i := 1; i < len(times); i++ {
			assert.False(t, times[i].Before(times[i-1]), "ascending by lastUpdate")
		}
		requireError(t, d.get("/api/conversations?sort=colour"), 400, message.NamePropertyReference)
	})
}

func conversationTimes(t *testing.T, m map[string]any) []time.Time {
	var out []time.Time
	for _, c := range m["content"].([]any) {
		tm, err := sbd.ParseTime(c.(map[string]any)["lastUpdate"].(string))
		require.NoError(t, err)
		out = append(out, tm)
	}
	require.NotEmpty(t, out)
	return out
}

func jsonEncode(w interface{ Write([]byte) (int, error) }, v any) error {
	b, err := jsonMarshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

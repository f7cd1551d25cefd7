package api_test

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/addressing/seed"
	"github.com/efm-go/efm/integrasjonspunkt/message"
)

// svarUtTypes adds KS SvarUt's list of shipment types (retreiveForsendelseTyper,
// channels.md §5.1) to the simulators' registry. The list is the seeded one
// (channels.md §9.13): every forsendelseType the seed's SvarUt receiving
// systems name. No SvarUt SOAP simulator exists yet to ask over HTTP.
type svarUtTypes struct {
	message.Registry
	types []string
	asked []string
}

func (r *svarUtTypes) ForsendelseTyper(_ context.Context, org string) ([]string, error) {
	r.asked = append(r.asked, org)
	return r.types, nil
}

func seededForsendelseTyper(t *testing.T) []string {
	s, err := seed.Default()
	require.NoError(t, err)
	var out []string
	for _, o := range s.Orgs {
		for _, m := range o.SvarUt {
			if m.ForsendelseType != "" && !slices.Contains(out, m.ForsendelseType) {
				out = append(out, m.ForsendelseType)
			}
		}
	}
	require.NotEmpty(t, out, "the default seed names a typed SvarUt system")
	return out
}

// TestErrorCatalogue_DPF reaches ForsendelseTypeNotFoundException (§15.2
// step 9): the shipment type must be one the sender's SvarUt account offers.
func TestErrorCatalogue_DPF(t *testing.T) {
	types := seededForsendelseTyper(t)
	lister := &svarUtTypes{types: types}
	d := startDaemonReg(t, map[string]string{"difi.move.feature.enableDPF": "true",
		"difi.move.fiks.ut.username": "ut", "difi.move.fiks.ut.password": "x",
		"difi.move.fiks.inn.username": "inn", "difi.move.fiks.inn.password": "x"}, io.Discard,
		func(r message.Registry) message.Registry { lister.Registry = r; return lister })
	withType := func(ft string) doc {
		s := arkivSBD(dpfOrg)
		s["arkivmelding"].(map[string]any)["dpf"] = map[string]any{"forsendelseType": ft}
		return s
	}

	t.Run("ForsendelseTypeNotFoundException", func(t *testing.T) {
		m := requireError(t, d.postJSON("/api/messages/out", withType("Ukjent type")), 400, "ForsendelseTypeNotFoundException")
		assert.Contains(t, m["message"], "Ukjent type")
		assert.Contains(t, m["message"], types[0], "the valid list is named")
		assert.Equal(t, ownOrg, lister.asked[len(lister.asked)-1], "the sender's account is asked")
	})
	t.Run("known type accepted", func(t *testing.T) {
		d.create(withType(types[0]))
	})
	t.Run("no type, no question", func(t *testing.T) {
		n := len(lister.asked)
		d.create(arkivSBD(dpfOrg))
		assert.Len(t, lister.asked, n)
	})
}

// Health actors of the DPH tests, from the default seed's NHN address
// register (addressing/seed): the daemon's own HER-id, and a GP office that
// the SR simulator answers DPH for by HER-id and by organisation number.
const (
	ownHerID   = "8143154"
	gpHerID    = "8142519"
	nhnOrg     = "910088009"
	dphProcess = "urn:no:difi:profile:helse:helse:ver1.0"
	dphStd     = "urn:no:difi:helse:xsd:schema::dialogmelding"
)

func dialogSBD(sender, receiver string) doc {
	s := newSBD("dialogmelding", dphStd, dphProcess, receiver, map[string]any{
		"hoveddokument": "melding.pdf",
		"metadataFiler": map[string]any{
			"epikrise.pdf":      map[string]any{"issueDate": "2026-11-01T10:00:00+01:00", "description": "Epikrise"},
			"dialogmelding.xml": map[string]any{"issueDate": "2026-11-01T10:00:00+01:00", "description": "Dialogmelding"},
		},
	})
	h := s.header()
	if r, ok := h["receiver"].([]any); ok && strings.Contains(receiver, "-") {
		r[0].(map[string]any)["identifier"].(map[string]any)["authority"] = "nhn-actorid"
	}
	if sender != "" {
		auth := "iso6523-actorid-upis"
		if strings.HasPrefix(sender, "her-id:") {
			auth = "nhn-actorid"
		}
		h["sender"] = []any{map[string]any{"identifier": map[string]any{"authority": auth, "value": sender}}}
	}
	return s
}

// TestErrorCatalogue_DPH reaches the DPH entries (§12.11, §15.2 step 10,
// §5.2): SenderException, ReceiverException, and at upload
// MissingFileTitleException (DPH), InvalidContentTypeException and
// InvalidDocumentException.
func TestErrorCatalogue_DPH(t *testing.T) {
	d := startDaemon(t, map[string]string{"difi.move.feature.enableDPH": "true", "difi.move.dph.her-ids": ownHerID,
		"difi.move.feature.enableBetaFeatures": "true"})
	pdf := []byte("%PDF-1.4")

	t.Run("SenderException_not_nhn", func(t *testing.T) {
		// No sender: the daemon's own organisation number, not a HER id.
		m := requireError(t, d.postJSON("/api/messages/out", dialogSBD("", "her-id:"+gpHerID)), 400, "SenderException")
		assert.Contains(t, m["message"], "nhn-actorid")
	})
	t.Run("SenderException_not_own_her_id", func(t *testing.T) {
		m := requireError(t, d.postJSON("/api/messages/out", dialogSBD("her-id:1000", "her-id:"+gpHerID)), 400, "SenderException")
		assert.Contains(t, m["message"], "difi.move.dph.her-ids")
	})
	t.Run("ReceiverException", func(t *testing.T) {
		requireError(t, d.postJSON("/api/messages/out", dialogSBD("her-id:"+ownHerID, "0192:"+nhnOrg)), 400, "ReceiverException")
	})

	_, id := d.create(dialogSBD("her-id:"+ownHerID, "her-id:"+gpHerID))
	t.Run("MissingFileTitleException_DPH", func(t *testing.T) {
		r := d.put("/api/messages/out/"+id, pdf, "Content-Disposition", cd("Rontgen", "rontgen.pdf"), "Content-Type", "application/pdf")
		m := requireError(t, r, 400, "MissingFileTitleException")
		assert.Contains(t, m["message"], "DPH")
	})
	t.Run("InvalidContentTypeException", func(t *testing.T) {
		r := d.put("/api/messages/out/"+id, []byte("tekst"), "Content-Disposition", cd("Epikrise", "epikrise.pdf"), "Content-Type", "text/plain")
		m := requireError(t, r, 400, "InvalidContentTypeException")
		assert.Contains(t, m["message"], "text/plain")
	})
	t.Run("InvalidDocumentException", func(t *testing.T) {
		// The dialog message XML is read whatever its declared type (§12.11).
		r := d.put("/api/messages/out/"+id, []byte("<MsgHead><Body>"), "Content-Disposition", cd("Dialog", "dialogmelding.xml"), "Content-Type", "application/pdf")
		m := requireError(t, r, 400, "InvalidDocumentException")
		assert.Contains(t, m["message"], "dialogmelding.xml")
	})
	t.Run("InvalidDocumentException_one_step", func(t *testing.T) {
		r := d.multipart(dialogSBD("her-id:"+ownHerID, "her-id:"+gpHerID),
			part{"Melding", "melding.pdf", "application/pdf", pdf},
			part{"Dialog", "dialogmelding.xml", "application/pdf", []byte("ikke xml")})
		requireError(t, r, 400, "InvalidDocumentException")
	})
	t.Run("valid uploads", func(t *testing.T) {
		require.Equal(t, 200, d.put("/api/messages/out/"+id, pdf, "Content-Disposition", cd("Melding", "melding.pdf"), "Content-Type", "application/pdf").Code)
		r := d.put("/api/messages/out/"+id, pdf, "Content-Disposition", cd("Epikrise", "epikrise.pdf"), "Content-Type", "application/pdf")
		require.Equal(t, 200, r.Code, "body: %s", r.Body)
		r = d.put("/api/messages/out/"+id, []byte(`<?xml version="1.0"?><MsgHead><Body/></MsgHead>`),
			"Content-Disposition", cd("Dialog", "dialogmelding.xml"), "Content-Type", "application/pdf")
		require.Equal(t, 200, r.Code, "body: %s", r.Body)
	})
}

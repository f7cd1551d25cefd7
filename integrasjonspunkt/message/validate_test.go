package message

import (
	"encoding/xml"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt/sbd"
	"github.com/efm-go/efm/integrasjonspunkt/store"
)

func decodeSBD(t *testing.T, js string) *sbd.Document {
	t.Helper()
	d, err := sbd.Decode([]byte(js))
	require.NoError(t, err)
	return d
}

// TestCheckUpload_PrimaryDocument pins why MultiplePrimaryDocumentsNotAllowed
// cannot be reached through E3 or E5: a file is primary only when its name
// equals hoveddokument, so a second primary repeats a name and
// DuplicateFilename (checked first, as in the reference) answers. The check
// still guards a stored primary under another name.
func TestCheckUpload_PrimaryDocument(t *testing.T) {
	doc := decodeSBD(t, `{"standardBusinessDocumentHeader":{"documentIdentification":{"type":"arkivmelding"}},"arkivmelding":{"hoveddokument":"vedtak.pdf"}}`)
	u := Upload{Filename: "vedtak.pdf", Title: "Vedtak"}
	err := checkUpload(doc, "DPO", u, []store.Attachment{{Filename: "vedtak.pdf", Primary: true}})
	assert.True(t, errors.Is(err, &Error{Name: NameDuplicateFilename}), "%v", err)
	err = checkUpload(doc, "DPO", u, []store.Attachment{{Filename: "gammelt-vedtak.pdf", Primary: true}})
	assert.True(t, errors.Is(err, &Error{Name: NameMultiplePrimaryDocuments}), "%v", err)
	assert.NoError(t, checkUpload(doc, "DPO", Upload{Filename: "vedlegg.pdf", Title: "V"}, []store.Attachment{{Filename: "vedtak.pdf", Primary: true}}))
}

func TestWellFormedXML(t *testing.T) {
	for _, ok := range []string{`<a/>`, `<?xml version="1.0"?><a><b>x</b></a>`, "<a/>\n", `<!-- c --><a/>`} {
		assert.NoError(t, wellFormedXML([]byte(ok)), ok)
	}
	for _, bad := range []string{``, `ikke xml`, `<a>`, `<a></b>`, `<a/><b/>`, `<a/>tekst`, `<a x="1" x="2"/>`} {
		assert.Error(t, wellFormedXML([]byte(bad)), bad)
	}
}

// FuzzWellFormedXML: whatever it accepts has exactly one root element that
// encoding/xml decodes, and it never accepts input without one.
func FuzzWellFormedXML(f *testing.F) {
	for _, s := range []string{`<a/>`, `<?xml version="1.0"?><MsgHead><Body/></MsgHead>`, `<a>`, `ikke xml`, `<a/><b/>`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if wellFormedXML(b) != nil {
			return
		}
		var root struct{ XMLName xml.Name }
		if err := xml.Unmarshal(b, &root); err != nil {
			t.Fatalf("accepted %q, which does not decode: %v", b, err)
		}
		if root.XMLName.Local == "" {
			t.Fatalf("accepted %q without a root element", b)
		}
	})
}

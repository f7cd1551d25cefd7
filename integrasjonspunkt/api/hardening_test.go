package api_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Files the ASiC-E packer refuses are refused at the API, naming the file,
// instead of being accepted and retried for ever (issue 14, point 6).
func TestUpload_NamesThePackerRefuses(t *testing.T) {
	d := startDaemon(t, nil)
	pdf := []byte("%PDF-1.4 test")
	for _, name := range []string{"rapport..v2.pdf", "mimetype", "manifest.xml",
		strings.Repeat("a", 252) + ".pdf"} {
		t.Run("E3 "+name[:min(len(name), 20)], func(t *testing.T) {
			_, id := d.create(avtaltSBD(dpoOrg))
			r := d.put("/api/messages/out/"+id, pdf, "Content-Type", "application/pdf", "Content-Disposition", cd("Vedlegg", name))
			m := requireError(t, r, 400, "InvalidFilenameException")
			assert.Contains(t, m["message"], name)
		})
		t.Run("E5 "+name[:min(len(name), 20)], func(t *testing.T) {
			r := d.multipart(avtaltSBD(dpoOrg), part{"Vedlegg", name, "application/pdf", pdf})
			m := requireError(t, r, 400, "InvalidFilenameException")
			assert.Contains(t, m["message"], name)
		})
	}
	t.Run("a name of 255 octets goes", func(t *testing.T) {
		_, id := d.create(avtaltSBD(dpoOrg))
		r := d.put("/api/messages/out/"+id, pdf, "Content-Type", "application/pdf",
			"Content-Disposition", cd("Vedlegg", strings.Repeat("a", 251)+".pdf"))
		require.Equal(t, 200, r.Code, "body: %s", r.Body)
	})
	t.Run("DPV carries no container", func(t *testing.T) {
		s := newSBD("arkivmelding", "urn:no:difi:arkivmelding:xsd::arkivmelding", archiveProc, "0192:"+dpvOrg, map[string]any{"hoveddokument": "vedtak.pdf"})
		_, id := d.create(s)
		r := d.put("/api/messages/out/"+id, pdf, "Content-Type", "application/pdf", "Content-Disposition", cd("Vedlegg", "manifest.xml"))
		require.Equal(t, 200, r.Code, "body: %s", r.Body)
	})
}

// The receiver opens at most 256 zip entries; four are the container's and
// one is the eFormidling manifest.
func TestUpload_TooManyFilesForTheContainer(t *testing.T) {
	d := startDaemon(t, nil)
	_, id := d.create(avtaltSBD(dpoOrg))
	for i := range 251 {
		r := d.put("/api/messages/out/"+id, []byte("x"), "Content-Type", "application/pdf",
			"Content-Disposition", cd("Vedlegg", fmt.Sprintf("v%03d.pdf", i)))
		require.Equal(t, 200, r.Code, "file %d: %s", i, r.Body)
	}
	r := d.put("/api/messages/out/"+id, []byte("x"), "Content-Type", "application/pdf", "Content-Disposition", cd("Vedlegg", "v251.pdf"))
	m := requireError(t, r, 400, "TooManyAttachmentsException")
	assert.Contains(t, m["message"], "v251.pdf")
	assert.Contains(t, m["message"], "251")
}

// A one-step send with more parts than the cap is refused, naming the
// limit (issue 14, point 7).
func TestMultipart_PartCap(t *testing.T) {
	d := startDaemon(t, nil)
	parts := make([]part, 0, 400)
	for i := range 400 {
		parts = append(parts, part{"Vedlegg", fmt.Sprintf("v%03d.txt", i), "text/plain", []byte("x")})
	}
	r := d.multipart(avtaltSBD(dpoOrg), parts...)
	m := requireError(t, r, 400, "org.apache.tomcat.util.http.fileupload.impl.FileCountLimitExceededException")
	assert.Contains(t, m["message"], "300")
	r = d.multipart(avtaltSBD(dpoOrg), parts[:250]...)
	require.Equal(t, 200, r.Code, "250 documents fit: %s", r.Body)
}

// An empty string is a value, as the reference's NotNull has it: Digdir's
// own mock client sends publisering.orgnr and innsynskrav.epost empty
// (issue 14, point 10). Absent or null is still refused.
func TestCreate_EmptyStringsTheReferenceAccepts(t *testing.T) {
	d := startDaemon(t, nil)
	for _, tt := range []struct {
		typ, process string
		business     map[string]any
	}{
		{"publisering", einnsynProc, map[string]any{"orgnr": ""}},
		{"innsynskrav", "urn:no:difi:profile:einnsyn:innsynskrav:ver1.0", map[string]any{"orgnr": dpeOrg, "epost": ""}},
	} {
		t.Run(tt.typ, func(t *testing.T) {
			s := newSBD(tt.typ, "urn:no:difi:einnsyn:xsd::"+tt.typ, tt.process, "0192:"+dpeOrg, tt.business)
			r := d.postJSON("/api/messages/out", s)
			require.Equal(t, 200, r.Code, "body: %s", r.Body)
		})
	}
	s := newSBD("innsynskrav", "urn:no:difi:einnsyn:xsd::innsynskrav", "urn:no:difi:profile:einnsyn:innsynskrav:ver1.0",
		"0192:"+dpeOrg, map[string]any{"orgnr": dpeOrg, "epost": nil})
	requireError(t, d.postJSON("/api/messages/out", s), 400, "jakarta.validation.ConstraintViolationException")
}

package dpf_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/internal/apitest"
	"github.com/efm-go/efm/packaging/cms"
	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/dpf"
	"github.com/efm-go/efm/transport/dpf/dpfsim"
)

// bigDoc is an encrypted document of size incompressible bytes.
func (e *env) bigDoc(name string, size int64, seed byte) dpf.Dokument {
	d := dpf.Dokument{Filnavn: name, MimeType: "application/pdf",
		Open: func() (io.ReadCloser, error) { return io.NopCloser(apitest.Incompressible(size, seed)), nil }}
	return dpf.Encrypted(d, e.pki.Orgs[svarUtOrg].Cert, cms.RSAESOAEP)
}

func sum(size int64, seed byte) string {
	h := sha256.New()
	_, _ = io.Copy(h, apitest.Incompressible(size, seed))
	return hex.EncodeToString(h.Sum(nil))
}

func dirEntries(t *testing.T, dir string) int {
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	return len(entries)
}

// TestSvarUt_REST_SizeRules: a digital-only shipment over the simulator's
// cap, sent as the client does (chunked, encrypted), is refused with
// SvarUt's ErrorMessage and 400, and nothing stays on disk; a document
// bigger than what is kept in memory is spooled to Dir, decrypted from it
// whole, and removed when the simulator closes.
func TestSvarUt_REST_SizeRules(t *testing.T) {
	dir := t.TempDir()
	e := newEnvWith(t, func(o *dpfsim.Options) { o.Dir, o.MaxShipment = dir, 5<<20+1 })
	// Encrypting and decrypting megabytes under the race detector on a busy
	// machine outlasts the environment's default deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f := e.shipment("ref-stor")
	f.KunDigitalLevering = true
	f.Dokumenter = []dpf.Dokument{e.bigDoc("a.pdf", 4<<20+1, 1), e.bigDoc("b.pdf", 1<<20+1, 2)}
	_, err := e.rest.Send(ctx, senderOrg, f, false)
	var se *transport.StatusError
	require.True(t, errors.As(err, &se), "%v", err)
	assert.Equal(t, http.StatusBadRequest, se.StatusCode)
	assert.Equal(t, "MAX_FILE_SIZE_EXCEEDED", se.Title)
	assert.Contains(t, se.Detail, "5 MB")
	assert.Empty(t, e.sim.Shipments())
	assert.Zero(t, dirEntries(t, dir), "the refused shipment left nothing behind")

	f.Dokumenter = []dpf.Dokument{e.bigDoc("a.pdf", 4<<20+1, 1), e.bigDoc("b.pdf", 1<<20, 2)}
	id, err := e.rest.Send(ctx, senderOrg, f, false)
	require.NoError(t, err, "exactly at the cap is taken")
	sh := e.sim.Shipments()
	require.Len(t, sh, 1)
	assert.Equal(t, id, sh[0].ID)
	assert.Equal(t, 4<<20+1, sh[0].Documents[0].Size)
	assert.Equal(t, sum(4<<20+1, 1), sh[0].Documents[0].SHA256, "decrypted whole, not cut")
	assert.Equal(t, sum(1<<20, 2), sh[0].Documents[1].SHA256)
	assert.Equal(t, 1, dirEntries(t, dir), "the document over 4 MiB is on disk, the 1 MiB one in memory")

	// The bridge to SvarInn zips and encrypts from disk as it serves.
	list, err := e.inn.New(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	rc, err := e.inn.Download(ctx, list[0])
	require.NoError(t, err)
	var plain bytes.Buffer
	_, err = cms.Decrypt(&plain, rc, e.pki.Orgs[receiverOrg].Key, cms.DecryptOptions{})
	rc.Close()
	require.NoError(t, err)
	assert.Greater(t, plain.Len(), 5<<20, "the zip holds both documents")

	e.sim.Close()
	assert.Zero(t, dirEntries(t, dir), "Close removes the spooled documents")
}

// TestSvarUt_REST_PrintLimitFromContentLength: a shipment that may go to
// print (kunDigitalLevering false) is judged against SvarUt's 350 MB from
// its Content-Length once the forsendelse part is read, before its
// documents are; over the simulator's own cap, before any byte is read.
func TestSvarUt_REST_PrintLimitFromContentLength(t *testing.T) {
	e := newEnv(t)
	tok, err := tokens{e.mp}.Token(e.ctx, senderOrg)
	require.NoError(t, err)
	post := func(kunDigital bool, length int64, expect bool) (int, map[string]any, int64) {
		meta, _ := json.Marshal(map[string]any{"tittel": "Stor", "kunDigitalLevering": kunDigital,
			"mottaker":   map[string]any{"navn": "STOREVIK KOMMUNE", "digitalId": receiverOrg},
			"dokumenter": []any{map[string]any{"filnavn": "stor.pdf", "mimeType": "application/pdf"}}})
		head := "--b\r\nContent-Disposition: form-data; name=\"forsendelse\"\r\nContent-Type: application/json\r\n\r\n" + string(meta) +
			"\r\n--b\r\nContent-Disposition: form-data; name=\"dokumenter\"; filename=\"stor.pdf\"\r\n\r\n"
		docs := &apitest.Zeros{Size: length - int64(len(head))}
		req, err := http.NewRequest("POST", e.url+"/api/v3/kontoer/"+kontoID+"/forsendelser/organisasjon",
			io.MultiReader(strings.NewReader(head), docs))
		require.NoError(t, err)
		req.ContentLength = length
		req.Header.Set("Content-Type", "multipart/form-data; boundary=b")
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("IntegrasjonId", "integrasjon")
		req.Header.Set("IntegrasjonPassord", "hemmelig")
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		if expect {
			req.Header.Set("Expect", "100-continue")
			tr.ExpectContinueTimeout = 30 * time.Second
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var em map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&em))
		return resp.StatusCode, em, docs.ReadSoFar()
	}
	code, em, read := post(false, dpfsim.PrintLimit+32<<20, false)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, "MAX_FILE_SIZE_EXCEEDED", em["errorCode"])
	assert.Contains(t, em["message"], "350 MB")
	assert.Contains(t, em["message"], "print")
	assert.Less(t, read, int64(64<<20), "answered from the Content-Length, not after reading the documents")

	code, em, read = post(true, dpfsim.DefaultMaxShipment+32<<20, true)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, "MAX_FILE_SIZE_EXCEEDED", em["errorCode"])
	assert.Zero(t, read, "over the cap not one byte was read")
	assert.Empty(t, e.sim.Shipments())
}

// TestSvarUt_SOAP_OverTheCapIsAFault: over the cap an MTOM document is a
// SOAP fault, never a document cut at the cap and accepted.
func TestSvarUt_SOAP_OverTheCapIsAFault(t *testing.T) {
	dir := t.TempDir()
	e := newEnvWith(t, func(o *dpfsim.Options) { o.Dir, o.MaxShipment = dir, 6<<20 },
		dpfsim.SOAPAccount{Username: "svarut-" + senderOrg, Password: "pw", Org: senderOrg})
	c := newSOAP(t, e, newSOAPValidating(t), map[string]dpf.Credentials{senderOrg: {Username: "svarut-" + senderOrg, Password: "pw"}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // as in TestSvarUt_REST_SizeRules
	defer cancel()
	f := e.shipment("ref-soap-stor")
	f.ID = "8b1d6a3e-2f4c-4e5a-9b7c-1d2e3f4a5b6d"
	f.KunDigitalLevering = true
	f.Dokumenter = []dpf.Dokument{e.bigDoc("stor.pdf", 6<<20+1, 3)}
	_, err := c.Send(ctx, senderOrg, f, false)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Total filstørrelse kan ikke overstige 6 MB")
	assert.Empty(t, e.sim.Shipments(), "refused, not cut and accepted")
	assert.Zero(t, dirEntries(t, dir))

	f.Dokumenter = []dpf.Dokument{e.bigDoc("stor.pdf", 6<<20, 3)}
	id, err := c.Send(ctx, senderOrg, f, false)
	require.NoError(t, err)
	sh := e.sim.Shipments()
	require.Len(t, sh, 1)
	assert.Equal(t, id, sh[0].ID)
	assert.Equal(t, sum(6<<20, 3), sh[0].Documents[0].SHA256)
}

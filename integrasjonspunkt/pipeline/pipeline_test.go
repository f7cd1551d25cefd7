package pipeline

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/addressing"
	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/packaging/asic"
	"github.com/efm-go/efm/packaging/cms"
	"github.com/efm-go/efm/packaging/keystore"
	"github.com/efm-go/efm/packaging/testpki"
)

const (
	senderOrg   = "910077473"
	receiverOrg = "910075918"
)

var (
	pkiOnce sync.Once
	pki     *testpki.PKI
	pkiErr  error
)

func testPKI(t *testing.T) *testpki.PKI {
	t.Helper()
	pkiOnce.Do(func() {
		pki, pkiErr = testpki.Ensure(filepath.Join(os.TempDir(), "efm-pipeline-test-pki"), []string{senderOrg, receiverOrg})
	})
	require.NoError(t, pkiErr)
	return pki
}

func packerOf(t *testing.T, org string) *ASiCPacker {
	t.Helper()
	id := testPKI(t).Orgs[org]
	p, err := NewASiCPacker(&keystore.Keystore{Cert: id.Cert, Key: id.Key}, testPKI(t).Pool())
	require.NoError(t, err)
	return p
}

func fileOf(name, mime string, content []byte) File {
	return File{Name: name, MimeType: mime, Size: int64(len(content)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(content)), nil }}
}

// TestPack_RoundTrip: what the sender packs to the receiver's certificate,
// the receiver decrypts and verifies, with the documents intact and the
// eFormidling manifest first.
func TestPack_RoundTrip(t *testing.T) {
	for _, kt := range []cms.KeyTransport{cms.RSAESOAEP, cms.RSAESPKCS1v15} {
		doc := bytes.Repeat([]byte{0, 1, 2, 0xff}, 50_000)
		xml := []byte("<arkivmelding/>")
		var pkg bytes.Buffer
		err := packerOf(t, senderOrg).Pack(context.Background(), PackRequest{SenderOrg: senderOrg, ReceiverOrg: receiverOrg,
			Files:     []File{fileOf("arkivmelding.xml", "application/xml", xml), fileOf("vedtak.pdf", "application/pdf", doc)},
			Recipient: testPKI(t).Orgs[receiverOrg].Cert, KeyTransport: kt}, &pkg)
		require.NoError(t, err)

		f, err := os.CreateTemp(t.TempDir(), "in")
		require.NoError(t, err)
		defer f.Close()
		require.NoError(t, packerOf(t, receiverOrg).Unpack(context.Background(), bytes.NewReader(pkg.Bytes()), f, 1<<30))
		st, err := f.Stat()
		require.NoError(t, err)
		zr, err := zip.NewReader(f, st.Size())
		require.NoError(t, err)
		var names []string
		for _, e := range zr.File {
			names = append(names, e.Name)
		}
		assert.Equal(t, []string{"mimetype", "manifest.xml", "arkivmelding.xml", "vedtak.pdf"}, names[:4])
		got := readEntry(t, zr, "vedtak.pdf")
		assert.True(t, bytes.Equal(doc, got), "document changed")
	}
}

func readEntry(t *testing.T, zr *zip.Reader, name string) []byte {
	t.Helper()
	rc, err := zr.Open(name)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}

// TestUnpack_Refuses: a package for someone else, or one that was tampered
// with, is ErrPackage: discarded, never retried.
func TestUnpack_Refuses(t *testing.T) {
	var pkg bytes.Buffer
	require.NoError(t, packerOf(t, senderOrg).Pack(context.Background(), PackRequest{SenderOrg: senderOrg, ReceiverOrg: receiverOrg,
		Files: []File{fileOf("a.txt", "text/plain", []byte("hello"))}, Recipient: testPKI(t).Orgs[receiverOrg].Cert}, &pkg))
	tests := []struct {
		name string
		by   string
		data []byte
	}{
		{"not the recipient", senderOrg, pkg.Bytes()},
		{"flipped byte", receiverOrg, func() []byte {
			b := bytes.Clone(pkg.Bytes())
			b[len(b)/2] ^= 0xff // inside the container's entries (CBC has no integrity; the signature has)
			return b
		}()},
		{"not cms", receiverOrg, []byte("PK\x03\x04 certainly not cms")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.CreateTemp(t.TempDir(), "in")
			require.NoError(t, err)
			defer f.Close()
			err = packerOf(t, tt.by).Unpack(context.Background(), bytes.NewReader(tt.data), f, 1<<30)
			assert.ErrorIs(t, err, ErrPackage)
		})
	}
}

// TestLedger keeps checkpoints across reopen and refuses ids that are not
// UUIDs, alone and in a dir shared by a group.
func TestLedger(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprint("shared=", shared), func(t *testing.T) {
			dir := t.TempDir()
			l, err := openLedger(dir, shared)
			require.NoError(t, err)
			id := uuid.NewString()
			_, err = l.update(id, func(e *entry) { e.Channel, e.Checkpoint = "DPO", "transfer-1" })
			require.NoError(t, err)
			_, err = l.update(id, func(e *entry) { e.Attempts++ })
			require.NoError(t, err)

			l2, err := openLedger(dir, shared)
			require.NoError(t, err)
			e, err := l2.get(id)
			require.NoError(t, err)
			assert.Equal(t, "transfer-1", e.Checkpoint)
			assert.Equal(t, 1, e.Attempts)

			tracked := uuid.NewString()
			_, err = l2.update(tracked, func(e *entry) { e.Channel, e.Reference, e.Tracking = "DPV", "corr-1", true })
			require.NoError(t, err)
			ts, err := l2.tracking()
			require.NoError(t, err)
			assert.Equal(t, map[string]string{tracked: "corr-1"}, map[string]string{tracked: ts[tracked].Reference})
			assert.Len(t, ts, 1)

			require.NoError(t, l2.remove(id))
			e, err = l2.get(id)
			require.NoError(t, err)
			assert.Zero(t, e.Checkpoint)

			for _, bad := range []string{"../../etc/passwd", "", "x"} {
				_, err := l2.update(bad, func(*entry) {})
				assert.Error(t, err, bad)
			}
		})
	}
}

// TestFiles_Order: primary document first, then by document number.
func TestFiles_Order(t *testing.T) {
	p := &Pipeline{}
	got := p.files([]store.Attachment{
		{Filename: "b.pdf", DocNo: 3}, {Filename: "arkivmelding.xml", DocNo: 1}, {Filename: "hoved.pdf", DocNo: 2, Primary: true},
	})
	var names []string
	for _, f := range got {
		names = append(names, f.Name)
	}
	assert.Equal(t, []string{"hoved.pdf", "arkivmelding.xml", "b.pdf"}, names)
	assert.Equal(t, "application/octet-stream", got[0].MimeType)
}

// TestPack_RefusedIsFinal: files the container cannot carry fail the same
// way on every retry, so the message becomes FEIL at once instead of being
// retried for ever (issue 14, point 6).
func TestPack_RefusedIsFinal(t *testing.T) {
	p := &Pipeline{cfg: Config{Packer: packerOf(t, senderOrg)}, spool: t.TempDir()}
	route := addressing.Route{Certificate: testPKI(t).Orgs[receiverOrg].Cert}
	many := make([]File, asic.MaxDataEntries)
	for i := range many {
		many[i] = fileOf(fmt.Sprintf("v%d.pdf", i), "application/pdf", []byte("x"))
	}
	for name, files := range map[string][]File{
		"dots":     {fileOf("rapport..v2.pdf", "application/pdf", []byte("x"))},
		"mimetype": {fileOf("mimetype", "text/plain", []byte("x"))},
		"manifest": {fileOf("manifest.xml", "application/xml", []byte("<x/>"))},
		"long":     {fileOf(strings.Repeat("a", 256), "application/pdf", []byte("x"))},
		"too many": many,
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := p.pack(context.Background(), uuid.NewString(), "0192:"+senderOrg, route, files, DPOPackaging(1<<30))
			var fe *finalError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, events.ReasonPayloadInvalid, fe.reason)
		})
	}
	_, _, err := p.pack(context.Background(), uuid.NewString(), "0192:"+senderOrg, route, many[:asic.MaxDataEntries-1], DPOPackaging(1<<30))
	require.NoError(t, err, "as many documents as the receiver opens")
}

// TestPack_MemoryOrSpool: a small package is made in memory, a large one in
// a spool file that done removes; both open as often as asked, and the
// receiver decrypts and verifies either.
func TestPack_MemoryOrSpool(t *testing.T) {
	spool := t.TempDir()
	p := &Pipeline{cfg: Config{Packer: packerOf(t, senderOrg)}, spool: spool}
	route := addressing.Route{Certificate: testPKI(t).Orgs[receiverOrg].Cert}
	for name, size := range map[string]int{"memory": 10 << 10, "spool": memoryPackage + 1} {
		t.Run(name, func(t *testing.T) {
			doc := bytes.Repeat([]byte{0xA5, 0x5A}, size/2+1)
			open, done, err := p.pack(context.Background(), uuid.NewString(), "0192:"+senderOrg, route,
				[]File{fileOf("vedtak.pdf", "application/pdf", doc)}, DPOPackaging(1<<30))
			require.NoError(t, err)
			spooled, err := os.ReadDir(spool)
			require.NoError(t, err)
			assert.Equal(t, name == "spool", len(spooled) == 1, "files in the spool: %d", len(spooled))
			var first []byte
			for range 2 {
				rc, err := open()
				require.NoError(t, err)
				b, err := io.ReadAll(rc)
				require.NoError(t, err)
				rc.Close()
				if first != nil {
					assert.Equal(t, first, b, "the same package on every open")
				}
				first = b
			}
			dst, err := os.CreateTemp(t.TempDir(), "in-*")
			require.NoError(t, err)
			defer dst.Close()
			require.NoError(t, packerOf(t, receiverOrg).Unpack(context.Background(), bytes.NewReader(first), dst, 1<<30))
			done()
			spooled, err = os.ReadDir(spool)
			require.NoError(t, err)
			assert.Empty(t, spooled, "done frees the package")
		})
	}
}

// TestPack_OneDocumentOpenAtATime: packing holds one document open at a
// time, not all of them at once (issue 14, point 7).
func TestPack_OneDocumentOpenAtATime(t *testing.T) {
	var mu sync.Mutex
	open, most := 0, 0
	files := make([]File, 200)
	for i := range files {
		files[i] = File{Name: fmt.Sprintf("v%d.pdf", i), MimeType: "application/pdf", Size: 3,
			Open: func() (io.ReadCloser, error) {
				mu.Lock()
				defer mu.Unlock()
				open++
				most = max(most, open)
				return closeFunc{Reader: strings.NewReader("pdf"), close: func() { mu.Lock(); open--; mu.Unlock() }}, nil
			}}
	}
	var pkg bytes.Buffer
	err := packerOf(t, senderOrg).Pack(context.Background(), PackRequest{SenderOrg: senderOrg, ReceiverOrg: receiverOrg,
		Files: files, Recipient: testPKI(t).Orgs[receiverOrg].Cert}, &pkg)
	require.NoError(t, err)
	assert.Equal(t, 1, most, "documents open at once")
	assert.Zero(t, open, "every document closed")
}

type closeFunc struct {
	io.Reader
	close func()
}

func (c closeFunc) Close() error { c.close(); return nil }

package asic

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/efm-go/efm/packaging/cms"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPackEncryptDecryptOpen follows a DPO message through packaging and back: CAdES ASiC-E
// streamed into CMS (OAEP, AES-256-CBC) on disk, decrypted to a file, opened and verified.
func TestPackEncryptDecryptOpen(t *testing.T) {
	id := pki.Orgs[orgA]
	dir := t.TempDir()
	files, contents := testFiles(t)

	cmsPath := filepath.Join(dir, "pkg.cms")
	out, err := os.Create(cmsPath)
	require.NoError(t, err)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(WriteCAdES(pw, files, Signer{Cert: id.Cert, Key: id.Key}, CAdESOptions{})) }()
	_, err = cms.Encrypt(out, pr, id.Cert, cms.EncryptOptions{})
	require.NoError(t, err)
	require.NoError(t, out.Close())

	in, err := os.Open(cmsPath)
	require.NoError(t, err)
	defer in.Close()
	asicPath := filepath.Join(dir, "pkg.asice")
	plain, err := os.Create(asicPath)
	require.NoError(t, err)
	_, err = cms.Decrypt(plain, in, id.Key, cms.DecryptOptions{Cert: id.Cert, MaxSize: 10 << 20})
	require.NoError(t, err)
	require.NoError(t, plain.Close())

	c, closer, err := OpenFile(asicPath, ReadOptions{Roots: pki.Pool()})
	require.NoError(t, err)
	defer closer.Close()
	require.NotNil(t, c.Manifest)
	assert.Equal(t, orgA, c.Manifest.Sender.OrgNumber())
	rc, err := c.Entry("vedlegg 1.pdf").Open()
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	rc.Close()
	assert.Equal(t, contents["vedlegg 1.pdf"], got)
}

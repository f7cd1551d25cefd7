package asic

import (
	"archive/zip"
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// zipOf builds a container from named contents in order, mimetype first and stored.
func zipOf(t *testing.T, entries [][2]string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "mimetype", Method: zip.Store})
	require.NoError(t, err)
	w.Write([]byte(MimeType))
	for _, e := range entries {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e[0], Method: zip.Deflate})
		require.NoError(t, err)
		w.Write([]byte(e[1]))
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// TestOpen_Xmlsec1SignedXAdES: a signatures.xml signed by xmlsec1 --sign from an indented
// template, with the ns2/ns3 prefixes the reference's JAXB writes, verifies with our reader.
// xmlsec1 canonicalises independently, so this checks our C14N on whitespace and prefixes.
func TestOpen_Xmlsec1SignedXAdES(t *testing.T) {
	xmlsec1 := requireTool(t, "xmlsec1", "xmlsec1")
	id := pki.Orgs[orgA]
	dir := t.TempDir()
	files := [][2]string{
		{"manifest.xml", `<manifest xmlns="http://begrep.difi.no/sdp/schema_v10"/>`},
		{"brev.pdf", "%PDF-1.7 brev"},
	}
	var refs, formats strings.Builder
	for i, f := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f[0]), []byte(f[1]), 0o644))
		fmt.Fprintf(&refs, `
      <ns2:Reference Id="ID_%d" URI="%s">
        <ns2:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
        <ns2:DigestValue/>
      </ns2:Reference>`, i, f[0])
		fmt.Fprintf(&formats, `
            <ns3:DataObjectFormat ObjectReference="#ID_%d">
              <ns3:MimeType>application/octet-stream</ns3:MimeType>
            </ns3:DataObjectFormat>`, i)
	}
	certDigest := sha1.Sum(id.Cert.Raw)
	template := `<?xml version="1.0" encoding="UTF-8"?>
<XAdESSignatures xmlns="http://uri.etsi.org/02918/v1.2.1#" xmlns:ns2="http://www.w3.org/2000/09/xmldsig#" xmlns:ns3="http://uri.etsi.org/01903/v1.3.2#">
  <ns2:Signature Id="Signature">
    <ns2:SignedInfo>
      <ns2:CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>
      <ns2:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>` + refs.String() + `
      <ns2:Reference Type="http://uri.etsi.org/01903#SignedProperties" URI="#SignedProperties">
        <ns2:Transforms>
          <ns2:Transform Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>
        </ns2:Transforms>
        <ns2:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
        <ns2:DigestValue/>
      </ns2:Reference>
    </ns2:SignedInfo>
    <ns2:SignatureValue/>
    <ns2:KeyInfo>
      <ns2:X509Data/>
    </ns2:KeyInfo>
    <ns2:Object>
      <ns3:QualifyingProperties Target="#Signature">
        <ns3:SignedProperties Id="SignedProperties">
          <ns3:SignedSignatureProperties>
            <ns3:SigningTime>2026-11-20T12:00:00Z</ns3:SigningTime>
            <ns3:SigningCertificate>
              <ns3:Cert>
                <ns3:CertDigest>
                  <ns2:DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"/>
                  <ns2:DigestValue>` + base64.StdEncoding.EncodeToString(certDigest[:]) + `</ns2:DigestValue>
                </ns3:CertDigest>
                <ns3:IssuerSerial>
                  <ns2:X509IssuerName>` + id.Cert.Issuer.String() + `</ns2:X509IssuerName>
                  <ns2:X509SerialNumber>` + id.Cert.SerialNumber.String() + `</ns2:X509SerialNumber>
                </ns3:IssuerSerial>
              </ns3:Cert>
            </ns3:SigningCertificate>
          </ns3:SignedSignatureProperties>
          <ns3:SignedDataObjectProperties>` + formats.String() + `
          </ns3:SignedDataObjectProperties>
        </ns3:SignedProperties>
      </ns3:QualifyingProperties>
    </ns2:Object>
  </ns2:Signature>
</XAdESSignatures>
`
	tmpl := filepath.Join(dir, "template.xml")
	require.NoError(t, os.WriteFile(tmpl, []byte(template), 0o644))
	cmd := exec.Command(xmlsec1, "--sign", "--privkey-pem", id.KeyPEMPath+","+id.CertPEMPath,
		"--id-attr:Id", nsXAdES+":SignedProperties", "--output", "signed.xml", tmpl)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "xmlsec1: %s", out)
	signed, err := os.ReadFile(filepath.Join(dir, "signed.xml"))
	require.NoError(t, err)

	entries := append(files, [2]string{SignaturesName, string(signed)})
	data := zipOf(t, entries)
	c, err := open(data)
	require.NoError(t, err)
	assert.Equal(t, XAdES, c.Kind)
	assert.True(t, c.Signer.Equal(id.Cert))
	assert.Len(t, c.Entries, 2)

	// The same signature over a changed document is refused.
	entries[1][1] = "%PDF-1.7 brev!"
	_, err = open(zipOf(t, entries))
	assert.ErrorIs(t, err, ErrDigestMismatch)
}

// TestOpen_OpenSSLSignedCAdES: a container whose ASiCManifest is signed by openssl cms
// -sign (SHA-256, rsaEncryption, attributes as OpenSSL writes them) opens.
func TestOpen_OpenSSLSignedCAdES(t *testing.T) {
	openssl := requireTool(t, "openssl", "openssl")
	id := pki.Orgs[orgA]
	dir := t.TempDir()
	doc := "<arkivmelding/>"
	sum := sha256.Sum256([]byte(doc))
	manifest := asicManifest("META-INF/signature.p7s", []entryDigest{{name: "arkivmelding.xml", mime: "application/xml", sha256: sum[:]}})
	mpath := filepath.Join(dir, "ASiCManifest.xml")
	require.NoError(t, os.WriteFile(mpath, manifest, 0o644))
	out, err := exec.Command(openssl, "cms", "-sign", "-binary", "-outform", "DER", "-in", mpath, "-signer", id.CertPEMPath,
		"-inkey", id.KeyPEMPath, "-out", filepath.Join(dir, "sig.p7s")).CombinedOutput()
	require.NoError(t, err, "openssl: %s", out)
	sig, err := os.ReadFile(filepath.Join(dir, "sig.p7s"))
	require.NoError(t, err)
	c, err := open(zipOf(t, [][2]string{
		{"arkivmelding.xml", doc},
		{"META-INF/ASiCManifest.xml", string(manifest)},
		{"META-INF/signature.p7s", string(sig)},
	}))
	require.NoError(t, err)
	assert.Equal(t, CAdES, c.Kind)
	assert.True(t, c.Signer.Equal(id.Cert))
}

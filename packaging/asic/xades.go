package asic

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// The XAdES signature of channels.md §1.9.3 (DPI). The writer emits the document already in
// canonical form (no whitespace between elements, attributes sorted, explicit end tags), so
// that the canonical SignedInfo and SignedProperties are the written bytes plus the
// namespace declarations they inherit from the root; c14n.go recomputes them on reading.

const (
	algC14N       = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
	algRSASHA256  = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	algRSASHA1    = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
	algSHA256     = "http://www.w3.org/2001/04/xmlenc#sha256"
	algSHA1       = "http://www.w3.org/2000/09/xmldsig#sha1"
	algSHA512     = "http://www.w3.org/2001/04/xmlenc#sha512"
	typeSignedPro = "http://uri.etsi.org/01903#SignedProperties"

	// SignaturesName is the XAdES signature entry of a DPI container.
	SignaturesName = "META-INF/signatures.xml"
)

// rootNS are the declarations on XAdESSignatures; canonical subtrees inherit all three.
const rootNS = ` xmlns="http://uri.etsi.org/02918/v1.2.1#" xmlns:ds="` + nsDS + `" xmlns:xades="` + nsXAdES + `"`

// XAdESOptions steer WriteXAdES.
type XAdESOptions struct {
	// Time is the signing time and the entries' modification time; zero means now.
	Time time.Time
}

// WriteXAdES packs files, in the order given, into an ASiC-E container with an XAdES
// META-INF/signatures.xml (DPI) and writes it to w. Put the DPI manifest.xml first, then the
// primary document, attachments and the metadata document.
func WriteXAdES(w io.Writer, files []File, signer Signer, opts XAdESOptions) error {
	when := opts.Time
	if when.IsZero() {
		when = time.Now()
	}
	z, err := newZipWriter(w, when)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := z.addData(f); err != nil {
			return err
		}
	}
	doc, err := xadesDocument(z.digests, signer, when)
	if err != nil {
		return err
	}
	if err := z.addStored(SignaturesName, doc); err != nil {
		return err
	}
	if err := z.addStored("META-INF/manifest.xml", oasisManifest(z.digests)); err != nil {
		return err
	}
	if err := z.zw.Close(); err != nil {
		return fmt.Errorf("finishing container: %w", err)
	}
	return nil
}

// refURI is a file name as a Reference URI: form-URL-encoded, as the reference writes it.
func refURI(name string) string { return url.QueryEscape(name) }

func xadesDocument(entries []entryDigest, signer Signer, when time.Time) ([]byte, error) {
	var sp strings.Builder
	sp.WriteString(`<xades:SignedProperties Id="SignedProperties"><xades:SignedSignatureProperties>`)
	sp.WriteString(`<xades:SigningTime>` + when.UTC().Format("2006-01-02T15:04:05Z") + `</xades:SigningTime>`)
	certDigest := sha1.Sum(signer.Cert.Raw)
	sp.WriteString(`<xades:SigningCertificate><xades:Cert><xades:CertDigest>`)
	sp.WriteString(`<ds:DigestMethod Algorithm="` + algSHA1 + `"></ds:DigestMethod>`)
	sp.WriteString(`<ds:DigestValue>` + b64(certDigest[:]) + `</ds:DigestValue></xades:CertDigest>`)
	sp.WriteString(`<xades:IssuerSerial><ds:X509IssuerName>` + xmlText(signer.Cert.Issuer.String()) + `</ds:X509IssuerName>`)
	sp.WriteString(`<ds:X509SerialNumber>` + signer.Cert.SerialNumber.String() + `</ds:X509SerialNumber></xades:IssuerSerial>`)
	sp.WriteString(`</xades:Cert></xades:SigningCertificate></xades:SignedSignatureProperties><xades:SignedDataObjectProperties>`)
	for i, e := range entries {
		fmt.Fprintf(&sp, `<xades:DataObjectFormat ObjectReference="#ID_%d"><xades:MimeType>%s</xades:MimeType></xades:DataObjectFormat>`, i, xmlText(e.mime))
	}
	sp.WriteString(`</xades:SignedDataObjectProperties></xades:SignedProperties>`)
	signedProps := sp.String()
	spDigest := sha256.Sum256([]byte(withRootNS(signedProps, "<xades:SignedProperties")))

	var si strings.Builder
	si.WriteString(`<ds:SignedInfo><ds:CanonicalizationMethod Algorithm="` + algC14N + `"></ds:CanonicalizationMethod>`)
	si.WriteString(`<ds:SignatureMethod Algorithm="` + algRSASHA256 + `"></ds:SignatureMethod>`)
	for i, e := range entries {
		fmt.Fprintf(&si, `<ds:Reference Id="ID_%d" URI="%s">`, i, xmlAttr(refURI(e.name)))
		si.WriteString(`<ds:DigestMethod Algorithm="` + algSHA256 + `"></ds:DigestMethod>`)
		si.WriteString(`<ds:DigestValue>` + b64(e.sha256) + `</ds:DigestValue></ds:Reference>`)
	}
	si.WriteString(`<ds:Reference Type="` + typeSignedPro + `" URI="#SignedProperties"><ds:Transforms>`)
	si.WriteString(`<ds:Transform Algorithm="` + algC14N + `"></ds:Transform></ds:Transforms>`)
	si.WriteString(`<ds:DigestMethod Algorithm="` + algSHA256 + `"></ds:DigestMethod>`)
	si.WriteString(`<ds:DigestValue>` + b64(spDigest[:]) + `</ds:DigestValue></ds:Reference></ds:SignedInfo>`)
	signedInfo := si.String()

	siDigest := sha256.Sum256([]byte(withRootNS(signedInfo, "<ds:SignedInfo")))
	sig, err := signer.Key.Sign(nil, siDigest[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing signatures.xml: %w", err)
	}

	var d strings.Builder
	d.WriteString(`<?xml version="1.0" encoding="UTF-8" standalone="no"?>`)
	d.WriteString(`<XAdESSignatures` + rootNS + `><ds:Signature Id="Signature">`)
	d.WriteString(signedInfo)
	d.WriteString(`<ds:SignatureValue>` + b64(sig) + `</ds:SignatureValue>`)
	d.WriteString(`<ds:KeyInfo><ds:X509Data>`)
	for _, c := range append([]*x509.Certificate{signer.Cert}, signer.Chain...) {
		d.WriteString(`<ds:X509Certificate>` + b64(c.Raw) + `</ds:X509Certificate>`)
	}
	d.WriteString(`</ds:X509Data></ds:KeyInfo>`)
	d.WriteString(`<ds:Object><xades:QualifyingProperties Target="#Signature">` + signedProps + `</xades:QualifyingProperties></ds:Object>`)
	d.WriteString(`</ds:Signature></XAdESSignatures>`)
	return []byte(d.String()), nil
}

// withRootNS inserts the inherited namespace declarations after the start tag's name, which
// is where canonical form puts them (before the attributes).
func withRootNS(fragment, startTag string) string {
	return startTag + rootNS + fragment[len(startTag):]
}

// xadesResult is what verifying signatures.xml established.
type xadesResult struct {
	signer  *x509.Certificate
	certs   []*x509.Certificate
	digests map[string]signedDigest // entry name → digest
	when    time.Time
}

type signedDigest struct {
	hash  crypto.Hash
	value []byte
}

// verifyXAdES checks the signature value over the canonical SignedInfo, the
// SignedProperties digest and the signing-certificate digest. It returns the per-entry
// digests for the caller to check against the container, and the certificate to check
// against the trust anchors.
func verifyXAdES(doc []byte) (*xadesResult, error) {
	root, err := parseXML(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: signatures.xml: %v", ErrInvalidContainer, err)
	}
	if root.local != "XAdESSignatures" {
		return nil, fmt.Errorf("%w: signatures.xml root is %s", ErrInvalidContainer, root.local)
	}
	var sigs []*xnode
	for _, e := range root.elements() {
		if e.is(nsDS, "Signature") {
			sigs = append(sigs, e)
		}
	}
	if len(sigs) != 1 {
		return nil, fmt.Errorf("%w: %d signatures in signatures.xml, want 1", ErrInvalidContainer, len(sigs))
	}
	sig := sigs[0]
	si := sig.child(nsDS, "SignedInfo")
	sv := sig.child(nsDS, "SignatureValue")
	if si == nil || sv == nil {
		return nil, fmt.Errorf("%w: signature lacks SignedInfo or SignatureValue", ErrInvalidContainer)
	}
	if cm := si.child(nsDS, "CanonicalizationMethod"); cm == nil || attrOf(cm, "Algorithm") != algC14N {
		return nil, fmt.Errorf("%w: canonicalization must be %s", ErrSignature, algC14N)
	}
	var sigHash crypto.Hash
	switch sm := si.child(nsDS, "SignatureMethod"); {
	case sm != nil && attrOf(sm, "Algorithm") == algRSASHA256:
		sigHash = crypto.SHA256
	case sm != nil && attrOf(sm, "Algorithm") == algRSASHA1:
		sigHash = crypto.SHA1
	default:
		return nil, fmt.Errorf("%w: unsupported signature method", ErrSignature)
	}

	res := &xadesResult{digests: map[string]signedDigest{}}
	if kd := sig.child(nsDS, "KeyInfo"); kd != nil {
		if xd := kd.child(nsDS, "X509Data"); xd != nil {
			for _, c := range xd.elements() {
				if !c.is(nsDS, "X509Certificate") {
					continue
				}
				der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c.text()), ""))
				if err != nil {
					return nil, fmt.Errorf("%w: X509Certificate is not base64", ErrInvalidContainer)
				}
				cert, err := x509.ParseCertificate(der)
				if err != nil {
					return nil, fmt.Errorf("%w: X509Certificate: %v", ErrInvalidContainer, err)
				}
				res.certs = append(res.certs, cert)
			}
		}
	}
	if len(res.certs) == 0 {
		return nil, fmt.Errorf("%w: no signer certificate in KeyInfo", ErrSignature)
	}
	sigValue, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(sv.text()), ""))
	if err != nil {
		return nil, fmt.Errorf("%w: SignatureValue is not base64", ErrInvalidContainer)
	}
	h := sigHash.New()
	h.Write(canonical(si))
	sum := h.Sum(nil)
	for _, c := range res.certs {
		if pub, ok := c.PublicKey.(*rsa.PublicKey); ok && rsa.VerifyPKCS1v15(pub, sigHash, sum, sigValue) == nil {
			res.signer = c
			break
		}
	}
	if res.signer == nil {
		return nil, fmt.Errorf("%w: SignatureValue does not verify with the included certificates", ErrSignature)
	}

	// A repeated Id would let a reference resolve to a different element than a reader
	// looking at the document sees (signature wrapping), so it is refused outright.
	ids := map[string]*xnode{}
	dupID := ""
	sig.walk(func(n *xnode) {
		if id, ok := n.attr("Id"); ok {
			if ids[id] != nil {
				dupID = id
			}
			ids[id] = n
		}
	})
	if dupID != "" {
		return nil, fmt.Errorf("%w: Id %q appears twice in signatures.xml", ErrInvalidContainer, dupID)
	}
	var sawProps bool
	for _, ref := range si.elements() {
		if !ref.is(nsDS, "Reference") {
			continue
		}
		uri := attrOf(ref, "URI")
		d, err := referenceDigest(ref)
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(uri, "#") {
			target := ids[uri[1:]]
			if target == nil || !target.is(nsXAdES, "SignedProperties") {
				return nil, fmt.Errorf("%w: reference %s does not name SignedProperties", ErrSignature, uri)
			}
			if tr := ref.child(nsDS, "Transforms"); tr != nil {
				for _, t := range tr.elements() {
					if attrOf(t, "Algorithm") != algC14N {
						return nil, fmt.Errorf("%w: unsupported transform", ErrSignature)
					}
				}
			}
			hh := d.hash.New()
			hh.Write(canonical(target))
			if !bytes.Equal(hh.Sum(nil), d.value) {
				return nil, fmt.Errorf("%w: %w: SignedProperties", ErrSignature, ErrDigestMismatch)
			}
			if err := checkSigningCertificate(target, res.signer); err != nil {
				return nil, err
			}
			if st := target.child(nsXAdES, "SignedSignatureProperties"); st != nil {
				if t := st.child(nsXAdES, "SigningTime"); t != nil {
					res.when, _ = time.Parse(time.RFC3339, strings.TrimSpace(t.text()))
				}
			}
			sawProps = true
			continue
		}
		if ref.child(nsDS, "Transforms") != nil {
			return nil, fmt.Errorf("%w: transforms on a file reference", ErrSignature)
		}
		name, err := url.QueryUnescape(uri)
		if err != nil {
			return nil, fmt.Errorf("%w: reference URI %q", ErrInvalidContainer, uri)
		}
		if _, dup := res.digests[name]; dup {
			return nil, fmt.Errorf("%w: %q referenced twice", ErrInvalidContainer, name)
		}
		res.digests[name] = d
	}
	if !sawProps {
		return nil, fmt.Errorf("%w: no signed SignedProperties (not XAdES)", ErrSignature)
	}
	return res, nil
}

func attrOf(n *xnode, name string) string {
	v, _ := n.attr(name)
	return v
}

func referenceDigest(ref *xnode) (signedDigest, error) {
	dm := ref.child(nsDS, "DigestMethod")
	dv := ref.child(nsDS, "DigestValue")
	if dm == nil || dv == nil {
		return signedDigest{}, fmt.Errorf("%w: reference lacks DigestMethod or DigestValue", ErrSignature)
	}
	var h crypto.Hash
	switch attrOf(dm, "Algorithm") {
	case algSHA256:
		h = crypto.SHA256
	case algSHA512:
		h = crypto.SHA512
	case algSHA1:
		h = crypto.SHA1
	default:
		return signedDigest{}, fmt.Errorf("%w: digest method %q", ErrSignature, attrOf(dm, "Algorithm"))
	}
	v, err := base64.StdEncoding.DecodeString(strings.TrimSpace(dv.text()))
	if err != nil || len(v) != h.Size() {
		return signedDigest{}, fmt.Errorf("%w: DigestValue", ErrInvalidContainer)
	}
	return signedDigest{hash: h, value: v}, nil
}

// checkSigningCertificate enforces XAdES's binding of the signature to one certificate, so
// a signature cannot be re-attributed to another certificate with the same key.
func checkSigningCertificate(props *xnode, signer *x509.Certificate) error {
	ssp := props.child(nsXAdES, "SignedSignatureProperties")
	if ssp == nil {
		return fmt.Errorf("%w: no SignedSignatureProperties", ErrSignature)
	}
	sc := ssp.child(nsXAdES, "SigningCertificate")
	if sc == nil {
		return fmt.Errorf("%w: no SigningCertificate", ErrSignature)
	}
	for _, c := range sc.elements() {
		cd := c.child(nsXAdES, "CertDigest")
		if cd == nil {
			continue
		}
		d, err := referenceDigest(cd)
		if err != nil {
			return err
		}
		h := d.hash.New()
		h.Write(signer.Raw)
		if bytes.Equal(h.Sum(nil), d.value) {
			return nil
		}
	}
	return fmt.Errorf("%w: SigningCertificate does not name the signer's certificate", ErrSignature)
}

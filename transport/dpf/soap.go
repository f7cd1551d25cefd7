package dpf

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/efm-go/efm/transport"
)

// NS is the SvarUt V9 namespace; child elements are unqualified.
const NS = "http://www.ks.no/svarut/servicesV9"

// SOAPPath is where SvarUt serves ForsendelsesServiceV9 below its root.
const SOAPPath = "/tjenester/forsendelseservice/ForsendelsesServiceV9"

// Credentials are one organisation's SvarUt Basic credentials.
type Credentials struct{ Username, Password string }

// SOAPConfig configures a SOAPClient (channels.md §5.1).
type SOAPConfig struct {
	// URL is difi.move.fiks.ut.ws.endpointUrl, else
	// difi.move.fiks.ut.endpointUrl + SOAPPath. Required.
	URL string
	// Accounts are the Basic credentials per sending organisation: the own
	// org's (difi.move.fiks.ut.username/password) and each paa-vegne-av
	// org's. Required: at least one.
	Accounts map[string]Credentials
	// HTTPClient; default http.DefaultClient.
	HTTPClient *http.Client
	// RequestTimeout bounds each call but the send. Default 30 s.
	RequestTimeout time.Duration
}

// SOAPClient is the SvarUt SOAP V9 client: SOAP 1.2, documents as MTOM/XOP
// attachments. Safe for concurrent use.
type SOAPClient struct{ cfg SOAPConfig }

// NewSOAP checks cfg and returns the client.
func NewSOAP(cfg SOAPConfig) (*SOAPClient, error) {
	var errs []error
	if u, err := url.Parse(cfg.URL); cfg.URL == "" || err != nil || u.Host == "" {
		errs = append(errs, fmt.Errorf("difi.move.fiks.ut.endpointUrl %q: want an absolute URL such as https://svarut.ks.no", cfg.URL))
	}
	if len(cfg.Accounts) == 0 {
		errs = append(errs, errors.New("difi.move.fiks.ut.username and .password: want the SvarUt account's credentials"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	return &SOAPClient{cfg: cfg}, nil
}

// ErrNoAccount: no SvarUt credentials for the sending organisation.
var ErrNoAccount = errors.New("no svarut account for the sending organisation")

// Send is sendForsendelseMedId with f.ID (or the external reference when
// f.ID is empty) as forsendelsesid. With retry set it first looks for a
// shipment with f's external reference, since SvarUt refuses a second
// shipment with the same id as a duplicate.
func (c *SOAPClient) Send(ctx context.Context, sender string, f Forsendelse, retry bool) (string, error) {
	if id, err := earlierShipment(ctx, c.IDsByEksternRef, sender, f, retry); id != "" || err != nil {
		return id, err
	}
	id := f.ID
	if id == "" {
		id = f.EksternReferanse
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() { pw.CloseWithError(writeMTOM(mw, id, f)) }()
	defer pr.Close()
	ctype := fmt.Sprintf(`multipart/related; type="application/xop+xml"; boundary=%q; start="<root.message@cxf.apache.org>"; start-info="application/soap+xml"`, mw.Boundary())
	var out struct {
		Return string `xml:"return"`
	}
	if err := c.call(ctx, sender, pr, ctype, &out, "sending shipment over svarut soap", false); err != nil {
		return "", err
	}
	if out.Return == "" {
		return "", errors.New("sending shipment over svarut soap: no shipment id in the answer")
	}
	return out.Return, nil
}

// Statuses is retrieveForsendelseStatuser.
func (c *SOAPClient) Statuses(ctx context.Context, sender string, ids []string) ([]Status, error) {
	var b strings.Builder
	for _, id := range ids {
		b.WriteString("<forsendelseider>" + esc(id) + "</forsendelseider>")
	}
	var out struct {
		Return []struct {
			Status string `xml:"forsendelseStatus"`
			ID     string `xml:"forsendelsesid"`
			At     string `xml:"sisteStatusEndring"`
		} `xml:"return"`
	}
	if err := c.simple(ctx, sender, "retrieveForsendelseStatuser", b.String(), &out, "polling shipment statuses"); err != nil {
		return nil, err
	}
	sts := make([]Status, 0, len(out.Return))
	for _, r := range out.Return {
		sts = append(sts, Status{ID: r.ID, Status: r.Status, At: r.At})
	}
	return sts, nil
}

// IDsByEksternRef is retrieveForsendelseIdByEksternRef.
func (c *SOAPClient) IDsByEksternRef(ctx context.Context, sender, ref string) ([]string, error) {
	var out struct {
		Return []string `xml:"return"`
	}
	err := c.simple(ctx, sender, "retrieveForsendelseIdByEksternRef", "<eksternRef>"+esc(ref)+"</eksternRef>", &out,
		"looking up shipment by external reference")
	return out.Return, err
}

// ForsendelseTyper is retreiveForsendelseTyper (KS's spelling).
func (c *SOAPClient) ForsendelseTyper(ctx context.Context, sender string) ([]string, error) {
	var out struct {
		Return []string `xml:"return"`
	}
	err := c.simple(ctx, sender, "retreiveForsendelseTyper", "", &out, "listing shipment types")
	return out.Return, err
}

// simple sends an operation without attachments as plain SOAP 1.2.
func (c *SOAPClient) simple(ctx context.Context, sender, op, inner string, out any, what string) error {
	body := envelope(op, inner)
	return c.call(ctx, sender, strings.NewReader(body), `application/soap+xml; charset=utf-8`, out, what, true)
}

func envelope(op, inner string) string {
	return `<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>` +
		`<ks:` + op + ` xmlns:ks="` + NS + `" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">` + inner + `</ks:` + op + `>` +
		`</soap:Body></soap:Envelope>`
}

func (c *SOAPClient) call(ctx context.Context, sender string, body io.Reader, ctype string, out any, what string, bounded bool) error {
	cred, ok := c.cfg.Accounts[sender]
	if !ok {
		return fmt.Errorf("%s: %w %s", what, ErrNoAccount, sender)
	}
	if bounded {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.RequestTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL, body)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	req.SetBasicAuth(cred.Username, cred.Password)
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Accept", "application/soap+xml, multipart/related")
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return &transport.StatusError{Op: what, StatusCode: resp.StatusCode}
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s: reading svarut's answer: %w", what, err)
	}
	err = ParseSOAPResponse(resp.Header.Get("Content-Type"), raw, out)
	if errors.Is(err, errNotSOAP) && resp.StatusCode != http.StatusOK {
		return &transport.StatusError{Op: what, StatusCode: resp.StatusCode}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Fault is a SOAP fault from SvarUt. Final faults (the texts of channels.md
// §1.3) are errors.Is(ErrRejected); every other fault is retried.
type Fault struct {
	Code, Reason string // Reason has eleven-digit runs masked
}

func (f *Fault) Error() string { return "svarut soap fault " + f.Code + ": " + f.Reason }

// finalFaults are the fault texts the reference treats as final (§1.3).
var finalFaults = []string{"Duplikat", "Forsendelse med samme mottaker", "Ugyldig innhold", "Feil under lesing av",
	"Kan ikke lagre tomt dokument"}

// Is makes final faults match transport.ErrRejected.
func (f *Fault) Is(target error) bool {
	if target != transport.ErrRejected {
		return false
	}
	for _, s := range finalFaults {
		if strings.Contains(f.Reason, s) {
			return true
		}
	}
	return false
}

var errNotSOAP = errors.New("answer is not a soap envelope")

var elevenDigits = regexp.MustCompile(`\d{11}`)

// ParseSOAPResponse reads a SOAP 1.2 answer, plain or as the root part of
// an MTOM multipart/related, and decodes the operation's response element
// into out. A fault comes back as *Fault; anything else that is not an
// envelope wraps transport.ErrMalformed.
func ParseSOAPResponse(contentType string, body []byte, out any) error {
	mt, params, _ := mime.ParseMediaType(contentType)
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		p, err := mr.NextPart()
		if err != nil {
			return fmt.Errorf("%w: %w: multipart answer: %w", transport.ErrMalformed, errNotSOAP, err)
		}
		if body, err = io.ReadAll(io.LimitReader(p, 16<<20)); err != nil {
			return fmt.Errorf("%w: %w: multipart answer: %w", transport.ErrMalformed, errNotSOAP, err)
		}
	}
	var env struct {
		XMLName xml.Name
		Body    struct {
			Fault *struct {
				Code   string `xml:"Code>Value"`
				Reason string `xml:"Reason>Text"`
			} `xml:"http://www.w3.org/2003/05/soap-envelope Fault"`
			Inner []struct {
				XMLName xml.Name
				Raw     []byte `xml:",innerxml"`
			} `xml:",any"`
		} `xml:"http://www.w3.org/2003/05/soap-envelope Body"`
	}
	if err := xml.Unmarshal(body, &env); err != nil || env.XMLName.Local != "Envelope" ||
		env.XMLName.Space != "http://www.w3.org/2003/05/soap-envelope" {
		return fmt.Errorf("%w: %w", transport.ErrMalformed, errNotSOAP)
	}
	if f := env.Body.Fault; f != nil {
		reason := elevenDigits.ReplaceAllString(strings.TrimSpace(f.Reason), "***********")
		if len(reason) > 500 {
			reason = reason[:500]
		}
		return &Fault{Code: strings.TrimSpace(f.Code), Reason: reason}
	}
	for _, in := range env.Body.Inner {
		if in.XMLName.Space == NS && strings.HasSuffix(in.XMLName.Local, "Response") {
			if err := xml.Unmarshal(append(append([]byte("<r>"), in.Raw...), "</r>"...), out); err != nil {
				return fmt.Errorf("%w: reading %s: %w", transport.ErrMalformed, in.XMLName.Local, err)
			}
			return nil
		}
	}
	return fmt.Errorf("%w: the envelope holds no response", transport.ErrMalformed)
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// writeMTOM writes sendForsendelseMedId as an XOP package: the envelope as
// the root part, each document as a binary part the envelope points at.
func writeMTOM(mw *multipart.Writer, id string, f Forsendelse) error {
	h := textproto.MIMEHeader{}
	h.Set("Content-Type", `application/xop+xml; charset=UTF-8; type="application/soap+xml"`)
	h.Set("Content-Transfer-Encoding", "binary")
	h.Set("Content-ID", "<root.message@cxf.apache.org>")
	w, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, envelope("sendForsendelseMedId", forsendelseXML(f)+"<forsendelsesid>"+esc(id)+"</forsendelsesid>")); err != nil {
		return err
	}
	for i, d := range f.Dokumenter {
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Transfer-Encoding", "binary")
		h.Set("Content-ID", "<"+contentID(i)+">")
		if err := writePart(mw, h, d); err != nil {
			return err
		}
	}
	return mw.Close()
}

func contentID(i int) string { return "dokument-" + strconv.Itoa(i+1) + "@svarut.ks.no" }

// forsendelseXML is V9's forsendelse, elements in the schema's order.
func forsendelseXML(f Forsendelse) string {
	var b strings.Builder
	el := func(name, v string) {
		if v != "" {
			b.WriteString("<" + name + ">" + esc(v) + "</" + name + ">")
		}
	}
	bl := func(name string, v bool) { b.WriteString("<" + name + ">" + strconv.FormatBool(v) + "</" + name + ">") }
	b.WriteString("<forsendelse>")
	b.WriteString("<avgivendeSystem></avgivendeSystem>")
	for i, d := range f.Dokumenter {
		b.WriteString("<dokumenter>")
		b.WriteString(`<data><xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:` + url.PathEscape(contentID(i)) + `"/></data>`)
		bl("ekskluderesFraPrint", d.SkalEkskluderesFraUtskrift)
		el("filnavn", d.Filnavn)
		el("mimetype", d.MimeType)
		bl("skalSigneres", false)
		b.WriteString("</dokumenter>")
	}
	el("eksternref", f.EksternReferanse)
	el("forsendelseType", f.Forsendelsestype)
	el("konteringskode", f.Konteringskode)
	bl("krevNiva4Innlogging", f.Sikkerhetsniva == "HOYESTE")
	bl("kryptert", f.Kryptert)
	bl("kunDigitalLevering", f.KunDigitalLevering)
	if m := f.MetadataFraAvleverendeSystem; m != nil {
		b.WriteString("<metadataFraAvleverendeSystem>")
		el("dokumentetsDato", m.DokumentetsDato)
		for _, e := range m.EkstraMetadata {
			b.WriteString("<ekstraMetadata>")
			el("key", e.Key)
			el("value", e.Value)
			b.WriteString("</ekstraMetadata>")
		}
		el("journalaar", strconv.Itoa(m.Journalaar))
		el("journaldato", m.Journaldato)
		el("journalpostnummer", strconv.FormatInt(m.Journalpostnummer, 10))
		el("journalposttype", m.Journalposttype)
		el("journalsekvensnummer", strconv.FormatInt(m.Journalsekvensnummer, 10))
		el("journalstatus", m.Journalstatus)
		el("saksaar", strconv.Itoa(m.Saksaar))
		el("saksbehandler", m.Saksbehandler)
		el("sakssekvensnummer", strconv.FormatInt(m.Sakssekvensnummer, 10))
		el("tittel", m.Tittel)
		b.WriteString("</metadataFraAvleverendeSystem>")
	}
	b.WriteString("<mottaker>")
	b.WriteString(`<digitalAdresse xsi:type="ks:organisasjonDigitalAdresse">`)
	el("orgnr", f.Mottaker.DigitalID)
	b.WriteString("</digitalAdresse>")
	postAdresse(&b, f.Mottaker.Navn, f.Mottaker.Adresse)
	b.WriteString("</mottaker>")
	tosidig := f.Utskriftskonfigurasjon != nil && f.Utskriftskonfigurasjon.Tosidig
	b.WriteString("<printkonfigurasjon><brevtype>BPOST</brevtype><fargePrint>false</fargePrint><tosidig>" +
		strconv.FormatBool(tosidig) + "</tosidig></printkonfigurasjon>")
	b.WriteString(`<signaturtype xsi:nil="true"/><signeringUtloper xsi:nil="true"/>`)
	el("svarPaForsendelse", f.SvarPaForsendelseID)
	bl("svarPaForsendelseLink", false)
	if s := f.SvarSendesTil; s != nil {
		b.WriteString("<svarSendesTil>")
		if s.Type == "ORGANISASJON" {
			b.WriteString(`<digitalAdresse xsi:type="ks:organisasjonDigitalAdresse">`)
			el("orgnr", s.DigitalID.Reveal())
			b.WriteString("</digitalAdresse>")
		}
		a := s.Adresse
		postAdresse(&b, s.Navn, &a)
		b.WriteString("</svarSendesTil>")
	}
	el("tittel", f.Tittel)
	b.WriteString("</forsendelse>")
	return b.String()
}

func postAdresse(b *strings.Builder, navn string, a *Adresse) {
	el := func(name, v string) {
		if v != "" {
			b.WriteString("<" + name + ">" + esc(v) + "</" + name + ">")
		}
	}
	b.WriteString("<postAdresse>")
	if a != nil {
		el("adresse1", a.Adresselinje1)
		el("adresse2", a.Adresselinje2)
		el("adresse3", a.Adresselinje3)
		land := "Norge"
		if a.Landkode != "" && a.Landkode != "NO" {
			land = a.Landkode
		}
		el("land", land)
	}
	el("navn", navn)
	if a != nil {
		el("postnr", a.Postnummer)
		el("poststed", a.Poststed)
	}
	b.WriteString("</postAdresse>")
}

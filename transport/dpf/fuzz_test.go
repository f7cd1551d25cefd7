package dpf_test

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/dpf"
)

// FuzzParseShipments: any hentNyeForsendelser answer either fails as
// malformed or gives shipments that can be fetched and acknowledged, and a
// shipment never prints the sender's person number.
func FuzzParseShipments(f *testing.F) {
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"id":"f11f5cba-68ad-422f-ad2c-922cd6060f46","tittel":"t","mottaker":{"navn":"n","orgnr":"910079018"},` +
		`"svarSendesTil":{"navn":"Ola","fnr":"05050910077","orgnr":null},"niva":"4","status":"Klar for mottak",` +
		`"filmetadata":[{"filnavn":"a.pdf","mimetype":"application/pdf","sha256hash":"00","size":1}],` +
		`"metadataFraAvleverendeSystem":{"saksaar":2026,"journaldato":1694781172651},"downloadUrl":"https://svarut.ks.no/x"}]`))
	f.Add([]byte(`[{"id":"../x","downloadUrl":"u"},{"id":null}]`))
	f.Add([]byte(`{"id":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		list, err := dpf.ParseShipments(b)
		if err != nil {
			return
		}
		for _, sh := range list {
			if sh.ID == "" || sh.DownloadURL == "" || strings.ContainsAny(sh.ID, "/?#%") {
				t.Fatalf("unusable shipment kept: %q %q", sh.ID, sh.DownloadURL)
			}
			if st := sh.SvarSendesTil; st != nil && len(st.Fnr) == 11 {
				if out := fmt.Sprintf("%v %+v %s", sh, sh, st.Fnr); strings.Contains(out, st.Fnr.Reveal()) {
					t.Fatalf("person number printed: %s", out)
				}
			}
		}
	})
}

// FuzzParseSOAPResponse: any answer is a response, a fault or malformed;
// a fault never carries an eleven-digit run (a person number SvarUt might
// echo), and a multipart answer is read like a plain one.
func FuzzParseSOAPResponse(f *testing.F) {
	f.Add("application/soap+xml", []byte(`<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>`+
		`<ns2:sendForsendelseMedIdResponse xmlns:ns2="http://www.ks.no/svarut/servicesV9"><return>id</return>`+
		`</ns2:sendForsendelseMedIdResponse></soap:Body></soap:Envelope>`))
	f.Add("application/soap+xml", []byte(`<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><soap:Fault>`+
		`<soap:Code><soap:Value>soap:Sender</soap:Value></soap:Code><soap:Reason><soap:Text>Duplikat 05050910077</soap:Text>`+
		`</soap:Reason></soap:Fault></soap:Body></soap:Envelope>`))
	f.Add(`multipart/related; type="application/xop+xml"; boundary="b"`, []byte("--b\r\nContent-Type: application/xop+xml\r\n\r\n"+
		`<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>`+
		`<ns2:retrieveForsendelseStatuserResponse xmlns:ns2="http://www.ks.no/svarut/servicesV9"><return><forsendelseStatus>LEST`+
		`</forsendelseStatus></return></ns2:retrieveForsendelseStatuserResponse></soap:Body></soap:Envelope>`+"\r\n--b--\r\n"))
	f.Add("text/html", []byte("<html>502</html>"))
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		var out struct {
			Return []string `xml:"return"`
		}
		err := dpf.ParseSOAPResponse(ctype, body, &out)
		var fault *dpf.Fault
		switch {
		case err == nil:
		case errors.As(err, &fault):
			if regexp.MustCompile(`\d{11}`).MatchString(fault.Error()) {
				t.Fatalf("fault keeps an eleven-digit run: %q", fault.Error())
			}
		case !errors.Is(err, transport.ErrMalformed):
			t.Fatalf("neither response, fault nor malformed: %v", err)
		}
	})
}

package dpf_test

import (
	"fmt"
	"strings"
	"testing"

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

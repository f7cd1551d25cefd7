package e2e_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// municipality is on SvarUt at levels 3 and 4 (addressing.md §10): DPF.
const municipality = "910079018"

// TestDPF_SvarUtToSvarInn: one daemon sends an archive message to a
// municipality over SvarUt REST; SENDT and LEVERT come at once; a second
// daemon, the municipality's, receives it from SvarInn as an arkivmelding in
// the stored form of DPO, with the document byte for byte; its
// acknowledgement makes the shipment LEST for the sender, who then gets a
// generated arkivmelding_kvittering.
func TestDPF_SvarUtToSvarInn(t *testing.T) {
	simCall(t, "ks-fiks", "DELETE", "/_sim/svarinn/"+municipality, nil, nil) // other tests' shipments
	a := startDaemon(t, ownOrg, t.TempDir(), nil)
	b := startDaemon(t, municipality, t.TempDir(), nil)
	sbd, files, id := arkivmelding(municipality, 0)
	a.mustSend(sbd, files)
	got := a.waitStatus(id, "LEVERT", 30*time.Second)
	progress(t, got, "OPPRETTET", "SENDT", "LEVERT")

	var peeked []byte
	require.Eventually(t, func() bool {
		var code int
		code, peeked = b.do("GET", "/api/messages/in/peek")
		return code == http.StatusOK
	}, 30*time.Second, 100*time.Millisecond, "nothing arrived at the municipality's integration point")
	var head struct {
		Header struct {
			Sender []struct {
				Identifier struct{ Value string } `json:"identifier"`
			} `json:"sender"`
			DocumentIdentification struct {
				InstanceIdentifier string `json:"instanceIdentifier"`
				Type               string `json:"type"`
			} `json:"documentIdentification"`
		} `json:"standardBusinessDocumentHeader"`
	}
	require.NoError(t, json.Unmarshal(peeked, &head))
	in := head.Header.DocumentIdentification.InstanceIdentifier
	assert.Equal(t, "arkivmelding", head.Header.DocumentIdentification.Type)
	require.NotEmpty(t, head.Header.Sender)
	assert.Equal(t, "0192:"+ownOrg, head.Header.Sender[0].Identifier.Value)

	code, pkg := b.do("GET", "/api/messages/in/pop/"+in)
	require.Equal(t, http.StatusOK, code)
	zr, err := zip.NewReader(bytes.NewReader(pkg), int64(len(pkg)))
	require.NoError(t, err)
	f, err := zr.Open("vedtak.pdf")
	require.NoError(t, err)
	doc, err := io.ReadAll(f)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(files["vedtak.pdf"], doc), "the document differs after SvarUt and SvarInn")
	am, err := zr.Open("arkivmelding.xml")
	require.NoError(t, err, "an arkivmelding.xml is built from the shipment's metadata")
	amb, _ := io.ReadAll(am)
	assert.Contains(t, string(amb), "<referanseDokumentfil>vedtak.pdf</referanseDokumentfil>")
	code, _ = b.do("DELETE", "/api/messages/in/"+in)
	require.Equal(t, http.StatusOK, code)

	got = a.waitStatus(id, "LEST", 30*time.Second)
	progress(t, got, "OPPRETTET", "SENDT", "LEVERT", "LEST")

	// At LEST the sender gets the arkivmelding_kvittering it would have got
	// over DPO (generate-arkivmelding-receipts, on by default).
	var receipt []byte
	require.Eventually(t, func() bool {
		var code int
		code, receipt = a.do("GET", "/api/messages/in/peek")
		return code == http.StatusOK
	}, 30*time.Second, 100*time.Millisecond, "no arkivmelding_kvittering at the sender")
	assert.Contains(t, string(receipt), `"arkivmelding_kvittering"`)
	assert.Contains(t, string(receipt), id)
}

// levelThree is on SvarUt at level 3 only; here it is the receiving daemon
// of the SvarInn tests, so their shipments meet no other test's.
const levelThree = "910080008"

// TestDPF_UnopenableShipmentDoesNotBlock: a shipment that does not decrypt
// is reported with mottakFeilet (permanent) and the good one behind it is
// received all the same.
func TestDPF_UnopenableShipmentDoesNotBlock(t *testing.T) {
	simCall(t, "ks-fiks", "DELETE", "/_sim/svarinn/"+levelThree, nil, nil)
	var bad, good struct{ ID string }
	simCall(t, "ks-fiks", "POST", "/_sim/svarinn/"+levelThree, map[string]any{"tittel": "ødelagt", "corrupt": true,
		"files": map[string][]byte{"brev.pdf": []byte("%PDF-1.4 x")}}, &bad)
	simCall(t, "ks-fiks", "POST", "/_sim/svarinn/"+levelThree, map[string]any{"tittel": "Søknad", "svarSendesTilFnr": "05050910077",
		"files": map[string][]byte{"soknad.pdf": []byte("%PDF-1.4 søknad")}}, &good)
	b := startDaemon(t, levelThree, t.TempDir(), nil)
	var peeked []byte
	require.Eventually(t, func() bool {
		var code int
		code, peeked = b.do("GET", "/api/messages/in/peek")
		return code == http.StatusOK
	}, 30*time.Second, 100*time.Millisecond, "the good shipment did not arrive")
	assert.Contains(t, string(peeked), good.ID)
	assert.Contains(t, string(peeked), "0192:999999999", "a citizen sender becomes the fallback sender org")
	assert.NotContains(t, string(peeked), "05050910077", "the citizen's number never reaches the sbd")
	var failed []struct {
		ID        string `json:"id"`
		Permanent bool   `json:"permanent"`
	}
	require.Eventually(t, func() bool {
		simCall(t, "ks-fiks", "GET", "/_sim/svarinn/"+levelThree+"/failed", nil, &failed)
		return len(failed) == 1
	}, 10*time.Second, 100*time.Millisecond)
	assert.Equal(t, bad.ID, failed[0].ID)
	assert.True(t, failed[0].Permanent)
}

// TestDPF_OutageThenDelivered: SvarUt answers 503 twice; the message is
// retried on the backoff schedule and reaches LEVERT once SvarUt is back,
// sent exactly once.
func TestDPF_OutageThenDelivered(t *testing.T) {
	a := startDaemon(t, ownOrg, t.TempDir(), nil)
	simCall(t, "ks-fiks", "POST", "/_sim/faults", map[string]any{"path": "/api/v3/kontoer/*/forsendelser/organisasjon",
		"status": 503, "times": 2}, nil)
	sbd, files, id := arkivmelding(municipality, 0)
	a.mustSend(sbd, files)
	got := a.waitStatus(id, "LEVERT", 45*time.Second)
	progress(t, got, "OPPRETTET", "SENDT", "LEVERT")
	assert.Equal(t, 1, svarUtDeliveries(t)[id])
}

// TestDPF_RefusedWhenNotConfigured: DPF on but its SvarUt account missing:
// the API refuses the message with 400 naming the key, nothing is stored.
func TestDPF_RefusedWhenNotConfigured(t *testing.T) {
	a := startDaemon(t, ownOrg, t.TempDir(), map[string]string{"difi.move.fiks.ut.rest.kontoid": ""})
	sbd, files, id := arkivmelding(municipality, 0)
	code, body := a.send(sbd, files)
	require.Equal(t, http.StatusBadRequest, code, body)
	assert.Contains(t, body, "difi.move.fiks.ut.rest.kontoid")
	assert.Contains(t, body, "ServiceNotEnabledException")
	assert.Empty(t, a.statuses(id), "a refused message is not stored")
}

// svarUtDeliveries counts SvarUt shipments per external reference (messageId).
func svarUtDeliveries(t testing.TB) map[string]int {
	var shipments []struct {
		EksternRef string `json:"eksternRef"`
	}
	simCall(t, "ks-fiks", "GET", "/_sim/shipments", nil, &shipments)
	out := map[string]int{}
	for _, s := range shipments {
		out[s.EksternRef]++
	}
	return out
}

// TestDPF_SOAPVariant: difi.move.fiks.ut.type=ws sends over SvarUt SOAP V9
// (MTOM, Basic auth) and reaches LEVERT the same way.
func TestDPF_SOAPVariant(t *testing.T) {
	a := startDaemon(t, ownOrg, t.TempDir(), map[string]string{"difi.move.fiks.ut.type": "ws"})
	sbd, files, id := arkivmelding(municipality, 0)
	a.mustSend(sbd, files)
	got := a.waitStatus(id, "LEVERT", 30*time.Second)
	progress(t, got, "OPPRETTET", "SENDT", "LEVERT")
	var shipments []struct {
		ID         string `json:"id"`
		EksternRef string `json:"eksternRef"`
		Via        string `json:"via"`
	}
	simCall(t, "ks-fiks", "GET", "/_sim/shipments", nil, &shipments)
	found := false
	for _, s := range shipments {
		if s.EksternRef == id {
			found = true
			assert.Equal(t, "soap", s.Via)
			assert.Equal(t, id, s.ID, "sendForsendelseMedId uses the messageId as the shipment id")
		}
	}
	assert.True(t, found, "svarut did not receive the message")
}

// TestDPF_FaultClasses: a refusal SvarUt will repeat is FEIL at once, with
// no SENDT and nothing at SvarUt; a shipment type SvarUt does not know is
// refused at the API (ForsendelseTypeNotFoundException).
func TestDPF_FaultClasses(t *testing.T) {
	ws := map[string]string{"difi.move.fiks.ut.type": "ws"}
	tests := []struct {
		name, faultPath string
		fault           map[string]any
		extra           map[string]string
		final           bool
	}{
		{"rest 400 is final", "/_sim/faults", map[string]any{"path": "/api/v3/kontoer/*/forsendelser/organisasjon", "status": 400, "times": 1}, nil, true},
		{"soap duplicate is final", "/_sim/soapfault", map[string]any{"reason": "Duplikat forsendelse", "times": 1}, ws, true},
		{"soap internal error is retried", "/_sim/soapfault", map[string]any{"reason": "Intern feil", "times": 1}, ws, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := startDaemon(t, ownOrg, t.TempDir(), tt.extra)
			simCall(t, "ks-fiks", "POST", tt.faultPath, tt.fault, nil)
			sbd, files, id := arkivmelding(municipality, 0)
			a.mustSend(sbd, files)
			if tt.final {
				got := a.waitStatus(id, "FEIL", 30*time.Second)
				assert.NotContains(t, got, "SENDT")
				assert.Zero(t, svarUtDeliveries(t)[id])
				return
			}
			got := a.waitStatus(id, "LEVERT", 30*time.Second)
			progress(t, got, "OPPRETTET", "SENDT", "LEVERT")
			assert.Equal(t, 1, svarUtDeliveries(t)[id])
		})
	}
	t.Run("unknown shipment type refused at the api", func(t *testing.T) {
		typeLookups := func() int {
			var reqs struct {
				Routes map[string]int `json:"routes"`
			}
			simCall(t, "ks-fiks", "GET", "/_sim/requests", nil, &reqs)
			return reqs.Routes["GET /api/v2/forsendelsestyper"]
		}
		before := typeLookups()
		a := startDaemon(t, ownOrg, t.TempDir(), nil)
		sbd, files, id := arkivmelding(municipality, 0)
		var doc map[string]any
		require.NoError(t, json.Unmarshal(sbd, &doc))
		doc["arkivmelding"].(map[string]any)["dpf"] = map[string]any{"forsendelseType": "Ukjent"}
		sbd, _ = json.Marshal(doc)
		code, body := a.send(sbd, files)
		require.Equal(t, http.StatusBadRequest, code, body)
		assert.Contains(t, body, "ForsendelseTypeNotFoundException")
		assert.Empty(t, a.statuses(id))
		doc["arkivmelding"].(map[string]any)["dpf"] = map[string]any{"forsendelseType": "Vedtak"}
		sbd, _ = json.Marshal(doc)
		a.mustSend(sbd, files)
		a.waitStatus(id, "LEVERT", 30*time.Second)
		assert.Equal(t, 1, typeLookups()-before, "the shipment types are cached (an hour)")
	})
}

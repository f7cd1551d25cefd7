package sandbox_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/internal/apitest"
	"github.com/efm-go/efm/transport/dpi"
)

const (
	dpiCitizen      = "06068700602" // Digipost mailbox, notifiable
	reservedCitizen = "27126900142" // reserved, no mailbox: vedtak goes to print
	vedtak          = "urn:no:difi:profile:digitalpost:vedtak:ver1.0"
)

func digitalDoc(receiver string, opening bool) map[string]any {
	return sbd(receiver, "digital", "urn:no:difi:digitalpost:xsd:digital::digital", vedtak, map[string]any{
		"sikkerhetsnivaa": 4, "hoveddokument": "vedtak.pdf", "tittel": "Vedtak om bostøtte", "spraak": "NO",
		"digitalPostInfo": map[string]any{"virkningsdato": "2024-11-06", "aapningskvittering": opening},
		"varsler":         map[string]any{"epostTekst": "Du har fått brev.", "smsTekst": "Du har fått brev."}})
}

func printDoc(receiver string, business map[string]any) map[string]any {
	business["hoveddokument"] = "vedtak.pdf"
	doc := sbd(receiver, "print", "urn:no:difi:digitalpost:xsd:fysisk::print", vedtak, business)
	if receiver == "" {
		delete(doc["standardBusinessDocumentHeader"].(map[string]any), "receiver")
	}
	return doc
}

var pdf = part{"Vedtak", "vedtak.pdf", "application/pdf", []byte("%PDF-1.4 vedtak")}

// dpiSim is the sandbox's DPI simulator as the tests drive it.
type dpiSim struct {
	t    *testing.T
	base string
}

func (s dpiSim) config(outcome string) {
	s.t.Helper()
	code, body := do(s.t, http.MethodPost, s.base+"/_sim/config", "application/json",
		strings.NewReader(`{"sent":"50ms","deliver":"100ms","open":"200ms","outcome":"`+outcome+`"}`), nil)
	require.Equal(s.t, http.StatusOK, code, body)
}

type received struct {
	MessageID, Type, Problem string
	Documents, Notified      []string
	Duplicates               int
	Address                  *dpi.Address
	Kanal                    string
}

func (s dpiSim) received(id string) (received, bool) {
	_, body := do(s.t, http.MethodGet, s.base+"/_sim/messages", "", nil, nil)
	var all struct {
		Messages []received `json:"messages"`
	}
	require.NoError(s.t, json.Unmarshal([]byte(body), &all), body)
	for _, m := range all.Messages {
		if m.MessageID == id {
			return m, true
		}
	}
	return received{}, false
}

func waitStatus(t *testing.T, base, id, want string) {
	t.Helper()
	require.Eventually(t, func() bool { return apitest.HasStatus(base, id, want) }, 45*time.Second, 100*time.Millisecond,
		"message never %s; statuses %v", want, apitest.Statuses(base, id))
}

// TestSandbox_DPI drives DPI digital and print through the daemon, the
// registries and the DPI simulator over HTTP (channels.md §4, §9.12): each
// road, each receipt type, a refusal and an outage at the access point, and
// a scan of the run's log for person numbers.
func TestSandbox_DPI(t *testing.T) {
	d := startDaemon(t)
	sim := dpiSim{t: t, base: findService(t, d.sb, "dpi").BaseURL}

	t.Run("capabilities", func(t *testing.T) {
		code, body := do(t, http.MethodGet, d.base+"/api/capabilities/"+dpiCitizen, "", nil, nil)
		require.Equal(t, http.StatusOK, code, body)
		assert.Contains(t, body, `"serviceIdentifier":"DPI"`)
		assert.Contains(t, body, `"digitalPostAddress"`)
	})

	t.Run("digital reaches LEST in order", func(t *testing.T) {
		sim.config("")
		id := send(t, d.base, digitalDoc(dpiCitizen, true), pdf)
		waitStatus(t, d.base, id, "LEST")
		assert.Equal(t, []string{"OPPRETTET", "SENDT", "MOTTATT", "LEVERT", "LEST"}, apitest.Statuses(d.base, id))
		m, ok := sim.received(id)
		require.True(t, ok, "the access point never got the message")
		assert.Equal(t, "digital", m.Type)
		assert.Empty(t, m.Problem, "the mailbox supplier could not open the package")
		assert.Equal(t, []string{"vedtak.pdf"}, m.Documents)
		assert.Equal(t, []string{"epost", "sms"}, m.Notified, "notifications from KRR's contact data and the message's texts")
		assert.Zero(t, m.Duplicates)
	})

	t.Run("reserved citizen goes to print", func(t *testing.T) {
		sim.config("")
		id := send(t, d.base, printDoc(reservedCitizen, map[string]any{}), pdf)
		waitStatus(t, d.base, id, "LEVERT")
		m, ok := sim.received(id)
		require.True(t, ok)
		assert.Equal(t, "utskrift", m.Type)
		assert.Empty(t, m.Problem)
	})

	for _, tc := range []struct {
		name, outcome string
		doc           map[string]any
		want          []string
	}{
		{"feil receipt", "feil", digitalDoc(dpiCitizen, false), []string{"OPPRETTET", "SENDT", "FEIL"}},
		{"failed notification", "varslingfeilet", digitalDoc(dpiCitizen, false), []string{"OPPRETTET", "SENDT", "MOTTATT", "LEVERT", "FEIL"}},
		{"returned mail", "returpost", printDoc(reservedCitizen, map[string]any{}), []string{"OPPRETTET", "SENDT", "MOTTATT", "LEVERT", "FEIL"}},
		{"delivery before the access point's SENDT", "early", digitalDoc(dpiCitizen, false), []string{"OPPRETTET", "SENDT", "MOTTATT", "LEVERT"}},
		{"unknown receipt type", "unknown", digitalDoc(dpiCitizen, false), []string{"OPPRETTET", "SENDT", "ANNET"}},
		{"access point FEILET", "feilet", digitalDoc(dpiCitizen, false), []string{"OPPRETTET", "SENDT", "FEIL"}},
		{"receipt with a broken signature skipped", "badsig", digitalDoc(dpiCitizen, false), []string{"OPPRETTET", "SENDT", "MOTTATT", "LEVERT"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim.config(tc.outcome)
			id := send(t, d.base, tc.doc, pdf)
			last := tc.want[len(tc.want)-1]
			waitStatus(t, d.base, id, last)
			got := apitest.Statuses(d.base, id)
			for _, st := range tc.want {
				assert.Contains(t, got, st)
			}
			if tc.outcome == "early" {
				assert.Less(t, slices.Index(got, "MOTTATT"), slices.Index(got, "LEVERT"), "MOTTATT is recorded before LEVERT: %v", got)
			}
		})
	}
	sim.config("")
	assert.Contains(t, d.logs.String(), "dpi receipt refused", "the receipt with the broken signature is refused, visibly")

	t.Run("4xx from the access point is FEIL at once", func(t *testing.T) {
		code, body := do(t, http.MethodPost, sim.base+"/_sim/faults", "application/json",
			strings.NewReader(`{"path":"/messages/out","method":"POST","status":400,"times":1}`), nil)
		require.Less(t, code, 300, body)
		id := send(t, d.base, digitalDoc(dpiCitizen, false), pdf)
		waitStatus(t, d.base, id, "FEIL")
		assert.NotContains(t, apitest.Statuses(d.base, id), "SENDT")
		_, found := sim.received(id)
		assert.False(t, found, "refused, and not tried again")
	})

	t.Run("outage, then delivered after recovery", func(t *testing.T) {
		code, body := do(t, http.MethodPost, sim.base+"/_sim/faults", "application/json",
			strings.NewReader(`{"path":"/messages/out","method":"POST","status":503,"times":2}`), nil)
		require.Less(t, code, 300, body)
		id := send(t, d.base, digitalDoc(dpiCitizen, false), pdf)
		waitStatus(t, d.base, id, "LEVERT")
		assert.NotContains(t, apitest.Statuses(d.base, id), "FEIL")
		m, ok := sim.received(id)
		require.True(t, ok)
		assert.Zero(t, m.Duplicates)
	})

	// The access point takes the letter but the answer is lost, and the
	// retry asks too early (as after a crash right after the upload, while
	// the access point is still checking it): the retry's POST is refused as
	// a duplicate. That is the earlier attempt having got through, not FEIL.
	t.Run("a lost answer and a duplicate refusal are no failure", func(t *testing.T) {
		// Receipts later than the retry, so the retry's send decides.
		code, body := do(t, http.MethodPost, sim.base+"/_sim/config", "application/json",
			strings.NewReader(`{"sent":"50ms","deliver":"5s","open":"6s","outcome":""}`), nil)
		require.Equal(t, http.StatusOK, code, body)
		defer sim.config("")
		code, body = do(t, http.MethodPost, sim.base+"/_sim/faults", "application/json",
			strings.NewReader(`{"path":"/messages/out","method":"POST","after":true,"drop":true,"times":1}`), nil)
		require.Less(t, code, 300, body)
		id := send(t, d.base, digitalDoc(dpiCitizen, false), pdf)
		code, body = do(t, http.MethodPost, sim.base+"/_sim/faults", "application/json",
			strings.NewReader(`{"path":"/messages/out/`+id+`/statuses","status":404,"times":1}`), nil)
		require.Less(t, code, 300, body)
		waitStatus(t, d.base, id, "LEVERT")
		assert.NotContains(t, apitest.Statuses(d.base, id), "FEIL")
		m, ok := sim.received(id)
		require.True(t, ok)
		assert.Equal(t, 1, m.Duplicates, "the retry was refused as a duplicate")
	})

	d.stop()
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(d.logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines++
		assert.False(t, events.ContainsPersonNumber(sc.Text()), "a log line on the DPI road holds a person number: %s", sc.Text())
	}
	assert.Greater(t, lines, 10)
}

// TestSandbox_DPIOff: with DPI switched off the daemon asks the registry
// nothing about citizens (it lacks the DPI scopes the registry wants), and
// answers as the reference does: 200 with no capabilities, and a citizen
// letter is refused at once with a 400 naming the receiver, never a 500
// "retry later" for what is configuration (issue 14 point 11).
func TestSandbox_DPIOff(t *testing.T) {
	d := startDaemon(t, "difi.move.feature.enableDPI", "false")
	for _, pid := range []string{dpiCitizen, reservedCitizen, citizenReceiver} {
		code, body := do(t, http.MethodGet, d.base+"/api/capabilities/"+pid, "", nil, nil)
		assert.Equal(t, http.StatusOK, code, body)
		assert.JSONEq(t, `{"capabilities":[]}`, body)
	}
	code, b := post(t, d.base, digitalDoc(dpiCitizen, false), []part{pdf})
	assert.Equal(t, http.StatusBadRequest, code, string(b))
	code, body := do(t, http.MethodGet, d.base+"/api/capabilities/"+orgReceiver, "", nil, nil)
	assert.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"serviceIdentifier":"DPO"`, "organisations are looked up as before")
}

// TestSandbox_DPIPrintAddresses: print without a receiver goes to KRR's
// print provider with the message's own address blocks, a foreign address
// folded (channels.md §4.4); without an address the API refuses at once with
// MissingAddressInformationException.
//
// It runs with difi.move.dpi.mpcConcurrency=2: letters go out on two
// channels in turn, and the receipts of both are polled.
func TestSandbox_DPIPrintAddresses(t *testing.T) {
	d := startDaemon(t, "difi.move.dpi.mpcConcurrency", "2")
	sim := dpiSim{t: t, base: findService(t, d.sb, "dpi").BaseURL}
	kanal := map[string]bool{}
	for range 2 {
		id := send(t, d.base, digitalDoc(dpiCitizen, false), pdf)
		waitStatus(t, d.base, id, "LEVERT")
		m, ok := sim.received(id)
		require.True(t, ok)
		kanal[m.Kanal] = true
	}
	assert.Equal(t, map[string]bool{"no_difi_move_integrasjonspunkt-0": true, "no_difi_move_integrasjonspunkt-1": true}, kanal)
	retur := map[string]any{"mottaker": map[string]any{"navn": "Sandkasse etat", "adresselinje1": "Postboks 1", "postnummer": "0150",
		"poststed": "OSLO"}}
	id := send(t, d.base, printDoc("", map[string]any{"retur": retur, "posttype": "A_PRIORITERT",
		"mottaker": map[string]any{"navn": "Sven Berg", "adresselinje1": "Storgatan 1", "postnummer": "111 22", "poststed": "STOCKHOLM",
			"land": "Sverige"}}), pdf)
	waitStatus(t, d.base, id, "LEVERT")
	m, ok := sim.received(id)
	require.True(t, ok)
	assert.Equal(t, "utskrift", m.Type)
	assert.Empty(t, m.Problem)
	require.NotNil(t, m.Address)
	assert.Equal(t, "111 22 STOCKHOLM", m.Address.Adresselinje2, "a foreign address folds postcode and place into a line")
	assert.Empty(t, m.Address.Postnummer)

	for name, mottaker := range map[string]map[string]any{
		"no mottaker":      nil,
		"no postnummer":    {"navn": "A", "adresselinje1": "Gata 1", "poststed": "OSLO"},
		"no adresselinje1": {"navn": "A", "postnummer": "0150", "poststed": "OSLO"},
	} {
		business := map[string]any{"retur": retur}
		if mottaker != nil {
			business["mottaker"] = mottaker
		}
		code, b := post(t, d.base, printDoc("", business), []part{pdf})
		assert.Equal(t, http.StatusBadRequest, code, "%s: %s", name, b)
		assert.Contains(t, string(b), "MissingAddressInformationException", name)
	}
}

// TestSandbox_DPINotSetUp: DPI on but its access point unusable. A citizen
// letter is refused at the API with 400 naming the key, nothing is stored,
// and the other channels keep working (a DPI problem pauses nothing else).
func TestSandbox_DPINotSetUp(t *testing.T) {
	d := startDaemon(t, "difi.move.dpi.uri", "not a url")
	doc := digitalDoc(dpiCitizen, false)
	code, b := post(t, d.base, doc, []part{pdf})
	require.Equal(t, http.StatusBadRequest, code, string(b))
	assert.Contains(t, string(b), "difi.move.dpi.uri")
	code, body := do(t, http.MethodGet, d.base+"/api/capabilities/"+orgReceiver, "", nil, nil)
	assert.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"serviceIdentifier":"DPO"`, "organisations are looked up as before")
}

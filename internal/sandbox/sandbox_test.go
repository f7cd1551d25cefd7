package sandbox_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt"
	"github.com/efm-go/efm/integrasjonspunkt/api"
	"github.com/efm-go/efm/integrasjonspunkt/config"
	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/internal/apitest"
	"github.com/efm-go/efm/internal/sandbox"
)

const (
	orgReceiver     = "910075918"   // DPO for the archive processes
	citizenReceiver = "05050910077" // secret address, no mailbox: DPV only
)

// lockedBuffer collects every log line of the run: daemon, simulators and
// pakkesporing write to the same one.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// daemon is a daemon in process with the whole sandbox behind it.
type daemon struct {
	ctx  context.Context
	base string
	cfg  *config.Config
	sb   *sandbox.Sandbox
	logs *lockedBuffer
	stop func()
}

func startDaemon(t *testing.T, overrides ...string) *daemon {
	t.Helper()
	logs := &lockedBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	require.NoError(t, pkiLink(dir))
	sb, err := sandbox.Start(ctx, sandbox.Options{Dir: dir, Logger: log})
	require.NoError(t, err)
	// Citizen lookups at the Service Registry need the DPI scopes, which the
	// daemon asks for only with DPI on (addressing.md §3.1). The citizens
	// used here have no mailbox, so the route is DPV and no DPI send happens.
	ov := map[string]string{"difi.move.feature.enableDPI": "true"}
	for k, v := range sb.Overrides {
		ov[k] = v
	}
	for i := 0; i+1 < len(overrides); i += 2 {
		ov[overrides[i]] = overrides[i+1]
	}
	cfg, _, err := config.Load(config.Source{Overrides: ov, DataDir: dir + "/data"})
	require.NoError(t, err)
	cfg.Server.Port = 0

	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- integrasjonspunkt.Run(ctx, integrasjonspunkt.Options{
			Config: cfg, Logger: log, Started: time.Now(), Sandbox: []api.SandboxService{},
			Listening: func(a net.Addr) { addr <- a },
		})
	}()
	d := &daemon{ctx: ctx, sb: sb, logs: logs, cfg: cfg}
	var once sync.Once
	d.stop = func() {
		once.Do(func() {
			cancel()
			<-done
			sb.Close()
		})
	}
	t.Cleanup(d.stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of the run (last 8 KB):\n%s", lastBytes(logs.String(), 8<<10))
		}
	})
	select {
	case a := <-addr:
		d.base = "http://" + a.String()
	case err := <-done:
		t.Fatalf("daemon stopped: %v\n%s", err, logs)
	}
	return d
}

// TestSandbox_NoPersonNumberLeavesTheAgency sends one message to an
// organisation and one to a citizen through the whole sandbox, waits for
// their events in pakkesporing, and scans every stored central event and
// every log line of the run for a national identity number (operations.md
// §5.3): there must be none.
func TestSandbox_NoPersonNumberLeavesTheAgency(t *testing.T) {
	d := startDaemon(t)
	sb, logs := d.sb, d.logs

	orgMsg, citizenMsg := sendBothToLevert(t, d)
	dpiMsg := send(t, d.base, digitalDoc(dpiCitizen, true), pdf)
	require.Eventually(t, func() bool { return apitest.HasStatus(d.base, dpiMsg, "LEVERT") }, 60*time.Second, 200*time.Millisecond,
		"message %s not LEVERT; statuses %v\n%s", dpiMsg, apitest.Statuses(d.base, dpiMsg), lastBytes(logs.String(), 4000))

	central := findService(t, sb, "pakkesporing")
	// Trust only the certificate file /manage/sandbox names, as the README's
	// curl --cacert does.
	caPEM, err := os.ReadFile(central.Credentials["caFile"])
	require.NoError(t, err, "the sandbox names pakkesporing's certificate file")
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(caPEM))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	for _, id := range []string{orgMsg, citizenMsg, dpiMsg} {
		require.Eventually(t, func() bool {
			return strings.Contains(get(client, central.BaseURL+"/v1/messages/"+id, central.Credentials["queryToken"]), `"LEVERT"`)
		}, 30*time.Second, 200*time.Millisecond, "central log lacks LEVERT for %s", id)
	}
	if curl, err := exec.LookPath("curl"); err == nil {
		out, err := exec.Command(curl, "-sf", "--cacert", central.Credentials["caFile"],
			"-H", "Authorization: Bearer "+central.Credentials["queryToken"], central.BaseURL+"/v1/messages/"+orgMsg).CombinedOutput()
		require.NoError(t, err, "the README's query: %s", out)
		assert.Contains(t, string(out), `"LEVERT"`)
	}

	var all []string
	cursor := ""
	for {
		var page struct {
			Events     []json.RawMessage `json:"events"`
			NextCursor string            `json:"next_cursor"`
		}
		body := get(client, central.BaseURL+"/v1/events?limit=1000&cursor="+cursor, central.Credentials["queryToken"])
		require.NoError(t, json.Unmarshal([]byte(body), &page), body)
		for _, e := range page.Events {
			all = append(all, string(e))
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	require.NotEmpty(t, all)
	sawPseudonym := false
	for _, e := range all {
		assert.False(t, events.ContainsPersonNumber(e), "a central event holds a person number: %s", e)
		sawPseudonym = sawPseudonym || strings.Contains(e, "receiver_pseudonym")
	}
	assert.True(t, sawPseudonym, "the citizen's events must carry the pseudonym instead of the number")

	d.stop()
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines++
		assert.False(t, events.ContainsPersonNumber(sc.Text()), "a log line holds a person number: %s", sc.Text())
	}
	assert.Greater(t, lines, 10, "the scan must have read the run's log")
	t.Logf("scanned %d central events and %d log lines", len(all), lines)
}

// sendBothToLevert sends an archive message to an organisation (DPO) and a
// digital post message to a citizen (DPV) and waits until both are LEVERT.
func sendBothToLevert(t *testing.T, d *daemon) (orgMsg, citizenMsg string) {
	t.Helper()
	orgMsg = send(t, d.base, sbd("0192:"+orgReceiver, "arkivmelding", "urn:no:difi:arkivmelding:xsd::arkivmelding",
		"urn:no:difi:profile:arkivmelding:administrasjon:ver1.0", map[string]any{"hoveddokument": "vedtak.pdf"}),
		part{"arkivmelding", "arkivmelding.xml", "text/xml", arkivmelding("vedtak.pdf")},
		part{"Vedtak", "vedtak.pdf", "application/pdf", []byte("%PDF-1.4 vedtak")})
	citizenMsg = send(t, d.base, sbd(citizenReceiver, "digital_dpv", "urn:no:difi:digitalpost:xsd:digital::digital_dpv",
		"urn:no:difi:profile:digitalpost:info:ver1.0", map[string]any{"tittel": "Svar", "sammendrag": "Svar på søknad", "innhold": "Søknaden er innvilget."}),
		part{"Svar", "svar.pdf", "application/pdf", []byte("%PDF-1.4 svar")})
	for _, id := range []string{orgMsg, citizenMsg} {
		require.Eventually(t, func() bool { return apitest.HasStatus(d.base, id, "LEVERT") }, 60*time.Second, 200*time.Millisecond,
			"message %s not LEVERT; statuses %v\n%s", id, apitest.Statuses(d.base, id), lastBytes(d.logs.String(), 4000))
	}
	return orgMsg, citizenMsg
}

type part struct {
	name, filename, contentType string
	body                        []byte
}

func sbd(receiver, typ, standard, process string, business map[string]any) map[string]any {
	return map[string]any{
		"standardBusinessDocumentHeader": map[string]any{
			"headerVersion":          "1.0",
			"receiver":               []any{map[string]any{"identifier": map[string]any{"authority": "iso6523-actorid-upis", "value": receiver}}},
			"documentIdentification": map[string]any{"standard": standard, "typeVersion": "2.0", "type": typ},
			"businessScope":          map[string]any{"scope": []any{map[string]any{"type": "ConversationId", "identifier": process}}},
		},
		typ: business,
	}
}

func arkivmelding(file string) []byte {
	return fmt.Appendf(nil, `<?xml version="1.0" encoding="utf-8"?>
<arkivmelding xmlns="http://www.arkivverket.no/standarder/noark5/arkivmelding" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <system>Sak</system><meldingId>1</meldingId><tidspunkt>2026-11-21T09:30:12+01:00</tidspunkt><antallFiler>1</antallFiler>
  <mappe xsi:type="saksmappe"><systemID>2026/118</systemID><tittel>Leirskole</tittel>
    <registrering xsi:type="journalpost"><systemID>abc</systemID><tittel>Tilskudd</tittel><offentligTittel>Tilskudd</offentligTittel>
      <dokumentbeskrivelse><dokumentobjekt><referanseDokumentfil>%s</referanseDokumentfil></dokumentobjekt></dokumentbeskrivelse>
      <journalpostnummer>7</journalpostnummer></registrering>
  </mappe>
</arkivmelding>`, file)
}

// send is the one-step multipart send (E5); it returns the message id.
func send(t *testing.T, base string, doc map[string]any, parts ...part) string {
	t.Helper()
	// A client retries when the registry could not be asked (the one-step
	// send stores nothing then). Seen once in CI on the first send of a run,
	// cause not yet found: tolerate it a few times, visibly, and fail after.
	var b []byte
	for attempt := 1; ; attempt++ {
		var code int
		code, b = post(t, base, doc, parts)
		if code == http.StatusOK {
			break
		}
		if attempt == 5 || !strings.Contains(string(b), "service registry could not be asked") {
			require.Equal(t, http.StatusOK, code, "send: %s", b)
		}
		t.Logf("send attempt %d: the registry could not be asked; retrying: %s", attempt, b)
		time.Sleep(500 * time.Millisecond)
	}
	var out struct {
		H struct {
			D struct {
				ID string `json:"instanceIdentifier"`
			} `json:"documentIdentification"`
		} `json:"standardBusinessDocumentHeader"`
	}
	require.NoError(t, json.Unmarshal(b, &out))
	return out.H.D.ID
}

// post is the one-step multipart send (E5).
func post(t *testing.T, base string, doc map[string]any, parts []part) (int, []byte) {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="sbd"`)
	h.Set("Content-Type", "application/json")
	pw, _ := w.CreatePart(h)
	require.NoError(t, json.NewEncoder(pw).Encode(doc))
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, p.name, p.filename))
		h.Set("Content-Type", p.contentType)
		pw, _ := w.CreatePart(h)
		pw.Write(p.body)
	}
	require.NoError(t, w.Close())
	resp, err := http.Post(base+"/api/messages/out/multipart", w.FormDataContentType(), &body)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func get(c *http.Client, url, token string) string {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func findService(t *testing.T, sb *sandbox.Sandbox, name string) sandbox.Service {
	t.Helper()
	for _, s := range sb.Services {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("sandbox runs no %s", name)
	return sandbox.Service{}
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestSandbox_RegistryDown: while the Service Registry answers 503, a client
// gets a clear error, a message it already created is kept, the pipeline's
// attempts are counted, and once the registry is back the message is
// delivered (addressing.md §9, issue "registry down or slow").
func TestSandbox_RegistryDown(t *testing.T) {
	d := startDaemon(t)
	sr := findService(t, d.sb, "service-registry")

	// Created while the registry answers: the create step validates the receiver.
	doc := sbd(citizenReceiver, "digital_dpv", "urn:no:difi:digitalpost:xsd:digital::digital_dpv",
		"urn:no:difi:profile:digitalpost:info:ver1.0", map[string]any{"tittel": "Svar", "sammendrag": "Svar", "innhold": "Innvilget."})
	b, _ := json.Marshal(doc)
	code, body := do(t, http.MethodPost, d.base+"/api/messages/out", "application/json", bytes.NewReader(b), nil)
	require.Equal(t, http.StatusOK, code, body)
	var created struct {
		H struct {
			D struct {
				ID string `json:"instanceIdentifier"`
			} `json:"documentIdentification"`
		} `json:"standardBusinessDocumentHeader"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &created))
	id := created.H.D.ID
	code, body = do(t, http.MethodPut, d.base+"/api/messages/out/"+id, "application/pdf", strings.NewReader("%PDF-1.4 svar"),
		map[string]string{"Content-Disposition": `attachment; name="Svar"; filename="svar.pdf"`})
	require.Equal(t, http.StatusOK, code, body)

	code, body = do(t, http.MethodPost, sr.BaseURL+"/_sim/faults", "application/json", strings.NewReader(`{"path":"/identifier","status":503}`), nil)
	require.Less(t, code, 300, body)

	code, body = do(t, http.MethodGet, d.base+"/api/capabilities/"+citizenReceiver, "", nil, nil)
	assert.Equal(t, http.StatusInternalServerError, code, "registry down must not look like an unknown receiver: %s", body)
	assert.Contains(t, body, "service registry could not be reached", "the client must learn why")

	code, body = do(t, http.MethodPost, d.base+"/api/messages/out/"+id, "", nil, nil)
	sentWhileDown := code == http.StatusOK
	if !sentWhileDown {
		assert.GreaterOrEqual(t, code, 500, "send while the registry is down: %s", body)
		code, _ = do(t, http.MethodGet, d.base+"/api/messages/out/"+id, "", nil, nil)
		assert.Equal(t, http.StatusOK, code, "a refused send must keep the message for a retry")
	}
	require.Eventually(t, func() bool { return registryFailures(d.base) > 0 }, 20*time.Second, 100*time.Millisecond,
		"registry failures are not counted on /manage/prometheus")
	assert.False(t, apitest.HasStatus(d.base, id, "SENDT"), "sent although the registry is down")

	code, body = do(t, http.MethodDelete, sr.BaseURL+"/_sim/faults", "", nil, nil)
	require.Less(t, code, 300, body)
	if !sentWhileDown {
		code, body = do(t, http.MethodPost, d.base+"/api/messages/out/"+id, "", nil, nil)
		require.Equal(t, http.StatusOK, code, body)
	}
	require.Eventually(t, func() bool { return apitest.HasStatus(d.base, id, "LEVERT") }, 60*time.Second, 200*time.Millisecond,
		"not delivered after the registry came back; statuses %v", apitest.Statuses(d.base, id))
	d.stop()
	for _, line := range strings.Split(d.logs.String(), "\n") {
		assert.False(t, events.ContainsPersonNumber(line), "the outage's log names the citizen: %s", line)
	}
}

func do(t *testing.T, method, url, contentType string, body io.Reader, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func registryFailures(base string) float64 {
	resp, err := http.Get(base + "/manage/prometheus")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "efm_registry_failures_total "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}

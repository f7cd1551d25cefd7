package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt"
	"github.com/efm-go/efm/integrasjonspunkt/config"
	"github.com/efm-go/efm/internal/sandbox"
)

// Parties of the default seed (addressing/seed/default.json, addressing.md §10).
const (
	ownOrg      = sandbox.OwnOrg // the sandbox daemon
	peerOrg     = "910075918"    // DPO for archive processes; the broker simulator plays its integration point
	secondOrg   = "910076787"    // DPO for every archive process; played by a second real daemon
	archiveProc = "urn:no:difi:profile:arkivmelding:administrasjon:ver1.0"
)

var (
	worldOnce sync.Once
	world     *sandbox.Sandbox
	worldErr  error
)

// sims starts the sandbox's simulators once per test binary. The PKI is kept
// between runs (making RSA keys for every seeded organisation is most of the
// start-up time); the central log's database is not: it grew by every run
// on the machine, and its 64 MiB page cache, filled from a store of 150 MB,
// was counted as the daemon's memory by TestDPO_1GiBAttachment.
func sims(t testing.TB) *sandbox.Sandbox {
	t.Helper()
	worldOnce.Do(func() {
		dir := filepath.Join(os.TempDir(), "efm-e2e-sandbox")
		for _, f := range []string{"pakkesporing.db", "pakkesporing.db-wal", "pakkesporing.db-shm"} {
			if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				worldErr = err
				return
			}
		}
		world, worldErr = sandbox.Start(context.Background(), sandbox.Options{Dir: dir, Daemons: []string{secondOrg},
			Logger: slog.New(slog.DiscardHandler)})
	})
	require.NoError(t, worldErr)
	return world
}

// simURL is the base URL of one simulator.
func simURL(t testing.TB, name string) string {
	t.Helper()
	for _, s := range sims(t).Services {
		if s.Name == name {
			return s.BaseURL
		}
	}
	t.Fatalf("no simulator %s", name)
	return ""
}

// overrides point a daemon of org at the simulators.
func overrides(t testing.TB, org string, extra map[string]string) map[string]string {
	sb := sims(t)
	ov := maps.Clone(sb.Overrides)
	if org != ownOrg {
		id := sb.PKI.Orgs[org]
		ov["difi.move.org.number"] = org
		ov["difi.move.org.keystore.path"] = id.KeystorePath
		ov["difi.move.org.keystore.alias"] = id.Alias
		ov["difi.move.org.keystore.password"] = id.KeystorePassword
		ov["difi.move.oidc.clientId"] = "MOVE_IP_" + org
		maps.Copy(ov, sb.DPFKeys(org))
	}
	maps.Copy(ov, map[string]string{
		"server.port":               "9093", // replaced by a free port
		"server.address":            "127.0.0.1",
		"efm.events.enabled":        "false",
		"efm.expiry.check-interval": "200ms",
		"efm.shutdown.drain":        "2s",
		"efm.log.level":             "warn",
	})
	maps.Copy(ov, extra)
	return ov
}

// daemon is a running integrasjonspunkt on a loopback port.
type daemon struct {
	t    testing.TB
	org  string
	base string
	dir  string
	stop func()
}

// startDaemon runs a daemon of org in process with its data in dir.
func startDaemon(t testing.TB, org, dir string, extra map[string]string) *daemon {
	t.Helper()
	cfg, _, err := config.Load(config.Source{Overrides: overrides(t, org, extra), DataDir: dir})
	require.NoError(t, err)
	cfg.Server.Port = 0
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() {
		done <- integrasjonspunkt.Run(ctx, integrasjonspunkt.Options{Config: cfg, Logger: log, Started: time.Now(),
			Listening: func(a net.Addr) { addr <- a }})
	}()
	d := &daemon{t: t, org: org, dir: dir}
	select {
	case a := <-addr:
		d.base = "http://" + a.String()
	case err := <-done:
		cancel()
		t.Fatalf("daemon did not start: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("daemon did not start within 60 s")
	}
	var once sync.Once
	d.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(30 * time.Second):
				t.Error("daemon did not stop")
			}
		})
	}
	t.Cleanup(d.stop)
	return d
}

// testWriter sends the daemon's warnings to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// arkivmelding is an archive message from the sender to receiver: its SBD
// and its files (arkivmelding.xml and the document it names).
func arkivmelding(receiver string, ttl time.Duration) (sbd []byte, files map[string][]byte, id string) {
	id = uuid.NewString()
	doc := fmt.Appendf(nil, "%%PDF-1.4\n%% vedtak %s\n", id)
	doc = append(doc, bytes.Repeat([]byte{0xA5, 0x5A, 0x00, '\n'}, 256)...) // binary, to catch any re-encoding
	xml := fmt.Appendf(nil, `<?xml version="1.0" encoding="utf-8"?>
<arkivmelding xmlns="http://www.arkivverket.no/standarder/noark5/arkivmelding" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <system>Sak</system><meldingId>%s</meldingId><tidspunkt>2026-11-04T09:30:12+01:00</tidspunkt><antallFiler>1</antallFiler>
  <mappe xsi:type="saksmappe"><systemID>2026/118</systemID><tittel>Leirskole</tittel>
    <registrering xsi:type="journalpost"><systemID>abc</systemID><tittel>Tilskudd</tittel><offentligTittel>Tilskudd</offentligTittel>
      <dokumentbeskrivelse><dokumentobjekt><referanseDokumentfil>vedtak.pdf</referanseDokumentfil></dokumentobjekt></dokumentbeskrivelse>
      <journalpostnummer>7</journalpostnummer></registrering>
  </mappe>
</arkivmelding>`, id)
	h := map[string]any{
		"headerVersion": "1.0",
		"receiver":      []any{map[string]any{"identifier": map[string]any{"authority": "iso6523-actorid-upis", "value": "0192:" + receiver}}},
		"documentIdentification": map[string]any{"standard": "urn:no:difi:arkivmelding:xsd::arkivmelding", "typeVersion": "2.0",
			"type": "arkivmelding", "instanceIdentifier": id},
		"businessScope": map[string]any{"scope": []any{map[string]any{"type": "ConversationId", "identifier": archiveProc,
			"instanceIdentifier": uuid.NewString()}}},
	}
	if ttl > 0 {
		sc := h["businessScope"].(map[string]any)["scope"].([]any)[0].(map[string]any)
		sc["scopeInformation"] = []any{map[string]any{"expectedResponseDateTime": time.Now().Add(ttl).Format(time.RFC3339)}}
	}
	sbd, _ = json.Marshal(map[string]any{"standardBusinessDocumentHeader": h, "arkivmelding": map[string]any{"hoveddokument": "vedtak.pdf"}})
	return sbd, map[string][]byte{"arkivmelding.xml": xml, "vedtak.pdf": doc}, id
}

// send is E5, the one-step multipart send. It returns the HTTP status.
func (d *daemon) send(sbd []byte, files map[string][]byte) (int, string) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="sbd"`)
	h.Set("Content-Type", "application/json")
	pw, _ := mw.CreatePart(h)
	pw.Write(sbd)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, strings.TrimSuffix(name, filepath.Ext(name)), name))
		ct := "application/pdf"
		if strings.HasSuffix(name, ".xml") {
			ct = "application/xml"
		}
		h.Set("Content-Type", ct)
		pw, _ := mw.CreatePart(h)
		pw.Write(files[name])
	}
	mw.Close()
	res, err := http.Post(d.base+"/api/messages/out/multipart", mw.FormDataContentType(), &body)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// mustSend sends and requires 200.
func (d *daemon) mustSend(sbd []byte, files map[string][]byte) {
	d.t.Helper()
	code, body := d.send(sbd, files)
	require.Equal(d.t, http.StatusOK, code, "body: %s", body)
}

func (d *daemon) do(method, path string) (int, []byte) {
	d.t.Helper()
	req, err := http.NewRequest(method, d.base+path, nil)
	require.NoError(d.t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(d.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(d.t, err)
	return res.StatusCode, b
}

// statuses is E20: the message's statuses, oldest first.
func (d *daemon) statuses(id string) []string {
	d.t.Helper()
	code, b := d.do("GET", "/api/statuses/"+id+"?size=100")
	require.Equal(d.t, 200, code, "body: %s", b)
	var page struct {
		Content []struct {
			Status string `json:"status"`
		} `json:"content"`
	}
	require.NoError(d.t, json.Unmarshal(b, &page))
	var out []string
	for _, c := range page.Content {
		out = append(out, c.Status)
	}
	return out
}

// waitStatus waits until the message has status want and returns all.
func (d *daemon) waitStatus(id, want string, within time.Duration) []string {
	d.t.Helper()
	deadline := time.Now().Add(within)
	var got []string
	for time.Now().Before(deadline) {
		got = d.statuses(id)
		if slices.Contains(got, want) {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.t.Fatalf("message did not reach %s within %s; statuses %v", want, within, got)
	return nil
}

// simCall calls a simulator's control API.
func simCall(t testing.TB, sim, method, path string, body any, out any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, simURL(t, sim)+path, r)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	require.Less(t, res.StatusCode, 300, "%s %s: %s", method, path, b)
	if out != nil {
		require.NoError(t, json.Unmarshal(b, out), "body: %s", b)
	}
}

// brokerDeliveries is how many times the broker published each message id
// to its recipient.
func brokerDeliveries(t testing.TB) map[string]int {
	var rep struct {
		Deliveries map[string]int `json:"deliveries"`
	}
	simCall(t, "altinn-broker", "GET", "/_sim/deliveries", nil, &rep)
	return rep.Deliveries
}

// brokerSchedule sets the broker's and peers' schedule for one test.
func brokerSchedule(t testing.TB, sched map[string]any) {
	t.Helper()
	var old map[string]any
	simCall(t, "altinn-broker", "GET", "/_sim/config", nil, &old)
	// The simulator keeps fields a request leaves out; omitted zero values
	// must be restored explicitly.
	for k, v := range map[string]any{"drop": []string{}, "kvitteringType": "", "holdPublish": false, "failUploads": 0} {
		if _, ok := old[k]; !ok {
			old[k] = v
		}
	}
	simCall(t, "altinn-broker", "POST", "/_sim/config", sched, nil)
	t.Cleanup(func() { simCall(t, "altinn-broker", "POST", "/_sim/config", old, nil) })
}

// brokerFault injects a fault until the test ends.
func brokerFault(t testing.TB, f map[string]any) {
	t.Helper()
	simCall(t, "altinn-broker", "POST", "/_sim/faults", f, nil)
	t.Cleanup(func() { simCall(t, "altinn-broker", "DELETE", "/_sim/faults", nil, nil) })
}

// publisering is a publication to eInnsyn (DPE, local-api.md §12.8).
func publisering(receiver string) (sbd []byte, files map[string][]byte, id string) {
	id = uuid.NewString()
	h := map[string]any{
		"headerVersion": "1.0",
		"receiver":      []any{map[string]any{"identifier": map[string]any{"authority": "iso6523-actorid-upis", "value": "0192:" + receiver}}},
		"documentIdentification": map[string]any{"standard": "urn:no:difi:einnsyn:xsd::publisering", "typeVersion": "1.0",
			"type": "publisering", "instanceIdentifier": id},
		"businessScope": map[string]any{"scope": []any{map[string]any{"type": "ConversationId",
			"identifier": "urn:no:difi:profile:einnsyn:journalpost:ver1.0", "instanceIdentifier": uuid.NewString()}}},
	}
	sbd, _ = json.Marshal(map[string]any{"standardBusinessDocumentHeader": h, "publisering": map[string]any{"orgnr": ownOrg}})
	doc := fmt.Appendf(nil, `{"@context": "https://data.einnsyn.no", "@id": "urn:journalpost:%s", "tittel": "Tilskudd"}`, id)
	return sbd, map[string][]byte{"journalpost.jsonld": doc}, id
}

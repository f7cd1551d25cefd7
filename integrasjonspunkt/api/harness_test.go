package api_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/addressing"
	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/addressing/krr"
	"github.com/efm-go/efm/addressing/regsim"
	"github.com/efm-go/efm/addressing/seed"
	"github.com/efm-go/efm/addressing/sr"
	"github.com/efm-go/efm/integrasjonspunkt"
	"github.com/efm-go/efm/integrasjonspunkt/config"
	"github.com/efm-go/efm/integrasjonspunkt/message"
	"github.com/efm-go/efm/integrasjonspunkt/queue"
	"github.com/efm-go/efm/integrasjonspunkt/sbd"
	"github.com/efm-go/efm/packaging/jws"
	"github.com/efm-go/efm/packaging/testpki"
)

// Parties of the default simulator seed (addressing/seed/default.json).
const (
	ownOrg      = "910077473" // the sandbox's own organisation: the daemon runs as it
	dpoOrg      = "910076787" // DPO for every archive process and on eInnsyn (DPE)
	dpvOrg      = "910081004" // in no address register: DPV
	dpeOrg      = "810074582" // on eInnsyn only (DPE)
	dpfOrg      = "910079018" // KS SvarUt: DPF
	otherOrg    = "910075918" // a valid organisation the daemon may send on behalf of
	unknownOrg  = "910082000" // removed from Enhetsregisteret: SR 404
	citizen     = "06068700602"
	printOnly   = "27126900142" // reserved: vedtak only as print
	archiveProc = "urn:no:difi:profile:arkivmelding:administrasjon:ver1.0"
	vedtakProc  = "urn:no:difi:profile:digitalpost:vedtak:ver1.0"
	avtaltProc  = "urn:no:difi:profile:avtalt:avtalt:ver1.0"
	einnsynProc = "urn:no:difi:profile:einnsyn:journalpost:ver1.0"
)

var (
	simOnce sync.Once
	sims    *regsim.Set
	simErr  error
	mpKey   *rsa.PrivateKey
)

// registry starts the register simulators once per test binary (real HTTP),
// and builds a resolver over them per daemon. ov are the daemon's overrides:
// with difi.move.feature.enableBetaFeatures the SR client sends
// X-Enable-Beta-Features, and with enableDPH the token carries eformidling:dph,
// as the reference asks (spec/addressing.md §3.1); DPH records need both.
func registry(t testing.TB, policy ident.Policy, ov map[string]string) message.Registry {
	t.Helper()
	simOnce.Do(func() {
		s, err := seed.Default()
		if err != nil {
			simErr = err
			return
		}
		// The simulators read token claims unverified; any RSA key signs.
		mpKey = businessCertificate(t).Key
		certs := map[string][]byte{}
		for _, org := range s.Organisations() {
			certs[org] = selfSigned(org)
		}
		sims, simErr = regsim.Start(regsim.Options{Seed: s, OrgCertificates: certs})
	})
	require.NoError(t, simErr)
	scope := "eformidling:dpo eformidling:dpe eformidling:dpv eformidling:dpf eformidling:dpi digitalpostinnbygger:send global/kontaktinformasjon.read global/sikkerdigitalpost.read global/varslingsstatus.read global/sertifikat.read global/navn.read global/postadresse.read"
	if ov["difi.move.feature.enableDPH"] == "true" {
		scope += " eformidling:dph"
	}
	token := func(context.Context) (string, error) {
		now := time.Now()
		claims, _ := json.Marshal(map[string]any{"iss": "maskinporten-sim", "client_id": "MOVE_IP_" + ownOrg,
			"scope":    scope,
			"consumer": map[string]string{"authority": "iso6523-actorid-upis", "ID": "0192:" + ownOrg},
			"iat":      now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": fmt.Sprint(now.UnixNano())})
		tok, err := jws.Sign(mpKey, claims, map[string]any{"typ": "at+jwt"})
		return string(tok), err
	}
	c, err := sr.New(sr.Config{BaseURL: sims.SRURL, Token: token, Timeout: 5 * time.Second,
		BetaFeatures: ov["difi.move.feature.enableBetaFeatures"] == "true"})
	require.NoError(t, err)
	k, err := krr.New(krr.Config{BaseURL: sims.KRRURL, PrintURL: sims.KRRPrintURL})
	require.NoError(t, err)
	res, err := addressing.New(addressing.Config{SR: c, KRR: k, Policy: policy, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	return message.ResolverRegistry{Resolver: res}
}

// selfSigned is a throwaway business certificate for an organisation, so the
// simulated VirkSert has one (a DPO receiver without one is "not found").
func selfSigned(org string) []byte {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:   pkix.Name{CommonName: "org " + org, Organization: []string{org}, SerialNumber: org},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

var (
	pkiOnce sync.Once
	pki     *testpki.PKI
	pkiErr  error
)

// businessCertificate is the daemon's own keystore from the sandbox's test PKI.
func businessCertificate(t testing.TB) *testpki.Identity {
	t.Helper()
	pkiOnce.Do(func() {
		// Shared across test processes (fuzz workers) and runs: Ensure is
		// idempotent and safe for concurrent use, and RSA key generation is
		// the slowest part of starting a daemon.
		pki, pkiErr = testpki.Ensure(filepath.Join(os.TempDir(), "efm-api-test-pki"), []string{ownOrg})
	})
	require.NoError(t, pkiErr)
	return pki.Orgs[ownOrg]
}

// daemon is a running integrasjonspunkt.Run on a loopback port.
type daemon struct {
	t    testing.TB
	base string
	core *message.Service
	q    *queue.Queue
	dir  string
}

func baseOverrides() map[string]string {
	return map[string]string{
		"environment":                          "staging",
		"difi.move.org.number":                 ownOrg,
		"difi.move.feature.enableDPO":          "true",
		"difi.move.feature.enableDPV":          "true",
		"difi.move.feature.enableDPI":          "true",
		"difi.move.feature.enableDPE":          "true",
		"difi.move.identifier.synthetic.allow": "true",
		"server.port":                          "9093",
		"server.address":                       "127.0.0.1",
		"efm.events.enabled":                   "false",
		"efm.expiry.check-interval":            "100ms",
		"efm.webhook.backoff":                  "20ms",
		"efm.shutdown.drain":                   "2s",
	}
}

// startDaemon runs a daemon with a fresh data dir; extra overrides win.
func startDaemon(t testing.TB, extra map[string]string) *daemon {
	t.Helper()
	return startDaemonLog(t, extra, io.Discard)
}

// startDaemonLog is startDaemon with the daemon's log (JSON, debug) in w.
func startDaemonLog(t testing.TB, extra map[string]string, w io.Writer) *daemon {
	t.Helper()
	return startDaemonReg(t, extra, w, nil)
}

// startDaemonReg is startDaemonLog whose registry is wrap(the simulators'
// resolver) when wrap is not nil.
func startDaemonReg(t testing.TB, extra map[string]string, w io.Writer, wrap func(message.Registry) message.Registry) *daemon {
	t.Helper()
	ov := baseOverrides()
	id := businessCertificate(t)
	ov["difi.move.org.keystore.path"] = id.KeystorePath
	ov["difi.move.org.keystore.alias"] = id.Alias
	ov["difi.move.org.keystore.password"] = id.KeystorePassword
	for k, v := range extra {
		ov[k] = v
	}
	dir := t.TempDir()
	cfg, _, err := config.Load(config.Source{Overrides: ov, DataDir: dir})
	require.NoError(t, err)
	cfg.Server.Port = 0 // config check wants a real port; tests take any free one
	reg := registry(t, ident.Policy{AllowSynthetic: cfg.SyntheticOK}, ov)
	if wrap != nil {
		reg = wrap(reg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	d := &daemon{t: t, dir: dir}
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- integrasjonspunkt.Run(ctx, integrasjonspunkt.Options{Config: cfg, Logger: slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})), Started: time.Now(),
			Listening: func(a net.Addr) { addr <- a },
			Registry:  reg,
			Core: func(s *message.Service, q *queue.Queue) {
				d.core, d.q = s, q
				close(ready)
			}})
	}()
	select {
	case a := <-addr:
		d.base = "http://" + a.String()
	case err := <-done:
		cancel()
		t.Fatalf("daemon did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("daemon did not start within 30 s")
	}
	<-ready
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("daemon did not stop")
		}
	})
	return d
}

// resp is an answer read whole.
type resp struct {
	Code   int
	Header http.Header
	Body   []byte
}

func (r resp) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &m), "body: %s", r.Body)
	return m
}

func (d *daemon) do(method, path string, body io.Reader, hdr ...string) resp {
	d.t.Helper()
	req, err := http.NewRequest(method, d.base+path, body)
	require.NoError(d.t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(d.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(d.t, err)
	return resp{Code: res.StatusCode, Header: res.Header, Body: b}
}

func (d *daemon) get(path string) resp { return d.do("GET", path, nil) }

func (d *daemon) postJSON(path string, v any) resp {
	b, err := json.Marshal(v)
	require.NoError(d.t, err)
	return d.do("POST", path, bytes.NewReader(b), "Content-Type", "application/json")
}

func (d *daemon) put(path string, body []byte, hdr ...string) resp {
	return d.do("PUT", path, bytes.NewReader(body), hdr...)
}

// requireError checks the error body of local-api.md §2.7.
func requireError(t *testing.T, r resp, code int, exception string) map[string]any {
	t.Helper()
	require.Equal(t, code, r.Code, "body: %s", r.Body)
	m := r.JSON(t)
	for _, k := range []string{"timestamp", "status", "error", "message", "path"} {
		require.Contains(t, m, k)
	}
	require.EqualValues(t, code, m["status"])
	if exception != "" {
		if !strings.Contains(exception, ".") {
			exception = "no.difi.meldingsutveksling.exceptions." + exception
		}
		require.Equal(t, exception, m["exception"], "body: %s", r.Body)
	}
	return m
}

// doc is an SBD under construction as generic JSON.
type doc map[string]any

func newSBD(typ, standard, process, receiver string, business map[string]any) doc {
	h := map[string]any{
		"headerVersion":          "1.0",
		"documentIdentification": map[string]any{"standard": standard, "typeVersion": "2.0", "type": typ},
		"businessScope":          map[string]any{"scope": []any{map[string]any{"type": "ConversationId", "identifier": process}}},
	}
	if receiver != "" {
		h["receiver"] = []any{map[string]any{"identifier": map[string]any{"authority": "iso6523-actorid-upis", "value": receiver}}}
	}
	return doc{"standardBusinessDocumentHeader": h, typ: business}
}

func arkivSBD(receiver string) doc {
	return newSBD("arkivmelding", "urn:no:difi:arkivmelding:xsd::arkivmelding", archiveProc, "0192:"+receiver,
		map[string]any{"hoveddokument": "vedtak.pdf"})
}

func digitalSBD(receiver string) doc {
	return newSBD("digital", "urn:no:difi:digitalpost:xsd:digital::digital", vedtakProc, receiver, map[string]any{
		"sikkerhetsnivaa": 4, "hoveddokument": "vedtak.pdf", "tittel": "Vedtak", "spraak": "NO",
		"digitalPostInfo": map[string]any{"virkningsdato": "2030-01-01", "aapningskvittering": false},
	})
}

func avtaltSBD(receiver string) doc {
	return newSBD("avtalt", "urn:no:difi:avtalt:xsd::avtalt", avtaltProc, "0192:"+receiver,
		map[string]any{"identifier": "no.example.tilskudd.v1", "content": map[string]any{"sum": 100}})
}

func (s doc) header() map[string]any { return s["standardBusinessDocumentHeader"].(map[string]any) }
func (s doc) docID() map[string]any  { return s.header()["documentIdentification"].(map[string]any) }
func (s doc) scope() map[string]any {
	return s.header()["businessScope"].(map[string]any)["scope"].([]any)[0].(map[string]any)
}

// created posts an SBD, requires 200 and returns the answer and messageId.
func (d *daemon) create(s doc) (map[string]any, string) {
	d.t.Helper()
	r := d.postJSON("/api/messages/out", s)
	require.Equal(d.t, 200, r.Code, "body: %s", r.Body)
	m := r.JSON(d.t)
	id := doc(m).docID()["instanceIdentifier"].(string)
	return m, id
}

func cd(name, filename string) string {
	return "attachment; name=" + name + "; filename=" + filename
}

// arkivmeldingXML is a minimal Noark 5 arkivmelding with one journal entry
// referencing files.
func arkivmeldingXML(title string, files ...string) []byte {
	var refs strings.Builder
	for _, f := range files {
		fmt.Fprintf(&refs, `<dokumentbeskrivelse><dokumentobjekt><referanseDokumentfil>%s</referanseDokumentfil></dokumentobjekt></dokumentbeskrivelse>`, f)
	}
	return fmt.Appendf(nil, `<?xml version="1.0" encoding="utf-8"?>
<arkivmelding xmlns="http://www.arkivverket.no/standarder/noark5/arkivmelding" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <system>Sak</system><meldingId>1</meldingId><tidspunkt>2024-11-04T09:30:12+01:00</tidspunkt><antallFiler>%d</antallFiler>
  <mappe xsi:type="saksmappe"><systemID>2024/118</systemID><tittel>Leirskole</tittel>
    <registrering xsi:type="journalpost"><systemID>abc</systemID><tittel>Tilskudd</tittel><offentligTittel>%s</offentligTittel>%s
      <journalpostnummer>7</journalpostnummer></registrering>
  </mappe>
</arkivmelding>`, len(files), title, refs.String())
}

// receive hands an incoming message to the core as a channel would.
func (d *daemon) receive(s doc, service string, pkg []byte) string {
	d.t.Helper()
	b, err := json.Marshal(s)
	require.NoError(d.t, err)
	parsed, err := sbd.Decode(b)
	require.NoError(d.t, err)
	in := message.Received{Document: parsed, Service: service}
	if pkg != nil {
		in.Package = bytes.NewReader(pkg)
	}
	require.NoError(d.t, d.core.Receive(context.Background(), in))
	return parsed.MessageID()
}

// incomingSBD is a message as a DPO channel would hand it over.
func incomingSBD(process string, typ, standard string, business map[string]any) doc {
	s := newSBD(typ, standard, process, "0192:"+ownOrg, business)
	h := s.header()
	h["sender"] = []any{map[string]any{"identifier": map[string]any{"authority": "iso6523-actorid-upis", "value": "0192:" + dpoOrg}}}
	s.docID()["instanceIdentifier"] = newID()
	s.docID()["creationDateAndTime"] = sbd.FormatTime(time.Now())
	s.scope()["instanceIdentifier"] = newID()
	return s
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func statusesOf(t *testing.T, d *daemon, id string) []string {
	t.Helper()
	r := d.get("/api/statuses/" + id + "?size=100")
	require.Equal(t, 200, r.Code)
	var out []string
	for _, c := range r.JSON(t)["content"].([]any) {
		out = append(out, c.(map[string]any)["status"].(string))
	}
	return out
}

func outConversation(t *testing.T, d *daemon, id string) map[string]any {
	t.Helper()
	r := d.get("/api/conversations/messageId/" + id)
	require.Equal(t, 200, r.Code, "body: %s", r.Body)
	return r.JSON(t)
}

// eventually polls cond for up to 10 s: the work it waits for is
// asynchronous (webhook delivery, the deadline sweep).
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("condition not met within 10 s: " + msg)
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func TestMain(m *testing.M) {
	code := m.Run()
	removeStartupStores()
	if sims != nil {
		sims.Close()
	}
	os.Exit(code)
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

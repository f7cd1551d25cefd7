package dpf_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/packaging/cms"
	"github.com/efm-go/efm/packaging/maskinporten"
	"github.com/efm-go/efm/packaging/maskinporten/maskinportensim"
	"github.com/efm-go/efm/packaging/testpki"
	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/dpf"
	"github.com/efm-go/efm/transport/dpf/dpfsim"
)

const (
	senderOrg   = "910077473"
	receiverOrg = "910079018"
	svarUtOrg   = "971032146"
	kontoID     = "5f1c2d3e-4a5b-4c6d-8e7f-901234567890"
)

type env struct {
	sim   *dpfsim.Sim
	url   string
	pki   *testpki.PKI
	rest  *dpf.RESTClient
	inn   *dpf.SvarInn
	wire  *validating
	ctx   context.Context
	typer []string
	mp    *maskinporten.Client
}

// tokens adapts the Maskinporten client to dpf.TokenSource.
type tokens struct{ mp *maskinporten.Client }

func (t tokens) Token(ctx context.Context, org string) (string, error) {
	tok, err := t.mp.Token(ctx, maskinporten.Request{Scopes: []string{"ks:fiks"}, ConsumerOrg: org})
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

// sharedPKI is made once per test binary: RSA key generation dominates
// the run time otherwise.
var sharedPKI = sync.OnceValues(func() (*testpki.PKI, error) {
	dir, err := os.MkdirTemp("", "dpf-pki-")
	if err != nil {
		return nil, err
	}
	return testpki.Ensure(dir, []string{senderOrg, receiverOrg, svarUtOrg})
})

func newEnv(t *testing.T, soap ...dpfsim.SOAPAccount) *env {
	t.Helper()
	return newEnvWith(t, nil, soap...)
}

// newEnvWith is newEnv whose simulator options mod changes.
func newEnvWith(t *testing.T, mod func(*dpfsim.Options), soap ...dpfsim.SOAPAccount) *env {
	t.Helper()
	pki, err := sharedPKI()
	require.NoError(t, err)
	mpsim, err := maskinportensim.New(maskinportensim.Options{Roots: pki.Pool(),
		Clients: []maskinportensim.Client{maskinportensim.SandboxClient(senderOrg)}})
	require.NoError(t, err)
	mpsrv := httptest.NewServer(mpsim)
	t.Cleanup(mpsrv.Close)
	own := pki.Orgs[senderOrg]
	mp, err := maskinporten.New(maskinporten.Config{TokenURL: mpsrv.URL + "/token", Audience: mpsrv.URL + "/",
		ClientID: "MOVE_IP_" + senderOrg, Key: own.Key, Cert: own.Cert})
	require.NoError(t, err)
	su := pki.Orgs[svarUtOrg]
	typer := []string{"Brev", "Byggesøknad"}
	opts := dpfsim.Options{MaskinportenKey: mpsim.PublicKey(), Key: su.Key, Cert: su.Cert,
		IntegrasjonID: "integrasjon", IntegrasjonPassord: "hemmelig",
		REST:             []dpfsim.RESTAccount{{KontoID: kontoID, Org: senderOrg}},
		SvarInn:          []dpfsim.InnAccount{{Username: "inn-" + receiverOrg, Password: "pw", Org: receiverOrg, Cert: pki.Orgs[receiverOrg].Cert}},
		ForsendelseTyper: typer, SOAP: soap, Dir: t.TempDir()}
	if mod != nil {
		mod(&opts)
	}
	sim, err := dpfsim.New(opts)
	require.NoError(t, err)
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	v := newValidating(t)
	hc := &http.Client{Transport: v}
	rest, err := dpf.NewREST(dpf.RESTConfig{BaseURL: srv.URL, KontoID: kontoID, IntegrasjonID: "integrasjon",
		IntegrasjonPassord: "hemmelig", Tokens: tokens{mp}, HTTPClient: hc})
	require.NoError(t, err)
	inn, err := dpf.NewSvarInn(dpf.SvarInnConfig{BaseURL: srv.URL + dpfsim.InnBase, Username: "inn-" + receiverOrg, Password: "pw", HTTPClient: hc})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return &env{sim: sim, url: srv.URL, pki: pki, rest: rest, inn: inn, wire: v, ctx: ctx, typer: typer, mp: mp}
}

func doc(name, mime, content string) dpf.Dokument {
	return dpf.Dokument{Filnavn: name, MimeType: mime,
		Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(content)), nil }}
}

func (e *env) shipment(ref string) dpf.Forsendelse {
	cert := e.pki.Orgs[svarUtOrg].Cert
	return dpf.Forsendelse{Tittel: "Søknad om skjenkebevilling", Kryptert: true, EksternReferanse: ref,
		Mottaker:               dpf.Mottaker{Navn: "STOREVIK KOMMUNE", DigitalID: receiverOrg, Adresse: &dpf.Adresse{Adresselinje1: "Postboks 1", Postnummer: "0101", Poststed: "OSLO"}},
		Utskriftskonfigurasjon: &dpf.Utskrift{Tosidig: true}, Sikkerhetsniva: "HOYESTE", Forsendelsestype: "Brev",
		SvarSendesTil: &dpf.SvarSendesTil{Navn: "SANDKASSE ETAT", Type: "ORGANISASJON", DigitalID: senderOrg,
			Adresse: dpf.Adresse{Adresselinje1: "Postboks 1000 Sentrum", Postnummer: "0101", Poststed: "OSLO"}},
		MetadataFraAvleverendeSystem: &dpf.NoarkMetadata{Saksaar: 2026, Sakssekvensnummer: 12, Journalposttype: "U",
			Journaldato: "2026-01-16T00:00:00Z", Tittel: "Vedtak"},
		Dokumenter: []dpf.Dokument{
			dpf.Encrypted(doc("vedtak.pdf", "application/pdf", "%PDF-1.4 vedtak"), cert, cms.RSAESOAEP),
			dpf.Encrypted(doc("vedlegg.txt", "text/plain", "vedlegg"), cert, cms.RSAESOAEP),
		}}
}

func TestRESTClient_SendDecryptsAtSvarUtAndBridgesToSvarInn(t *testing.T) {
	e := newEnv(t)
	id, err := e.rest.Send(e.ctx, senderOrg, e.shipment("ref-1"), false)
	require.NoError(t, err)
	got, ok := e.sim.DocumentData(id, "vedtak.pdf")
	require.True(t, ok)
	assert.Equal(t, "%PDF-1.4 vedtak", string(got), "svarut decrypts each document with its own key")

	// The receiver's SvarInn account has it: list, download, decrypt, unzip.
	list, err := e.inn.New(e.ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, id, list[0].ID)
	assert.Equal(t, senderOrg, list[0].SvarSendesTil.Orgnr)
	rc, err := e.inn.Download(e.ctx, list[0])
	require.NoError(t, err)
	var plain bytes.Buffer
	rcv := e.pki.Orgs[receiverOrg]
	_, err = cms.Decrypt(&plain, rc, rcv.Key, cms.DecryptOptions{Cert: rcv.Cert})
	rc.Close()
	require.NoError(t, err)
	zr, err := zip.NewReader(bytes.NewReader(plain.Bytes()), int64(plain.Len()))
	require.NoError(t, err)
	require.Len(t, zr.File, 2)
	assert.Equal(t, "vedtak.pdf", zr.File[0].Name)

	sts, err := e.rest.Statuses(e.ctx, senderOrg, []string{id})
	require.NoError(t, err)
	require.Len(t, sts, 1)
	assert.Equal(t, "KLAR_FOR_MOTTAK", sts[0].Status)
	require.NoError(t, e.inn.Acknowledge(e.ctx, id))
	sts, err = e.rest.Statuses(e.ctx, senderOrg, []string{id})
	require.NoError(t, err)
	assert.Equal(t, "LEST", sts[0].Status, "kvitterMottak makes the shipment LEST for the sender")
	list, err = e.inn.New(e.ctx)
	require.NoError(t, err)
	assert.Empty(t, list)
}

func TestRESTClient_RetryFindsTheEarlierShipment(t *testing.T) {
	e := newEnv(t)
	// The first attempt reaches SvarUt but its answer is lost.
	e.sim.Faults().Add(dpfsim.Fault{Path: "/api/v3/kontoer/*/forsendelser/organisasjon", After: true, Times: 1})
	_, err := e.rest.Send(e.ctx, senderOrg, e.shipment("ref-2"), false)
	require.Error(t, err)
	assert.True(t, transport.Retryable(err), "a lost answer is retried: %v", err)
	id, err := e.rest.Send(e.ctx, senderOrg, e.shipment("ref-2"), true)
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"ref-2": 1}, e.sim.Deliveries(), "the retry must not send twice")
	ids, err := e.rest.IDsByEksternRef(e.ctx, senderOrg, "ref-2")
	require.NoError(t, err)
	assert.Equal(t, []string{id}, ids)
}

func TestRESTClient_Faults(t *testing.T) {
	tests := []struct {
		name      string
		mutate    func(e *env, f *dpf.Forsendelse)
		fault     *dpfsim.Fault
		retryable bool
	}{
		{"document not encrypted to svarut", func(e *env, f *dpf.Forsendelse) {
			f.Dokumenter[0] = dpf.Encrypted(doc("vedtak.pdf", "application/pdf", "x"), e.pki.Orgs[receiverOrg].Cert, cms.RSAESOAEP)
		}, nil, false},
		{"unknown shipment type", func(_ *env, f *dpf.Forsendelse) { f.Forsendelsestype = "Ukjent" }, nil, false},
		{"service unavailable", nil, &dpfsim.Fault{Path: "/api/v3/kontoer/*/forsendelser/organisasjon", Status: 503, Times: 1}, true},
		{"connection dropped", nil, &dpfsim.Fault{Path: "/api/v3/kontoer/*/forsendelser/organisasjon", Drop: true, Times: 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			f := e.shipment("ref-" + tt.name)
			if tt.mutate != nil {
				tt.mutate(e, &f)
			}
			if tt.fault != nil {
				e.sim.Faults().Add(*tt.fault)
			}
			_, err := e.rest.Send(e.ctx, senderOrg, f, false)
			require.Error(t, err)
			assert.Equal(t, tt.retryable, transport.Retryable(err), "%v", err)
			assert.Empty(t, e.sim.Deliveries())
		})
	}
}

func TestRESTClient_WrongIntegrationIsUnauthorized(t *testing.T) {
	e := newEnv(t)
	bad, err := dpf.NewREST(dpf.RESTConfig{BaseURL: e.url, KontoID: kontoID, IntegrasjonID: "integrasjon",
		IntegrasjonPassord: "feil", Tokens: tokens{e.mp}, HTTPClient: &http.Client{Transport: e.wire}})
	require.NoError(t, err)
	_, err = bad.ForsendelseTyper(e.ctx, senderOrg)
	require.ErrorIs(t, err, transport.ErrUnauthorized)
	assert.False(t, transport.Retryable(err))
	typer, err := e.rest.ForsendelseTyper(e.ctx, senderOrg)
	require.NoError(t, err)
	assert.Equal(t, e.typer, typer)
}

func TestNewREST_NamesEveryMissingKey(t *testing.T) {
	_, err := dpf.NewREST(dpf.RESTConfig{})
	require.Error(t, err)
	for _, k := range []string{"endpointUrl", "kontoid", "integrasjonId", "integrasjonPassord"} {
		assert.Contains(t, err.Error(), k)
	}
}

func TestSvarInn_MottakFeiletAndForeignDownloadURL(t *testing.T) {
	e := newEnv(t)
	id := e.sim.AddIncoming(receiverOrg, dpfsim.Incoming{Tittel: "ødelagt", Corrupt: true, Files: map[string][]byte{"a.pdf": []byte("x")}})
	list, err := e.inn.New(e.ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)

	foreign := list[0]
	foreign.DownloadURL = "http://example.invalid/tjenester/svarinn/forsendelse/" + id
	_, err = e.inn.Download(e.ctx, foreign)
	require.ErrorIs(t, err, transport.ErrMalformed, "credentials never go to another host")

	require.NoError(t, e.inn.Failed(e.ctx, id, "Forsendelsen kunne ikke dekrypteres", true))
	assert.Equal(t, []dpfsim.Failure{{ID: id, Feilmelding: "Forsendelsen kunne ikke dekrypteres", Permanent: true}}, e.sim.Failures(receiverOrg))
	assert.Zero(t, e.sim.Waiting(receiverOrg))
	err = e.inn.Acknowledge(e.ctx, id)
	var se *transport.StatusError
	require.True(t, errors.As(err, &se))
	assert.Equal(t, http.StatusNotFound, se.StatusCode)
}

func TestSvarInn_WrongPasswordIsUnauthorized(t *testing.T) {
	e := newEnv(t)
	bad, err := dpf.NewSvarInn(dpf.SvarInnConfig{BaseURL: e.url + dpfsim.InnBase, Username: "inn-" + receiverOrg, Password: "feil"})
	require.NoError(t, err)
	_, err = bad.New(e.ctx)
	require.ErrorIs(t, err, transport.ErrUnauthorized)
}

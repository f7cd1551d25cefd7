package addressing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/addressing/process"
	"github.com/efm-go/efm/addressing/sr"
)

// summary renders records as "SERVICE[:short doc types][@level]" for compact expectations.
func summary(recs []sr.ServiceRecord) []string {
	out := []string{}
	for _, r := range recs {
		s := r.Service.Identifier
		var docs []string
		for _, d := range r.DocumentTypes {
			docs = append(docs, process.MessageType(d))
		}
		if r.Service.Identifier == "DPI" || r.Service.Identifier == "DPV" && strings.Contains(r.Process, "digitalpost") {
			s += ":" + strings.Join(docs, "+")
		}
		if r.Service.SecurityLevel != nil {
			s += fmt.Sprintf("@%d", *r.Service.SecurityLevel)
		}
		if r.Service.Identifier == "DPE" {
			s += "/" + r.Service.EndpointURL
		}
		out = append(out, s)
	}
	return out
}

var (
	admin    = process.Administrasjon
	kultur   = "urn:no:difi:profile:arkivmelding:kulturIdrettOgFritid:ver1.0"
	plan     = "urn:no:difi:profile:arkivmelding:planByggOgGeodata:ver1.0"
	journal  = process.EInnsynJournal
	meeting  = process.EInnsynMeeting
	innsyn   = process.EInnsynInnsyn
	vedtak   = process.Vedtak
	info     = process.Info
	avtalt   = process.AvtaltAvtalt
	response = process.ArkivResponse
)

// TestRouting is one table per routing rule of spec/addressing.md §4, each case a real SR
// lookup over HTTP that the SR simulator computes from the register simulators.
func TestRouting(t *testing.T) {
	e := newEnv(t, sender)
	type tc struct {
		name, id, process string
		level             int
		want              []string
		wantErr           error
	}
	rules := map[string][]tc{
		"4.3 archive DPO > DPF > DPV": {
			{"on ELMA for the process → DPO", "910075918", admin, 0, []string{"DPO"}, nil},
			{"on ELMA for another of its four → DPO", "910075918", plan, 0, []string{"DPO"}, nil},
			{"on ELMA, not for this process → DPV", "910075918", kultur, 0, []string{"DPV"}, nil},
			{"on ELMA, not for this process, level 4 → no record", "910075918", kultur, 4, nil, ErrProcessNotSupported},
			{"response process on ELMA → DPO", "910075918", response, 0, []string{"DPO"}, nil},
			{"on ELMA without VirkSert certificate → 404", "910078003", admin, 0, nil, ErrCertificateNotFound},
			{"SvarUt levels 3 and 4, none asked → DPF at 4", "910079018", admin, 0, []string{"DPF@4"}, nil},
			{"SvarUt levels 3 and 4, level 3 → DPF at 3", "910079018", admin, 3, []string{"DPF@3"}, nil},
			{"SvarUt levels 3 and 4, level 4 → DPF at 4", "910079018", admin, 4, []string{"DPF@4"}, nil},
			{"SvarUt level 3 only → DPF at 3", "910080008", admin, 0, []string{"DPF@3"}, nil},
			{"SvarUt level 3 only, level 3", "910080008", kultur, 3, []string{"DPF@3"}, nil},
			{"SvarUt level 3 only, level 4 → 400", "910080008", admin, 4, nil, ErrSecurityLevel},
			{"no address register → DPV", "910081004", admin, 0, []string{"DPV"}, nil},
			{"no address register, level 3 → DPV", "910081004", admin, 3, []string{"DPV"}, nil},
			{"no address register, level 4 → 400", "910081004", admin, 4, nil, ErrSecurityLevel},
			{"eInnsyn only, archive process → DPV", "810074582", admin, 0, []string{"DPV"}, nil},
			{"sub-unit → as a main unit", "910085018", admin, 0, []string{"DPV"}, nil},
		},
		"4.4 eInnsyn and agreed": {
			{"journalpost → DPE data", "810074582", journal, 0, []string{"DPE/data"}, nil},
			{"meeting → DPE meeting", "810074582", meeting, 0, []string{"DPE/meeting"}, nil},
			{"innsynskrav → DPE innsyn", "810074582", innsyn, 0, []string{"DPE/innsyn"}, nil},
			{"DPO and DPE org, archive → DPO", "910076787", admin, 0, []string{"DPO"}, nil},
			{"DPO and DPE org, journalpost → DPE", "910076787", journal, 0, []string{"DPE/data"}, nil},
			{"not on eInnsyn → nothing", "910075918", journal, 0, nil, ErrProcessNotSupported},
			{"agreed process on ELMA → DPO", "910077473", avtalt, 0, []string{"DPO"}, nil},
			{"agreed process not on ELMA → nothing", "910081004", avtalt, 0, nil, ErrProcessNotSupported},
			{"digital post process for an organisation → nothing", "910075918", vedtak, 0, nil, ErrProcessNotSupported},
		},
		"7.3 deleted and bankrupt": {
			{"removed (410) → not found", "910082000", admin, 0, nil, ErrReceiverNotFound},
			{"slettedato in the past → not found", "910083007", admin, 0, nil, ErrReceiverNotFound},
			{"unknown to Enhetsregisteret → not found", "910087002", admin, 0, nil, ErrReceiverNotFound},
			{"bankrupt → normal records", "910084003", admin, 0, []string{"DPO"}, nil},
		},
		"4.5 citizens by KRR state": {
			{"active mailbox, vedtak → DPI digital", "06068700602", vedtak, 0, []string{"DPI:digital"}, nil},
			{"active mailbox, info → DPI digital", "06068700602", info, 0, []string{"DPI:digital"}, nil},
			{"e-Boks mailbox → DPI digital", "09118532322", vedtak, 0, []string{"DPI:digital"}, nil},
			{"reserved, no mailbox, vedtak → print", "27126900142", vedtak, 0, []string{"DPI:print"}, nil},
			{"reserved, no mailbox, info → print + DPV", "27126900142", info, 0, []string{"DPI:print", "DPV:digital_dpv"}, nil},
			{"reserved, mailbox, vedtak → print", "27127000293", vedtak, 0, []string{"DPI:print"}, nil},
			{"reserved, mailbox, info → DPI digital", "27127000293", info, 0, []string{"DPI:digital"}, nil},
			{"not notifiable, vedtak → print", "01010510097", vedtak, 0, []string{"DPI:print"}, nil},
			{"not notifiable, info → print + DPV", "01010510097", info, 0, []string{"DPI:print", "DPV:digital_dpv"}, nil},
			{"no mailbox, vedtak → print + DPV", "02020610037", vedtak, 0, []string{"DPI:print", "DPV:digital_dpv"}, nil},
			{"no mailbox, info → print + DPV", "02020610037", info, 0, []string{"DPI:print", "DPV:digital_dpv"}, nil},
			{"SLETTET, vedtak → print", "03030710087", vedtak, 0, []string{"DPI:print"}, nil},
			{"SLETTET, info → print + DPV", "03030710087", info, 0, []string{"DPI:print", "DPV:digital_dpv"}, nil},
			{"IKKE_REGISTRERT, vedtak → print", "04040810027", vedtak, 0, []string{"DPI:print"}, nil},
			{"IKKE_REGISTRERT, info → print + DPV", "04040810027", info, 0, []string{"DPI:print", "DPV:digital_dpv"}, nil},
			{"secret address, vedtak → DPV only", "05050910077", vedtak, 0, []string{"DPV:digital_dpv"}, nil},
			{"secret address, info → DPV only", "05050910077", info, 0, []string{"DPV:digital_dpv"}, nil},
			{"D-number, active mailbox → DPI digital", "41018510187", vedtak, 0, []string{"DPI:digital"}, nil},
			{"archive process for a citizen → nothing", "06068700602", admin, 0, nil, ErrProcessNotSupported},
		},
	}
	for rule, cases := range rules {
		t.Run(rule, func(t *testing.T) {
			for _, tt := range cases {
				t.Run(tt.name, func(t *testing.T) {
					ans, err := e.res.lookup(context.Background(), mustID(t, tt.id), tt.process, tt.level, "")
					if tt.wantErr != nil {
						require.ErrorIs(t, err, tt.wantErr)
						if len(tt.id) == 11 {
							assert.NotContains(t, err.Error(), tt.id)
						}
						return
					}
					require.NoError(t, err)
					assert.Equal(t, tt.want, summary(ans.ServiceRecords))
					for _, r := range ans.ServiceRecords {
						assert.Equal(t, tt.process, r.Process)
					}
				})
			}
		})
	}
}

func TestRouting_SenderMissingInEnhetsregisteret(t *testing.T) {
	e := newEnv(t, "910086006")
	_, err := e.res.lookup(context.Background(), mustID(t, "02020610037"), vedtak, 0, "")
	require.ErrorIs(t, err, ErrReceiverNotFound)
	assert.Contains(t, Description(err), "Sender 910086006 not found in BRREG")
	// Without a print record the sender's address is not needed.
	_, err = e.res.lookup(context.Background(), mustID(t, "06068700602"), vedtak, 0, "")
	require.NoError(t, err)
}

func TestRouting_WithoutProcess(t *testing.T) {
	e := newEnv(t, sender)
	ans, err := e.res.lookup(context.Background(), mustID(t, "910076787"), "", 0, "")
	require.NoError(t, err)
	services := map[string]string{}
	for _, r := range ans.ServiceRecords {
		services[r.Process] = r.Service.Identifier
	}
	assert.Equal(t, "DPO", services[admin])
	assert.Equal(t, "DPO", services[kultur])
	assert.Equal(t, "DPE", services[journal])
	assert.Equal(t, "DPE", services[innsyn])
	assert.Equal(t, "DPO", services[avtalt])
	assert.Equal(t, "FJELLSTRAND ARKIVVERK", ans.InfoRecord.OrganizationName)
	assert.Equal(t, "ORGL", ans.InfoRecord.EntityType.Name)

	ans, err = e.res.lookup(context.Background(), mustID(t, "910075918"), "", 4, "")
	require.NoError(t, err, "at level 4 the missing DPV records simply drop out")
	for _, r := range ans.ServiceRecords {
		assert.NotEqual(t, "DPV", r.Service.Identifier)
	}

	ans, err = e.res.lookup(context.Background(), mustID(t, "06068700602"), "", 0, "")
	require.NoError(t, err)
	assert.Equal(t, []string{"DPI:digital", "DPI:digital"}, summary(ans.ServiceRecords))
	assert.Equal(t, "citizen", ans.InfoRecord.EntityType.Name)
}

func TestRouting_DeletedDetail(t *testing.T) {
	e := newEnv(t, sender)
	e.enableBrreg(t)
	_, err := e.res.Resolve(context.Background(), mustID(t, "910083007"), admin)
	require.ErrorIs(t, err, ErrReceiverDeleted)
	require.ErrorIs(t, err, ErrReceiverNotFound)
	assert.Contains(t, Description(err), "deleted from Enhetsregisteret on 2023-06-30")
	_, err = e.res.Resolve(context.Background(), mustID(t, "910082000"), admin)
	require.ErrorIs(t, err, ErrReceiverDeleted)
	assert.Contains(t, Description(err), "2019-12-31")
	_, err = e.res.Resolve(context.Background(), mustID(t, "910087002"), admin)
	require.ErrorIs(t, err, ErrReceiverNotFound)
	assert.NotErrorIs(t, err, ErrReceiverDeleted, "unknown is not deleted")

	rt, err := e.res.Resolve(context.Background(), mustID(t, "910084003"), admin)
	require.NoError(t, err, "bankrupt receivers are never blocked")
	assert.Equal(t, "DPO", rt.Service)
	assert.Contains(t, e.logs.String(), "bankrupt")
	assert.Contains(t, e.logs.String(), "910084003")
}

func TestResolveMessage(t *testing.T) {
	e := newEnv(t, sender)
	ctx := context.Background()
	tests := []struct {
		name         string
		req          Request
		enabled      map[string]bool
		wantService  string
		wantErr      error
		wantCert     bool
		wantDescPart string
	}{
		{"archive to DPO", Request{Receiver: mustID(t, "910075918"), Process: admin, DocumentType: process.DocArkivmelding}, nil, "DPO", nil, true, ""},
		{"archive to DPF", Request{Receiver: mustID(t, "910079018"), Process: admin, DocumentType: process.DocArkivmelding, SecurityLevel: 3}, nil, "DPF", nil, true, ""},
		{"archive to DPV", Request{Receiver: mustID(t, "910081004"), Process: admin, DocumentType: process.DocArkivmelding}, nil, "DPV", nil, false, ""},
		{"digital to citizen with mailbox", Request{Receiver: mustID(t, "06068700602"), Process: vedtak, DocumentType: process.DocDigital}, nil, "DPI", nil, true, ""},
		{"print to reserved citizen", Request{Receiver: mustID(t, "27126900142"), Process: vedtak, DocumentType: process.DocPrint}, nil, "DPI", nil, true, ""},
		{"digital to reserved citizen is refused", Request{Receiver: mustID(t, "27126900142"), Process: vedtak, DocumentType: process.DocDigital}, nil, "", ErrDocumentTypeNotSupported, false, process.DocDigital},
		{"digital_dpv to citizen without mailbox", Request{Receiver: mustID(t, "02020610037"), Process: info, DocumentType: process.DocDigitalDPV}, nil, "DPV", nil, false, ""},
		{"print to secret address is refused", Request{Receiver: mustID(t, "05050910077"), Process: vedtak, DocumentType: process.DocPrint}, nil, "", ErrDocumentTypeNotSupported, false, ""},
		{"publisering to eInnsyn", Request{Receiver: mustID(t, "810074582"), Process: journal, DocumentType: process.DocPublisering}, nil, "DPE", nil, true, ""},
		{"channel disabled", Request{Receiver: mustID(t, "910075918"), Process: admin, DocumentType: process.DocArkivmelding}, map[string]bool{"DPV": true}, "", ErrServiceNotEnabled, false, "DPO"},
		{"no document type: legacy fallback", Request{Receiver: mustID(t, "06068700602"), Process: info}, nil, "DPI", nil, true, ""},
		{"unknown receiver", Request{Receiver: mustID(t, "910087002"), Process: admin, DocumentType: process.DocArkivmelding}, nil, "", ErrReceiverNotFound, false, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.res.cfg.EnabledServices = tt.enabled
			rt, err := e.res.ResolveMessage(ctx, tt.req)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				status, exc := SendStatus(err)
				assert.Equal(t, 400, status)
				assert.NotEmpty(t, exc)
				assert.Contains(t, Description(err), tt.wantDescPart)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantService, rt.Service)
			assert.Equal(t, tt.wantCert, rt.Certificate != nil)
			assert.NotContains(t, fmt.Sprintf("%v %+v", rt, rt.Receiver), "06068700602")
		})
	}
	e.res.cfg.EnabledServices = nil
	rt, err := e.res.ResolvePrint(ctx)
	require.NoError(t, err)
	assert.Equal(t, "DPI", rt.Service)
	org, _ := rt.Receiver.Org()
	assert.Equal(t, ident.OrgNumber("984661185"), org)
	require.NotNil(t, rt.Certificate)
}

// TestCitizenNeverCached: two resolutions of one citizen make two KRR lookups at the simulator
// (§5.3: no cross-message cache for persons), while an organisation is served from the cache.
func TestCitizenNeverCached(t *testing.T) {
	e := newEnv(t, sender)
	ctx := context.Background()
	const krrRoute = "POST /rest/v1/personer"
	id := mustID(t, "06068700602")
	for i := 1; i <= 2; i++ {
		rt, err := e.res.ResolveMessage(ctx, Request{Receiver: id, Process: vedtak, DocumentType: process.DocDigital})
		require.NoError(t, err)
		assert.Equal(t, "DPI", rt.Service)
		assert.Equal(t, i, e.sims.KRR.Requests(krrRoute), "KRR lookups after %d resolutions", i)
	}
	_, err := e.res.Capabilities(ctx, "06068700602", CapabilitiesQuery{})
	require.NoError(t, err)
	assert.Equal(t, 3, e.sims.KRR.Requests(krrRoute), "capabilities for a citizen is a fresh lookup too")

	// A reservation made between two sends is seen by the second.
	p, _ := e.seed.Person("06068700602")
	require.NotNil(t, p)
	w := krrWire(p)
	w.Reservasjon = "JA"
	e.sims.KRR.SetPerson(w)
	_, err = e.res.ResolveMessage(ctx, Request{Receiver: id, Process: vedtak, DocumentType: process.DocDigital})
	require.ErrorIs(t, err, ErrDocumentTypeNotSupported)

	org := mustID(t, "910075918")
	before := e.sims.SR.Requests("GET /identifier/{id}/process/{process}")
	for range 3 {
		_, err := e.res.Resolve(ctx, org, admin)
		require.NoError(t, err)
	}
	assert.Equal(t, before+1, e.sims.SR.Requests("GET /identifier/{id}/process/{process}"), "organisations are cached")
	assert.Equal(t, int64(2), e.res.Metrics().CacheHits.Load())
}

func TestOrgCacheExpiresAndEvicts(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	e := newEnv(t, sender, func(c *Config, _ *sr.Config) { c.Now = func() time.Time { return now } })
	ctx := context.Background()
	org := mustID(t, "910075918")
	const route = "GET /identifier/{id}/process/{process}"
	_, err := e.res.Resolve(ctx, org, admin)
	require.NoError(t, err)
	now = now.Add(4*time.Minute + 59*time.Second)
	_, err = e.res.Resolve(ctx, org, admin)
	require.NoError(t, err)
	assert.Equal(t, 1, e.sims.SR.Requests(route), "within 5 minutes")
	now = now.Add(2 * time.Second)
	_, err = e.res.Resolve(ctx, org, admin)
	require.NoError(t, err)
	assert.Equal(t, 2, e.sims.SR.Requests(route), "after 5 minutes the SR is asked again")

	// Another security level is another key.
	_, err = e.res.ResolveMessage(ctx, Request{Receiver: org, Process: admin, SecurityLevel: 3})
	require.NoError(t, err)
	assert.Equal(t, 3, e.sims.SR.Requests(route))

	// An SR 404 evicts: the organisation disappears from ELMA and VirkSert meanwhile.
	e.sims.SR.FailNext("/identifier/", 404, 1)
	_, err = e.res.ResolveMessage(ctx, Request{Receiver: org, Process: kultur})
	require.Error(t, err)
	_, err = e.res.Resolve(ctx, org, admin)
	require.NoError(t, err)
	assert.Equal(t, 5, e.sims.SR.Requests(route), "the cached admin answer was evicted by the 404")
}

// TestRegistryFailures: down, slow, erroring or forged answers give ErrRegistryUnavailable (the
// pipeline retries), never "not found", and count in the metrics.
func TestRegistryFailures(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		break_ func(e *env)
		id     string
	}{
		{"SR 503", func(e *env) { e.sims.SR.FailNext("/identifier/", 503, 1) }, "910075918"},
		{"SR 500 for a citizen", func(e *env) { e.sims.SR.FailNext("/identifier/", 500, 1) }, "06068700602"},
		{"SR slow", func(e *env) { e.sims.SR.SetDelay(3 * time.Second) }, "910075918"},
		{"SR drops the connection", func(e *env) { e.sims.SR.AddFault(faultDrop("/identifier/")) }, "910075918"},
		{"SR malformed body", func(e *env) { e.sims.SR.AddFault(faultMalformed("/identifier/")) }, "910075918"},
		{"SR wrong signature", func(e *env) { e.sims.SR.BadSignatureNext(1) }, "910075918"},
		{"KRR down behind the SR", func(e *env) { e.sims.KRR.FailNext("/rest/", 503, 1) }, "06068700602"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, sender, func(_ *Config, s *sr.Config) { s.Timeout = 300 * time.Millisecond })
			tt.break_(e)
			_, err := e.res.Resolve(ctx, mustID(t, tt.id), processFor(tt.id))
			require.ErrorIs(t, err, ErrRegistryUnavailable)
			assert.False(t, errors.Is(err, ErrReceiverNotFound))
			status, _ := SendStatus(err)
			assert.Equal(t, 500, status)
			assert.NotContains(t, err.Error(), "06068700602")
			assert.Equal(t, int64(1), e.res.Metrics().RegistryFailures.Load())

			e.sims.SR.Reset()
			e.sims.KRR.Reset()
			rt, err := e.res.Resolve(ctx, mustID(t, tt.id), processFor(tt.id))
			require.NoError(t, err, "the retry succeeds once the registry recovers")
			assert.NotEmpty(t, rt.Service)
		})
	}
}

func processFor(id string) string {
	if len(id) == 11 {
		return vedtak
	}
	return admin
}

// TestReceiverCertificateParsedOnce: every message to a receiver carries
// the same certificate, parsed once; a record with another certificate (a
// renewal) gets its own.
func TestReceiverCertificateParsedOnce(t *testing.T) {
	e := newEnv(t, sender)
	ctx := context.Background()
	req := Request{Receiver: mustID(t, "910075918"), Process: admin, DocumentType: process.DocArkivmelding}
	a, err := e.res.ResolveMessage(ctx, req)
	require.NoError(t, err)
	b, err := e.res.ResolveMessage(ctx, req)
	require.NoError(t, err)
	require.NotNil(t, a.Certificate)
	assert.Same(t, a.Certificate, b.Certificate)

	other, err := e.res.ResolveMessage(ctx, Request{Receiver: mustID(t, "910079018"), Process: admin,
		DocumentType: process.DocArkivmelding, SecurityLevel: 3})
	require.NoError(t, err)
	require.NotEqual(t, a.Record.PemCertificate, other.Record.PemCertificate)
	assert.NotEqual(t, a.Certificate.Raw, other.Certificate.Raw)

	rec := a.Record
	rec.PemCertificate = "not a certificate"
	_, err = e.res.certificate(&rec)
	assert.Error(t, err, "an unreadable certificate is an error, and is not cached")
	_, err = e.res.certificate(&rec)
	assert.Error(t, err)
}

// Package addressing decides where a message goes: it validates the receiver offline (package
// ident), asks the Service Registry (package sr) and turns its service records into one channel
// and route (spec/addressing.md §3.3), and builds the capabilities answer of the local API (§8).
//
// Caching follows §5.3 and §9 exactly: SR answers about organisations live at most 5 minutes in
// memory (key: primary identifier, process, security level, print flag; evicted on a 404);
// answers about citizens are never cached, never stored and never logged — every resolution of a
// citizen is a fresh SR lookup, which is a fresh KRR lookup.
//
// Sub-packages: one client per register (sr, krr, elma, brreg, folkereg, svarut), each with a
// simulator beside it (…sim), regsim to start them all, seed for the simulators' data, process for
// the SR's process table. This package never imports the core (integrasjonspunkt/...).
package addressing

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/efm-go/efm/addressing/brreg"
	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/addressing/krr"
	"github.com/efm-go/efm/addressing/process"
	"github.com/efm-go/efm/addressing/sr"
)

// ID and PersonID are the identifier types of package ident, named here for callers that only
// import addressing.
type (
	ID       = ident.ID
	PersonID = ident.PersonID
)

// MaxOrgCacheTTL is the longest an organisation's SR answer may be reused (§9, as the reference).
const MaxOrgCacheTTL = 5 * time.Minute

// Config configures a Resolver.
type Config struct {
	// SR must not be nil.
	SR *sr.Client
	// KRR is needed only for ResolvePrint (print without a receiver, §3.3).
	KRR *krr.Client
	// Brreg, when set, is the optional direct Enhetsregisteret call of §7.4 (default off): after
	// an SR 404 for an organisation it tells "deleted on <date>", and it warns about bankrupt
	// receivers. It never decides a channel.
	Brreg *brreg.Client
	// Policy holds difi.move.identifier.synthetic.allow.
	Policy ident.Policy
	// EnabledServices are the locally enabled channels (difi.move.feature.enableDPO, …) by
	// service identifier; nil enables all.
	EnabledServices map[string]bool
	// DefaultProcess is difi.move.arkivmelding.default-process; default the administrasjon process.
	DefaultProcess string
	// DisablePrintLookup must equal the SR client's DisablePrintLookup
	// (difi.move.feature.enableDsfPrintLookup=false); here it only feeds the cache key (§5.3).
	DisablePrintLookup bool
	// OrgCacheTTL defaults to and is capped at MaxOrgCacheTTL; negative disables the cache.
	OrgCacheTTL time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

// Metrics are counters for the metrics endpoint. Read them with Load.
type Metrics struct {
	// SRLookups counts identifier requests sent to the SR.
	SRLookups atomic.Int64
	// CacheHits counts organisation answers served from the 5-minute cache.
	CacheHits atomic.Int64
	// RegistryFailures counts lookups that failed with ErrRegistryUnavailable (down, slow, 5xx,
	// bad signature): the pipeline retries these.
	RegistryFailures atomic.Int64
	// NotFound counts receivers the SR did not know.
	NotFound atomic.Int64
	// InvalidIdentifiers counts identifiers rejected offline.
	InvalidIdentifiers atomic.Int64
}

// Resolver resolves receivers. Safe for concurrent use.
type Resolver struct {
	cfg     Config
	log     *slog.Logger
	metrics Metrics

	mu    sync.Mutex
	cache map[cacheKey]cacheEntry
	// certs holds receiver certificates parsed from service records, by
	// their PEM: every message to a receiver carries the same one, and
	// parsing it per message was a measurable share of the daemon's CPU per
	// delivered message (issue 18). A parsed certificate is only read.
	certs map[string]*x509.Certificate
}

// maxCerts bounds Resolver.certs; when full it starts over.
const maxCerts = 1024

// certificate parses a service record's certificate, once per PEM.
func (r *Resolver) certificate(rec *sr.ServiceRecord) (*x509.Certificate, error) {
	r.mu.Lock()
	c, ok := r.certs[rec.PemCertificate]
	r.mu.Unlock()
	if ok {
		return c, nil
	}
	c, err := rec.Certificate()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.certs == nil || len(r.certs) >= maxCerts {
		r.certs = map[string]*x509.Certificate{}
	}
	r.certs[rec.PemCertificate] = c
	r.mu.Unlock()
	return c, nil
}

type cacheKey struct {
	primary, process string
	level            int
	print            bool
}

type cacheEntry struct {
	ans   *sr.Answer
	until time.Time
}

// New returns a Resolver.
func New(cfg Config) (*Resolver, error) {
	if cfg.SR == nil {
		return nil, errors.New("addressing: Config.SR must not be nil")
	}
	if cfg.DefaultProcess == "" {
		cfg.DefaultProcess = process.Administrasjon
	}
	if cfg.OrgCacheTTL == 0 || cfg.OrgCacheTTL > MaxOrgCacheTTL {
		cfg.OrgCacheTTL = MaxOrgCacheTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Resolver{cfg: cfg, log: cfg.Logger.With(slog.String("component", "addressing")), cache: map[cacheKey]cacheEntry{}}, nil
}

// Metrics returns the live counters.
func (r *Resolver) Metrics() *Metrics { return &r.metrics }

// ParseID validates an identifier offline with the configured Policy.
func (r *Resolver) ParseID(s string) (ID, error) {
	id, err := r.cfg.Policy.ParseID(s)
	if err != nil {
		r.metrics.InvalidIdentifiers.Add(1)
		return ID{}, err
	}
	return id, nil
}

// Route is the outcome of a resolution: the channel and what the channel needs. For a citizen it
// holds KRR data (mailbox, notification addresses, certificate): it lives in memory for the
// processing of one message only and is never stored, queued or logged (§5.3). What may be
// persisted is Service.
type Route struct {
	// Service is the service identifier: DPO, DPV, DPI, DPF, DPE, DPH.
	Service      string
	Process      string
	DocumentType string
	Receiver     ID
	// Record is the chosen service record, Info the receiver's info record.
	Record sr.ServiceRecord
	Info   sr.InfoRecord
	// Certificate is the receiver's encryption certificate (nil for DPV).
	Certificate *x509.Certificate
	// SecurityLevel is the DPF record's level (0 otherwise).
	SecurityLevel int
}

// String, Format and LogValue keep a Route that reaches a log line free of personal data: only
// the service, process and (masked) receiver are printed, never the record's mailbox, contact
// data or certificate.
func (rt Route) String() string {
	return "route{" + rt.Service + " " + rt.Process + " " + rt.Receiver.String() + "}"
}

// Format prints String for every verb.
func (rt Route) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(rt.String())) }

// LogValue is the slog form of String.
func (rt Route) LogValue() slog.Value {
	return slog.GroupValue(slog.String("service", rt.Service), slog.String("process", rt.Process),
		slog.String("receiver", rt.Receiver.String()))
}

// Request is a message's addressing data.
type Request struct {
	Receiver ID
	Process  string
	// DocumentType is the SBD's documentIdentification.standard; empty only for the legacy
	// fallbacks of §3.3.
	DocumentType string
	// SecurityLevel is the business message's sikkerhetsnivaa (0 = not set).
	SecurityLevel  int
	ConversationID string
}

// Resolve picks the route for a receiver and process without a document type (§3.3 legacy
// fallback): a DPI record if any, else the default archive process's record, else a DPE record,
// else the first record.
func (r *Resolver) Resolve(ctx context.Context, id ID, process string) (Route, error) {
	return r.ResolveMessage(ctx, Request{Receiver: id, Process: process})
}

// ResolveMessage picks the route for a message (§3.3): the records for its process, then the
// first whose documentTypes contains its document type; the channel must be enabled locally.
func (r *Resolver) ResolveMessage(ctx context.Context, req Request) (Route, error) {
	if req.Receiver.Kind() == ident.KindUnknown {
		r.metrics.InvalidIdentifiers.Add(1)
		return Route{}, ident.ErrUnrecognised
	}
	if req.Process == "" {
		return Route{}, &Error{Err: ErrProcessNotSupported, Description: "no process given"}
	}
	ans, err := r.lookup(ctx, req.Receiver, req.Process, req.SecurityLevel, req.ConversationID)
	if err != nil {
		return Route{}, err
	}
	var recs []sr.ServiceRecord
	for _, rec := range ans.ServiceRecords {
		if rec.Process == req.Process {
			recs = append(recs, rec)
		}
	}
	if len(recs) == 0 {
		return Route{}, &Error{Err: ErrProcessNotSupported, Description: "Process " + req.Process + " not found for receiver " + req.Receiver.String()}
	}
	var chosen *sr.ServiceRecord
	if req.DocumentType != "" {
		for i := range recs {
			if slices.Contains(recs[i].DocumentTypes, req.DocumentType) {
				chosen = &recs[i]
				break
			}
		}
		if chosen == nil {
			return Route{}, &Error{Err: ErrDocumentTypeNotSupported,
				Description: "document type " + req.DocumentType + " is not accepted by the receiver for process " + req.Process}
		}
	} else {
		chosen = fallback(recs, r.cfg.DefaultProcess)
	}
	if r.cfg.EnabledServices != nil && !r.cfg.EnabledServices[chosen.Service.Identifier] {
		return Route{}, &Error{Err: ErrServiceNotEnabled, Description: "channel " + chosen.Service.Identifier + " is not enabled"}
	}
	rt := Route{Service: chosen.Service.Identifier, Process: chosen.Process, DocumentType: req.DocumentType,
		Receiver: req.Receiver, Record: *chosen, Info: ans.InfoRecord}
	if chosen.Service.SecurityLevel != nil {
		rt.SecurityLevel = *chosen.Service.SecurityLevel
	}
	if chosen.PemCertificate != "" {
		c, err := r.certificate(chosen)
		if err != nil {
			return Route{}, &Error{Err: ErrRegistryUnavailable, Description: "receiver certificate in the service record is unreadable", cause: err}
		}
		rt.Certificate = c
	}
	return rt, nil
}

func fallback(recs []sr.ServiceRecord, defaultProcess string) *sr.ServiceRecord {
	for i := range recs {
		if recs[i].Service.Identifier == "DPI" {
			return &recs[i]
		}
	}
	for i := range recs {
		if recs[i].Process == defaultProcess {
			return &recs[i]
		}
	}
	for i := range recs {
		if recs[i].Service.Identifier == "DPE" {
			return &recs[i]
		}
	}
	return &recs[0]
}

// ResolvePrint is §3.3 "print without a receiver identifier": channel DPI, receiver = the print
// provider from KRR's print endpoint (cached 5 minutes by the KRR client).
func (r *Resolver) ResolvePrint(ctx context.Context) (Route, error) {
	if r.cfg.KRR == nil {
		return Route{}, errors.New("addressing: Config.KRR is needed for print without a receiver")
	}
	if r.cfg.EnabledServices != nil && !r.cfg.EnabledServices["DPI"] {
		return Route{}, &Error{Err: ErrServiceNotEnabled, Description: "channel DPI is not enabled"}
	}
	pc, err := r.cfg.KRR.PrintCertificate(ctx)
	if err != nil {
		r.metrics.RegistryFailures.Add(1)
		return Route{}, &Error{Err: ErrRegistryUnavailable, Description: "KRR print certificate unavailable", cause: err}
	}
	org, err := ident.ParseID(pc.Postkasseleverandoeradresse)
	if err != nil {
		return Route{}, &Error{Err: ErrRegistryUnavailable, Description: "KRR print provider is no organisation number", cause: err}
	}
	return Route{Service: "DPI", DocumentType: process.DocPrint, Receiver: org, Certificate: pc.Certificate,
		Record: sr.ServiceRecord{OrgnrPostkasse: pc.Postkasseleverandoeradresse, Service: sr.Service{Identifier: "DPI"}}}, nil
}

// lookup asks the SR, through the organisation cache when the receiver is not a person.
func (r *Resolver) lookup(ctx context.Context, id ID, proc string, level int, conversationID string) (*sr.Answer, error) {
	personal := id.Kind() == ident.KindPerson || id.Kind() == ident.KindFastlege
	key := cacheKey{primary: id.RevealPrimary(), process: proc, level: level, print: !r.cfg.DisablePrintLookup}
	if !personal && r.cfg.OrgCacheTTL > 0 {
		r.mu.Lock()
		e, ok := r.cache[key]
		r.mu.Unlock()
		if ok && r.cfg.Now().Before(e.until) {
			r.metrics.CacheHits.Add(1)
			return e.ans, nil
		}
	}
	r.metrics.SRLookups.Add(1)
	q := sr.Query{SecurityLevel: level, ConversationID: conversationID}
	var ans *sr.Answer
	var err error
	if proc == "" {
		ans, err = r.cfg.SR.Identifier(ctx, id, q)
	} else {
		ans, err = r.cfg.SR.IdentifierProcess(ctx, id, proc, q)
	}
	if err != nil {
		le := fromSR(err)
		switch {
		case errors.Is(le, ErrRegistryUnavailable):
			r.metrics.RegistryFailures.Add(1)
			// Person numbers never reach a log line: the receiver prints masked.
			r.log.WarnContext(ctx, "service registry lookup failed", slog.Any("receiver", id), slog.String("process", proc),
				slog.String("error", err.Error()))
		case errors.Is(le, ErrReceiverNotFound):
			r.metrics.NotFound.Add(1)
			if !personal {
				r.evict(key.primary)
				le = r.deletedDetail(ctx, id, le)
			}
		}
		return nil, le
	}
	if !personal {
		r.warnDistressed(ctx, id)
		if r.cfg.OrgCacheTTL > 0 {
			r.mu.Lock()
			r.cache[key] = cacheEntry{ans: ans, until: r.cfg.Now().Add(r.cfg.OrgCacheTTL)}
			r.mu.Unlock()
		}
	}
	return ans, nil
}

// evict drops every cached answer for the identifier (§5.3 rule 5: evict on SR 404).
func (r *Resolver) evict(primary string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.cache {
		if k.primary == primary {
			delete(r.cache, k)
		}
	}
}

// deletedDetail adds "deleted from Enhetsregisteret on <date>" when the optional direct call
// can tell (§7.3, §7.4).
func (r *Resolver) deletedDetail(ctx context.Context, id ID, notFound error) error {
	org, ok := id.Org()
	if r.cfg.Brreg == nil || !ok {
		return notFound
	}
	e, err := r.cfg.Brreg.Lookup(ctx, string(org))
	var date string
	switch {
	case errors.Is(err, brreg.ErrRemoved):
		date = "unknown date"
		if e != nil && e.Slettedato != "" {
			date = e.Slettedato
		}
	case err == nil:
		if d, deleted := e.DeletedOn(r.cfg.Now()); deleted {
			date = d.Format(time.DateOnly)
		}
	}
	if date == "" {
		return notFound
	}
	return &Error{Err: ErrReceiverDeleted, Description: fmt.Sprintf("Organisation %s was deleted from Enhetsregisteret on %s.", org, date), cause: notFound}
}

// warnDistressed logs a warning for bankrupt or wound-up receivers (project rule: never block).
// It runs only with the optional direct call, on a fresh SR answer, so at most once per 5 minutes
// per organisation.
func (r *Resolver) warnDistressed(ctx context.Context, id ID) {
	org, ok := id.Org()
	if r.cfg.Brreg == nil || !ok {
		return
	}
	e, err := r.cfg.Brreg.Lookup(ctx, string(org))
	if err == nil && e.Distressed() {
		r.log.WarnContext(ctx, "receiver is bankrupt or being wound up; delivering anyway",
			slog.String("orgnr", string(org)), slog.Bool("konkurs", e.Konkurs), slog.Bool("underAvvikling", e.UnderAvvikling),
			slog.Bool("underTvangsavvikling", e.UnderTvangsavvikling))
	}
}

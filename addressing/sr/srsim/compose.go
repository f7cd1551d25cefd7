package srsim

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/efm-go/efm/addressing/brreg"
	"github.com/efm-go/efm/addressing/folkereg"
	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/addressing/internal/simauth"
	"github.com/efm-go/efm/addressing/krr"
	"github.com/efm-go/efm/addressing/process"
	"github.com/efm-go/efm/addressing/sr"
)

// lookup is one identifier request.
type lookup struct {
	id      ident.ID
	raw     string // the identifier as in the path, for error texts of organisations
	process *process.Process
	level   int
	print   bool
	// beta is X-Enable-Beta-Features: true, which DPH needs (§3.1, §4.6).
	beta bool
	tok  *simauth.Token
}

func (s *Server) identifier(w http.ResponseWriter, r *http.Request) {
	tok, ok := s.authorize(w, r)
	if !ok {
		return
	}
	l := lookup{raw: r.PathValue("id"), tok: tok, print: r.URL.Query().Get("print") != "false",
		beta: r.Header.Get("X-Enable-Beta-Features") == "true"}
	if lv := r.URL.Query().Get("securityLevel"); lv != "" {
		n, err := strconv.Atoi(lv)
		if err != nil || n < 1 || n > 4 {
			s.writeError(w, &srError{status: http.StatusBadRequest, code: "invalid_request", descr: "securityLevel must be 1 to 4"})
			return
		}
		l.level = n
	}
	// The SR accepts synthetic numbers; the IP's switch decides whether it asks at all.
	id, err := ident.Policy{AllowSynthetic: true}.ParseID(l.raw)
	if err != nil {
		if len(l.raw) == 11 || strings.HasPrefix(l.raw, "fastlege-for:") {
			s.writeError(w, citizenNotFound())
			return
		}
		s.writeError(w, notFound("Entity with identifier '"+l.raw+"' not found."))
		return
	}
	l.id = id
	if p := r.PathValue("process"); p != "" {
		proc, ok := process.Lookup(p)
		if !ok {
			s.writeError(w, s.processNotFound(l, p))
			return
		}
		l.process = &proc
	}
	var ans *sr.Answer
	var serr *srError
	switch id.Kind() {
	case ident.KindOrganisation:
		ans, serr = s.organisation(r.Context(), l)
	case ident.KindPerson:
		ans, serr = s.citizen(r.Context(), l)
	case ident.KindHerID, ident.KindFastlege:
		ans, serr = s.health(r.Context(), l)
	default:
		serr = notFound("Entity with identifier '" + id.String() + "' not found.")
	}
	if serr != nil {
		s.writeError(w, serr)
		return
	}
	s.writeJSON(w, r, ans)
}

func (s *Server) processNotFound(l lookup, p string) *srError {
	who := l.raw
	if l.id.IsPerson() || l.id.Kind() == ident.KindFastlege {
		who = l.id.String()
	}
	return notFound("Process " + p + " not found for receiver " + who)
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	tok, ok := s.authorize(w, r)
	if !ok {
		return
	}
	id, err := ident.Policy{AllowSynthetic: true}.ParseID(r.PathValue("id"))
	if err == nil && (id.Kind() == ident.KindHerID || id.Kind() == ident.KindFastlege) {
		party, _, serr := s.healthParty(r.Context(), lookup{id: id, tok: tok, beta: r.Header.Get("X-Enable-Beta-Features") == "true"})
		if serr != nil {
			s.writeError(w, serr)
			return
		}
		s.writeJSON(w, r, healthInfo(party))
		return
	}
	if err != nil {
		s.writeError(w, notFound("Entity with identifier '"+r.PathValue("id")+"' not found."))
		return
	}
	if p, ok := id.Person(); ok && id.IsPerson() {
		s.writeJSON(w, r, sr.InfoRecord{Identifier: sr.Identifier(p.Reveal()), EntityType: &sr.EntityType{Name: "citizen"}})
		return
	}
	org, ok := id.Org()
	if !ok {
		s.writeError(w, notFound("Entity with identifier '"+id.String()+"' not found."))
		return
	}
	e, serr := s.entity(r.Context(), string(org))
	if serr != nil {
		s.writeError(w, serr)
		return
	}
	s.writeJSON(w, r, infoRecord(e))
}

// entity is §4.1 for organisations: Enhetsregisteret main units, then sub-units; 404, 410,
// network errors and a slettedato on or before today all mean "not found".
func (s *Server) entity(ctx context.Context, orgnr string) (*brreg.Enhet, *srError) {
	e, err := s.brreg.Lookup(ctx, orgnr)
	if err != nil {
		return nil, notFound("Entity with identifier '" + orgnr + "' not found.")
	}
	if _, deleted := e.DeletedOn(s.opts.Now()); deleted {
		return nil, notFound("Entity with identifier '" + orgnr + "' not found.")
	}
	return e, nil
}

func infoRecord(e *brreg.Enhet) sr.InfoRecord {
	ir := sr.InfoRecord{Identifier: sr.Identifier(e.Organisasjonsnummer), OrganizationName: e.Navn}
	if e.Organisasjonsform != nil {
		ir.EntityType = &sr.EntityType{Name: e.Organisasjonsform.Kode}
	}
	if a := e.Address(); a != nil {
		ir.Postadresse = &sr.Postadresse{Adresse: strings.Join(a.Adresse, " "), Postnummer: a.Postnummer, Poststed: a.Poststed, Land: a.Land}
	}
	return ir
}

// organisation applies §4.3 and §4.4.
func (s *Server) organisation(ctx context.Context, l lookup) (*sr.Answer, *srError) {
	org, _ := l.id.Org()
	orgnr := string(org)
	e, serr := s.entity(ctx, orgnr)
	if serr != nil {
		return nil, serr
	}
	cats := []process.Category{process.Arkivmelding, process.EInnsyn, process.Avtalt}
	// An organisation in NHN's address register is reachable on DPH too, when DPH is asked for.
	party, health := s.nhnByOrg[orgnr]
	health = health && s.dphAllowed(l) == nil
	if health {
		cats = append(cats, process.Dialogmelding)
	}
	procs := process.InCategories(cats...)
	if l.process != nil {
		if !slices.Contains(cats, l.process.Category) {
			return nil, s.processNotFound(l, l.process.ID)
		}
		procs = []process.Process{*l.process}
	}
	ans := &sr.Answer{InfoRecord: infoRecord(e), ServiceRecords: []sr.ServiceRecord{}}
	// One ELMA lookup per document type serves every process of this request.
	var docTypes []string
	for _, p := range procs {
		if p.Category == process.Dialogmelding {
			continue // NHN's register, not ELMA, knows health actors
		}
		for _, d := range p.DocumentTypes {
			if !slices.Contains(docTypes, d) {
				docTypes = append(docTypes, d)
			}
		}
	}
	reg, err := s.elma.Lookup(ctx, orgnr, docTypes)
	if err != nil {
		// A lookup failure counts as "not registered" (→ DPF/DPV fallback), as in the SR.
		reg = map[string][]string{}
	}
	var svarutSystems []sr.ServiceRecord // computed once, lazily
	var svarutDone bool
	for _, p := range procs {
		registered := registeredFor(reg, p)
		switch p.Category {
		case process.Arkivmelding:
			switch {
			case slices.Contains(registered, p.ID):
				rec, serr := s.dpoRecord(orgnr, p)
				if serr != nil {
					return nil, serr
				}
				ans.ServiceRecords = append(ans.ServiceRecords, rec)
			case len(registered) > 0:
				if l.level != 4 {
					ans.ServiceRecords = append(ans.ServiceRecords, s.dpvRecord(orgnr, p, p))
				}
			default:
				if !svarutDone {
					svarutSystems, svarutDone = s.dpfSystems(ctx, l, orgnr), true
				}
				rec, ok := pickDPF(svarutSystems, l.level)
				switch {
				case ok:
					rec.Process, rec.DocumentTypes = p.ID, p.DocumentTypes
					ans.ServiceRecords = append(ans.ServiceRecords, rec)
				case l.level == 4:
					if l.process != nil {
						return nil, &srError{status: http.StatusBadRequest, code: "invalid_security_level",
							descr: "Identifier " + orgnr + " can not receive messages with security level '4'"}
					}
				default:
					ans.ServiceRecords = append(ans.ServiceRecords, s.dpvRecord(orgnr, p, p))
				}
			}
		case process.EInnsyn:
			if slices.Contains(registered, p.ID) {
				pemCert, ok := s.certificateOf(orgnr)
				if !ok {
					return nil, &srError{status: http.StatusNotFound, code: "certificate_not_found", descr: "Unable to find DPE certificate for: " + orgnr}
				}
				ans.ServiceRecords = append(ans.ServiceRecords, sr.ServiceRecord{
					OrganisationNumber: sr.Identifier(orgnr), PemCertificate: pemCert, Process: p.ID, DocumentTypes: p.DocumentTypes,
					Service: sr.Service{Identifier: "DPE", EndpointURL: p.DPEQueue, ServiceCode: p.DPEQueue}})
			}
		case process.Dialogmelding:
			if p.ID == process.Helse {
				ans.ServiceRecords = append(ans.ServiceRecords, s.dphRecord(party, p, nil))
			}
		case process.Avtalt:
			if slices.Contains(registered, p.ID) {
				rec, serr := s.dpoRecord(orgnr, p)
				if serr != nil {
					return nil, serr
				}
				ans.ServiceRecords = append(ans.ServiceRecords, rec)
			}
		}
	}
	if l.process != nil && len(ans.ServiceRecords) == 0 {
		return nil, s.processNotFound(l, l.process.ID)
	}
	return ans, nil
}

// registeredFor returns the processes ELMA lists for the document types of p.
func registeredFor(reg map[string][]string, p process.Process) []string {
	var out []string
	for _, d := range p.DocumentTypes {
		out = append(out, reg[d]...)
	}
	return out
}

func (s *Server) dpoRecord(orgnr string, p process.Process) (sr.ServiceRecord, *srError) {
	pemCert, ok := s.certificateOf(orgnr)
	if !ok {
		return sr.ServiceRecord{}, &srError{status: http.StatusNotFound, code: "certificate_not_found", descr: "Unable to find DPO certificate for: " + orgnr}
	}
	return sr.ServiceRecord{
		OrganisationNumber: sr.Identifier(orgnr), PemCertificate: pemCert, Process: p.ID, DocumentTypes: p.DocumentTypes,
		Service: sr.Service{Identifier: "DPO", EndpointURL: s.opts.DPOEndpoint, ServiceCode: "4192", ServiceEditionCode: "270815",
			Resource: "eformidling-dpo-meldingsutveksling"},
	}, nil
}

// dpvRecord is a DPV record for process p with the service codes of codes.
func (s *Server) dpvRecord(receiver string, p, codes process.Process) sr.ServiceRecord {
	docs := p.DocumentTypes
	if p.Category == process.DigitalPost {
		docs = []string{process.DocDigitalDPV}
	}
	return sr.ServiceRecord{
		OrganisationNumber: sr.Identifier(receiver), Process: p.ID, DocumentTypes: docs,
		Service: sr.Service{Identifier: "DPV", EndpointURL: s.opts.DPVEndpoint, ServiceCode: codes.DPVServiceCode,
			ServiceEditionCode: codes.DPVServiceEditionCode, Resource: codes.DPVResource},
	}
}

// dpfSystems returns one candidate DPF record per SvarUt receiving system with an empty
// forsendelseType. A failed lookup means no systems.
func (s *Server) dpfSystems(ctx context.Context, l lookup, orgnr string) []sr.ServiceRecord {
	systems, err := s.svarut.MottakerSystemer(ctx, l.tok.Raw, orgnr)
	if err != nil {
		return nil
	}
	var out []sr.ServiceRecord
	for _, m := range systems {
		if m.ForsendelseType != "" {
			continue
		}
		lv := m.Niva
		out = append(out, sr.ServiceRecord{OrganisationNumber: sr.Identifier(orgnr), PemCertificate: s.svarCert,
			Service: sr.Service{Identifier: "DPF", EndpointURL: s.opts.DPFEndpoint, SecurityLevel: &lv}})
	}
	return out
}

// pickDPF applies §4.3 step 4: the system at the asked level, or the highest without one.
func pickDPF(cands []sr.ServiceRecord, level int) (sr.ServiceRecord, bool) {
	var best *sr.ServiceRecord
	for i := range cands {
		c := &cands[i]
		if level != 0 {
			if *c.Service.SecurityLevel == level {
				return *c, true
			}
			continue
		}
		if best == nil || *c.Service.SecurityLevel > *best.Service.SecurityLevel {
			best = c
		}
	}
	if best == nil {
		return sr.ServiceRecord{}, false
	}
	return *best, true
}

// citizen applies §4.5.
func (s *Server) citizen(ctx context.Context, l lookup) (*sr.Answer, *srError) {
	if !l.tok.HasAny("eformidling:dpi", "move/dpi.read") {
		return nil, &srError{status: http.StatusUnauthorized, code: "insufficient_scope", descr: "citizen lookups need the DPI scope"}
	}
	pid, _ := l.id.Person()
	procs := process.InCategories(process.DigitalPost)
	if l.process != nil {
		if l.process.Category != process.DigitalPost {
			return nil, s.processNotFound(l, l.process.ID)
		}
		procs = []process.Process{*l.process}
	}
	persons, err := s.krr.Persons(ctx, l.tok.Raw, []ident.PersonID{pid})
	switch {
	case errors.Is(err, krr.ErrRejected):
		return nil, citizenNotFound()
	case errors.Is(err, krr.ErrBadAnswer):
		return nil, &srError{status: http.StatusBadRequest, code: "krr_answer_invalid", descr: "KRR answer could not be verified"}
	case err != nil:
		return nil, &srError{status: http.StatusInternalServerError, code: "krr_unavailable", descr: "KRR did not answer"}
	case len(persons) != 1:
		return nil, citizenNotFound()
	}
	p := persons[0]

	// The print record needs the Folkeregister address, KRR's print certificate and the
	// sender's return address; each is fetched only when a print record may be produced.
	var printRec *sr.ServiceRecord
	printRecord := func() (*sr.ServiceRecord, *srError) {
		if printRec != nil || !l.print {
			return printRec, nil
		}
		fp, err := s.folkereg.Person(ctx, pid)
		if err != nil {
			return nil, citizenNotFound()
		}
		if fp.Postadresse == nil {
			return nil, nil // secret address: no print record
		}
		pc, err := s.krr.PrintCertificate(ctx)
		if err != nil {
			return nil, &srError{status: http.StatusInternalServerError, code: "krr_unavailable", descr: "KRR print certificate unavailable"}
		}
		sender, err := s.brreg.Lookup(ctx, l.tok.ConsumerOrg)
		if err != nil {
			return nil, notFound("Sender " + l.tok.ConsumerOrg + " not found in BRREG")
		}
		ret := &sr.PostAddress{Name: sender.Navn}
		if a := sender.Address(); a != nil {
			ret.Street, ret.PostalCode, ret.PostalArea, ret.Country = strings.Join(a.Adresse, " "), a.Postnummer, a.Poststed, a.Land
		}
		rec := s.dpiBase(pid, p, true)
		rec.PemCertificate = pemOf(pc.Certificate.Raw)
		rec.OrgnrPostkasse = pc.Postkasseleverandoeradresse
		rec.PostAddress = postAddress(fp)
		rec.ReturnAddress = ret
		printRec = &rec
		return printRec, nil
	}

	ans := &sr.Answer{InfoRecord: sr.InfoRecord{Identifier: sr.Identifier(pid.Reveal()), EntityType: &sr.EntityType{Name: "citizen"}},
		ServiceRecords: []sr.ServiceRecord{}}
	codes, _ := process.Lookup(process.Administrasjon)
	active := p.Status == "AKTIV" && p.HasMailbox()
	for _, proc := range procs {
		var recs []sr.ServiceRecord
		printOnly := proc.ID == process.Vedtak && (p.Reservasjon == "JA" || p.Varslingsstatus != "KAN_VARSLES")
		switch {
		case printOnly:
			pr, serr := printRecord()
			if serr != nil {
				return nil, serr
			}
			if pr != nil {
				recs = append(recs, *pr)
			}
		case active:
			rec := s.dpiBase(pid, p, false)
			rec.PemCertificate = pemOf(p.Sertifikat)
			rec.OrgnrPostkasse = p.DigitalPost.Postkasseleverandoeradresse
			addr := p.DigitalPost.Postkasseadresse
			rec.PostkasseAdresse = &addr
			recs = append(recs, rec)
		default:
			pr, serr := printRecord()
			if serr != nil {
				return nil, serr
			}
			if pr != nil {
				recs = append(recs, *pr)
			}
			recs = append(recs, s.dpvRecord(pid.Reveal(), proc, codes))
		}
		for i := range recs {
			recs[i].Process = proc.ID
		}
		ans.ServiceRecords = append(ans.ServiceRecords, recs...)
	}
	if l.process != nil && len(ans.ServiceRecords) == 0 {
		return nil, s.processNotFound(l, l.process.ID)
	}
	return ans, nil
}

// dpiBase fills the fields digital and print records share.
func (s *Server) dpiBase(pid ident.PersonID, p krr.Person, isPrint bool) sr.ServiceRecord {
	kan := p.Varslingsstatus == "KAN_VARSLES"
	fysisk := isPrint
	doc := process.DocDigital
	if isPrint {
		doc = process.DocPrint
	}
	rec := sr.ServiceRecord{OrganisationNumber: sr.Identifier(pid.Reveal()), DocumentTypes: []string{doc},
		Service: sr.Service{Identifier: "DPI"}, KanVarsles: &kan, FysiskPost: &fysisk, Spraak: p.Spraak}
	if k := p.Kontaktinformasjon; k != nil {
		rec.EpostAdresse, rec.Mobilnummer = k.Epostadresse, k.Mobiltelefonnummer
	}
	return rec
}

func postAddress(fp *folkereg.Person) *sr.PostAddress {
	a := fp.Postadresse
	return &sr.PostAddress{Name: fp.Navn.Full(), Street: strings.Join(a.Adresselinje, " "), PostalCode: a.Postnummer,
		PostalArea: a.Poststed, Country: a.Landkode}
}

// dphAllowed is the SR's gate for health lookups: the beta header, then the DPH scope.
func (s *Server) dphAllowed(l lookup) *srError {
	if !l.beta {
		return notFound("Entity with identifier '" + l.id.String() + "' not found.")
	}
	if !l.tok.HasAny("eformidling:dph") {
		return &srError{status: http.StatusUnauthorized, code: "insufficient_scope", descr: "DPH lookups need the DPH scope"}
	}
	return nil
}

// healthParty finds a her-id: or fastlege-for: identifier in NHN's address register; for
// fastlege-for it also returns the patient from the Folkeregister gateway.
func (s *Server) healthParty(ctx context.Context, l lookup) (HealthParty, *sr.Patient, *srError) {
	if serr := s.dphAllowed(l); serr != nil {
		return HealthParty{}, nil, serr
	}
	// l.id.String() masks the patient's number.
	unknown := notFound("Entity with identifier '" + l.id.String() + "' not found.")
	if l.id.Kind() == ident.KindHerID {
		party, ok := s.nhn[strings.TrimPrefix(l.id.RevealPrimary(), "her-id:")]
		if !ok {
			return HealthParty{}, nil, unknown
		}
		return party, nil, nil
	}
	pid, _ := l.id.Person()
	herID, ok := s.opts.Fastleger[pid.Reveal()]
	if !ok {
		return HealthParty{}, nil, unknown
	}
	fp, err := s.folkereg.Person(ctx, pid)
	if err != nil {
		return HealthParty{}, nil, unknown
	}
	return s.nhn[herID], &sr.Patient{Fnr: sr.Identifier(pid.Reveal()), FirstName: fp.Navn.Fornavn,
		MiddleName: fp.Navn.Mellomnavn, LastName: fp.Navn.Etternavn}, nil
}

// health applies §4.6: one DPH record for the health process.
func (s *Server) health(ctx context.Context, l lookup) (*sr.Answer, *srError) {
	party, patient, serr := s.healthParty(ctx, l)
	if serr != nil {
		return nil, serr
	}
	p, _ := process.Lookup(process.Helse)
	if l.process != nil && l.process.ID != p.ID {
		return nil, s.processNotFound(l, l.process.ID)
	}
	return &sr.Answer{InfoRecord: healthInfo(party), ServiceRecords: []sr.ServiceRecord{s.dphRecord(party, p, patient)}}, nil
}

func healthInfo(h HealthParty) sr.InfoRecord {
	return sr.InfoRecord{Identifier: sr.Identifier("her-id:" + h.HerID), OrganizationName: h.Name,
		EntityType: &sr.EntityType{Name: "NorskHelsenett"}, HerID: h.HerID, ParentHerID: h.ParentHerID,
		ParentOrganizationName: h.ParentName, OrganizationNumber: h.OrganisationNumber}
}

func (s *Server) dphRecord(h HealthParty, p process.Process, patient *sr.Patient) sr.ServiceRecord {
	return sr.ServiceRecord{OrganisationNumber: sr.Identifier(h.OrganisationNumber), PemCertificate: string(h.Certificate),
		Process: p.ID, DocumentTypes: p.DocumentTypes, Service: sr.Service{Identifier: "DPH", EndpointURL: s.opts.DPHEndpoint},
		HerID: h.HerID, Patient: patient}
}

// Package process is the Service Registry's process table (spec/local-api.md §13.3,
// spec/addressing.md §4.2): every process identifier eFormidling knows, its category and the
// document types it carries. The SR simulator routes by it, the seed validates against it and the
// capabilities answer names document types from it.
//
// This package is a leaf: it imports only the standard library.
package process

import "strings"

// Category groups processes the way the SR's process table does; the routing rules of
// spec/addressing.md §4 are per category.
type Category string

// The categories of spec/addressing.md §4.2.
const (
	Arkivmelding  Category = "ARKIVMELDING"
	Avtalt        Category = "AVTALT"
	EInnsyn       Category = "EINNSYN"
	DigitalPost   Category = "DIGITALPOST"
	Dialogmelding Category = "DIALOGMELDING"
)

// Process identifiers used by name elsewhere in the code.
const (
	Administrasjon    = "urn:no:difi:profile:arkivmelding:administrasjon:ver1.0" // the default archive process
	Taushetsbelagt    = "urn:no:difi:profile:arkivmelding:taushetsbelagt:ver1.0"
	ArkivResponse     = "urn:no:difi:profile:arkivmelding:response:ver1.0"
	AvtaltAvtalt      = "urn:no:difi:profile:avtalt:avtalt:ver1.0"
	AvtaltResponse    = "urn:no:difi:profile:avtalt:response:ver1.0"
	Info              = "urn:no:difi:profile:digitalpost:info:ver1.0"
	Vedtak            = "urn:no:difi:profile:digitalpost:vedtak:ver1.0"
	EInnsynJournal    = "urn:no:difi:profile:einnsyn:journalpost:ver1.0"
	EInnsynMeeting    = "urn:no:difi:profile:einnsyn:meeting:ver1.0"
	EInnsynInnsyn     = "urn:no:difi:profile:einnsyn:innsynskrav:ver1.0"
	EInnsynResponse   = "urn:no:difi:profile:einnsyn:response:ver1.0"
	Helse             = "urn:no:difi:profile:helse:helse:ver1.0"
	HelseResponse     = "urn:no:difi:profile:helse:response:ver1.0"
	DPOCertificate    = "urn:no:difi:profile:dpo:ver1.0" // VirkSert process for DPO certificates
	DPECertificate    = "urn:no:difi:profile:dpe:ver1.0" // VirkSert process for DPE certificates
	archivePrefix     = "urn:no:difi:profile:arkivmelding:"
	documentTypeSplit = "::"
)

// Document types (spec/local-api.md §13.2).
const (
	DocArkivmelding           = "urn:no:difi:arkivmelding:xsd::arkivmelding"
	DocArkivmeldingKvittering = "urn:no:difi:arkivmelding:xsd::arkivmelding_kvittering"
	DocArkivStatus            = "urn:no:difi:arkivmelding:xsd::status"
	DocAvtalt                 = "urn:no:difi:avtalt:xsd::avtalt"
	DocStatus                 = "urn:no:difi:eformidling:xsd::status"
	DocDigital                = "urn:no:difi:digitalpost:xsd:digital::digital"
	DocDigitalDPV             = "urn:no:difi:digitalpost:xsd:digital::digital_dpv"
	DocPrint                  = "urn:no:difi:digitalpost:xsd:fysisk::print"
	DocInnsynskrav            = "urn:no:difi:einnsyn:xsd::innsynskrav"
	DocPublisering            = "urn:no:difi:einnsyn:xsd::publisering"
	DocEInnsynKvittering      = "urn:no:difi:einnsyn:xsd::einnsyn_kvittering"
	DocDialogmelding          = "urn:no:difi:helse:xsd:schema::dialogmelding"
	DocDialogmeldingKvitt     = "urn:no:difi:helse:xsd::dialogmelding_kvittering"
)

// Process is one row of the process table.
type Process struct {
	ID       string
	Category Category
	// DocumentTypes are the document types the process carries, in the order records list them.
	DocumentTypes []string
	// DPVServiceCode, DPVServiceEditionCode and DPVResource go on a DPV record for the process.
	// The real SR reads them from its database; these values are the simulator's choice except
	// the confidential resource, which spec/channels.md §3.3 names.
	DPVServiceCode, DPVServiceEditionCode, DPVResource string
	// DPEQueue is the Service Bus queue suffix a DPE record carries in endpointUrl (EINNSYN only).
	DPEQueue string
}

const (
	dpvCode     = "4255"
	dpvEdition  = "10"
	dpvResource = "eformidling-dpv-meldingsutveksling"
)

func archive(name string) Process {
	return Process{ID: archivePrefix + name + ":ver1.0", Category: Arkivmelding, DocumentTypes: []string{DocArkivmelding},
		DPVServiceCode: dpvCode, DPVServiceEditionCode: dpvEdition, DPVResource: dpvResource}
}

var table = func() []Process {
	t := []Process{
		archive("administrasjon"),
		archive("planByggOgGeodata"),
		archive("helseSosialOgOmsorg"),
		archive("oppvekstOgUtdanning"),
		archive("kulturIdrettOgFritid"),
		archive("trafikkReiserOgSamferdsel"),
		archive("naturOgMiljoe"),
		archive("naeringsutvikling"),
		archive("skatterOgAvgifter"),
		archive("tekniskeTjenester"),
	}
	conf := archive("taushetsbelagt")
	conf.DPVServiceCode, conf.DPVServiceEditionCode, conf.DPVResource = "5504", "1", "eformidling-dpv-taushetsbelagt"
	resp := archive("response")
	resp.DocumentTypes = []string{DocArkivmeldingKvittering, DocArkivStatus}
	t = append(t, conf, resp,
		Process{ID: AvtaltAvtalt, Category: Avtalt, DocumentTypes: []string{DocAvtalt}},
		Process{ID: AvtaltResponse, Category: Avtalt, DocumentTypes: []string{DocStatus}},
		Process{ID: Info, Category: DigitalPost, DocumentTypes: []string{DocDigital, DocPrint, DocDigitalDPV},
			DPVServiceCode: dpvCode, DPVServiceEditionCode: dpvEdition, DPVResource: dpvResource},
		Process{ID: Vedtak, Category: DigitalPost, DocumentTypes: []string{DocDigital, DocPrint, DocDigitalDPV},
			DPVServiceCode: dpvCode, DPVServiceEditionCode: dpvEdition, DPVResource: dpvResource},
		Process{ID: EInnsynJournal, Category: EInnsyn, DocumentTypes: []string{DocPublisering}, DPEQueue: "data"},
		Process{ID: EInnsynMeeting, Category: EInnsyn, DocumentTypes: []string{DocPublisering}, DPEQueue: "meeting"},
		Process{ID: EInnsynInnsyn, Category: EInnsyn, DocumentTypes: []string{DocInnsynskrav}, DPEQueue: "innsyn"},
		Process{ID: EInnsynResponse, Category: EInnsyn, DocumentTypes: []string{DocEInnsynKvittering, DocStatus}, DPEQueue: "innsyn"},
		Process{ID: Helse, Category: Dialogmelding, DocumentTypes: []string{DocDialogmelding}},
		Process{ID: HelseResponse, Category: Dialogmelding, DocumentTypes: []string{DocDialogmeldingKvitt}},
	)
	return t
}()

// All returns the process table in the SR's order. The slice is a copy.
func All() []Process {
	out := make([]Process, len(table))
	copy(out, table)
	return out
}

// Lookup finds a process by identifier.
func Lookup(id string) (Process, bool) {
	for _, p := range table {
		if p.ID == id {
			return p, true
		}
	}
	return Process{}, false
}

// InCategories returns the processes of the given categories in table order.
func InCategories(cats ...Category) []Process {
	var out []Process
	for _, p := range table {
		for _, c := range cats {
			if p.Category == c {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// knownTypes are the business message types of spec/local-api.md §13.2.
var knownTypes = map[string]bool{
	"status": true, "arkivmelding": true, "arkivmelding_kvittering": true, "avtalt": true, "digital": true,
	"digital_dpv": true, "print": true, "innsynskrav": true, "publisering": true, "einnsyn_kvittering": true,
	"dialogmelding": true, "dialogmelding_kvittering": true,
}

// MessageType returns the part of a document type after the last "::" when it is a known
// business message type (spec/addressing.md §8), and "" otherwise.
func MessageType(documentType string) string {
	i := strings.LastIndex(documentType, documentTypeSplit)
	if i < 0 {
		return ""
	}
	t := documentType[i+len(documentTypeSplit):]
	if knownTypes[t] {
		return t
	}
	return ""
}

// KnownDocumentType reports whether some process carries the document type.
func KnownDocumentType(dt string) bool {
	for _, p := range table {
		for _, d := range p.DocumentTypes {
			if d == dt {
				return true
			}
		}
	}
	return false
}

package sbd

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// The business message types of local-api.md §13.2.
const (
	TypeStatus                  = "status"
	TypeArkivmelding            = "arkivmelding"
	TypeArkivmeldingKvittering  = "arkivmelding_kvittering"
	TypeAvtalt                  = "avtalt"
	TypeDigital                 = "digital"
	TypeDigitalDPV              = "digital_dpv"
	TypePrint                   = "print"
	TypeInnsynskrav             = "innsynskrav"
	TypePublisering             = "publisering"
	TypeEinnsynKvittering       = "einnsyn_kvittering"
	TypeDialogmelding           = "dialogmelding"
	TypeDialogmeldingKvittering = "dialogmelding_kvittering"
)

// Types are the recognised types (fiksio is off while DPFIO is disabled, D12).
var Types = []string{
	TypeStatus, TypeArkivmelding, TypeArkivmeldingKvittering, TypeAvtalt, TypeDigital, TypeDigitalDPV,
	TypePrint, TypeInnsynskrav, TypePublisering, TypeEinnsynKvittering, TypeDialogmelding, TypeDialogmeldingKvittering,
}

// LookupType returns the canonical spelling of a type name (case-insensitive)
// and whether it is recognised.
func LookupType(s string) (string, bool) {
	for _, t := range Types {
		if strings.EqualFold(s, t) {
			return t, true
		}
	}
	return s, false
}

// NeedsNoAttachment lists the types that may be sent without a file (§5.3).
func NeedsNoAttachment(t string) bool {
	switch t {
	case TypeStatus, TypeArkivmeldingKvittering, TypeEinnsynKvittering, TypeDialogmeldingKvittering, TypeAvtalt:
		return true
	}
	return false
}

// IsReceipt reports the types whose content is entirely in the SBD: pop
// answers 204 for them (§6.4).
func IsReceipt(t string) bool {
	switch t {
	case TypeArkivmeldingKvittering, TypeEinnsynKvittering, TypeDialogmeldingKvittering:
		return true
	}
	return false
}

// StandardFits reports whether standard ends with "::" + type (§13.2).
func StandardFits(standard, typ string) bool {
	return strings.HasSuffix(strings.ToLower(standard), "::"+strings.ToLower(typ))
}

// Standards maps each type to its document type identifier (§13.2).
var Standards = map[string]string{
	TypeArkivmelding:            "urn:no:difi:arkivmelding:xsd::arkivmelding",
	TypeArkivmeldingKvittering:  "urn:no:difi:arkivmelding:xsd::arkivmelding_kvittering",
	TypeAvtalt:                  "urn:no:difi:avtalt:xsd::avtalt",
	TypeDigital:                 "urn:no:difi:digitalpost:xsd:digital::digital",
	TypeDigitalDPV:              "urn:no:difi:digitalpost:xsd:digital::digital_dpv",
	TypePrint:                   "urn:no:difi:digitalpost:xsd:fysisk::print",
	TypeInnsynskrav:             "urn:no:difi:einnsyn:xsd::innsynskrav",
	TypePublisering:             "urn:no:difi:einnsyn:xsd::publisering",
	TypeEinnsynKvittering:       "urn:no:difi:einnsyn:xsd::einnsyn_kvittering",
	TypeStatus:                  "urn:no:difi:eformidling:xsd::status",
	TypeDialogmelding:           "urn:no:difi:helse:xsd:schema::dialogmelding",
	TypeDialogmeldingKvittering: "urn:no:difi:helse:xsd::dialogmelding_kvittering",
}

// TypeOfStandard returns the business message name of a document type
// identifier: the part after the last "::" when that is a known type.
func TypeOfStandard(standard string) (string, bool) {
	i := strings.LastIndex(standard, "::")
	if i < 0 {
		return "", false
	}
	return LookupType(standard[i+2:])
}

type kind int

const (
	kString kind = iota
	kInt
	kBool
	kObject
	kAny
)

type field struct {
	path     string
	kind     kind
	required bool
}

var dpvFields = []field{{"dpv.dagerTilSvarfrist", kInt, false}}

// schemas are the business message fields the daemon interprets (§12):
// required ones and those whose scalars are coerced. Others pass through.
var schemas = map[string][]field{
	TypeArkivmelding: append([]field{{"sikkerhetsnivaa", kInt, false}, {"hoveddokument", kString, false}}, dpvFields...),
	TypeArkivmeldingKvittering: {
		{"receiptType", kString, true}, {"relatedToMessageId", kString, true},
	},
	TypeAvtalt: {{"identifier", kString, true}, {"content", kAny, true}, {"hoveddokument", kString, false}},
	TypeDigital: {
		{"sikkerhetsnivaa", kInt, true}, {"hoveddokument", kString, true}, {"tittel", kString, true},
		{"spraak", kString, true}, {"digitalPostInfo", kObject, true}, {"digitalPostInfo.virkningsdato", kString, true},
		{"digitalPostInfo.aapningskvittering", kBool, true}, {"metadataFiler", kObject, false},
	},
	TypeDigitalDPV: append([]field{
		{"tittel", kString, true}, {"sammendrag", kString, true}, {"innhold", kString, true},
	}, dpvFields...),
	TypePrint:             {{"hoveddokument", kString, true}},
	TypeInnsynskrav:       {{"orgnr", kString, true}, {"epost", kString, true}},
	TypePublisering:       {{"orgnr", kString, true}},
	TypeEinnsynKvittering: {{"dokumentId", kString, true}, {"status", kString, true}, {"referanseType", kString, true}},
	TypeStatus:            {{"status", kString, true}},
	TypeDialogmelding:     {{"hoveddokument", kString, true}},
	TypeDialogmeldingKvittering: {
		{"relatedToMessageId", kString, true}, {"status", kString, true},
	},
}

// coerce turns scalars sent as strings into the schema's number or boolean
// (§2.3), and numbers and booleans into strings where a string is expected.
func coerce(typ string, m map[string]any) error {
	for _, f := range schemas[typ] {
		parent, key := parentOf(m, f.path)
		if parent == nil {
			continue
		}
		v, ok := parent[key]
		if !ok {
			continue
		}
		switch f.kind {
		case kInt:
			switch x := v.(type) {
			case string:
				s := strings.TrimSpace(x)
				if s == "" {
					delete(parent, key)
					continue
				}
				if _, err := strconv.ParseInt(s, 10, 64); err != nil {
					return fmt.Errorf("%w: %s: %q is not an integer", ErrSyntax, f.path, x)
				}
				parent[key] = json.Number(s)
			case json.Number:
				if _, err := x.Int64(); err != nil {
					return fmt.Errorf("%w: %s: %s is not an integer", ErrSyntax, f.path, x)
				}
			default:
				return fmt.Errorf("%w: %s must be an integer", ErrSyntax, f.path)
			}
		case kBool:
			switch x := v.(type) {
			case string:
				b, err := strconv.ParseBool(strings.ToLower(strings.TrimSpace(x)))
				if err != nil {
					return fmt.Errorf("%w: %s: %q is not a boolean", ErrSyntax, f.path, x)
				}
				parent[key] = b
			case bool:
			default:
				return fmt.Errorf("%w: %s must be a boolean", ErrSyntax, f.path)
			}
		case kString:
			switch x := v.(type) {
			case string:
			case json.Number:
				parent[key] = x.String()
			case bool:
				parent[key] = strconv.FormatBool(x)
			default:
				return fmt.Errorf("%w: %s must be a string", ErrSyntax, f.path)
			}
		case kObject:
			if _, ok := v.(map[string]any); !ok {
				return fmt.Errorf("%w: %s must be an object", ErrSyntax, f.path)
			}
		}
	}
	return nil
}

func parentOf(m map[string]any, path string) (map[string]any, string) {
	parts := strings.Split(path, ".")
	cur := m
	for _, p := range parts[:len(parts)-1] {
		next, ok := cur[p].(map[string]any)
		if !ok {
			return nil, ""
		}
		cur = next
	}
	return cur, parts[len(parts)-1]
}

package events

import (
	"reflect"
	"strings"

	"github.com/google/uuid"
)

// ContainsPersonNumber reports whether s holds 11 consecutive digits, anywhere
// inside a longer digit run too, that pass the fødselsnummer/D-number checksum.
// It is the backstop of operations.md §5.3: recognition is by type, this only
// catches what the types missed.
func ContainsPersonNumber(s string) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			run = 0
			continue
		}
		run++
		if run >= 11 && looksLikePersonNumber(s[i-10:i+1]) {
			return true
		}
	}
	return false
}

// Scan returns the JSON names of e's string fields (strings and string lists,
// in the header too) that hold a possible national identity number. It does
// not change e; pakkesporing rejects such an event naming the field.
func Scan(e Event) []string { return walkStrings(e, false) }

// Redact empties every field Scan would name and returns their names; each is
// one redaction for efm_central_log_redactions_total.
func Redact(e Event) []string { return walkStrings(e, true) }

// walkStrings visits the string fields of the event struct by reflection, so
// a field added to the schema is scanned without anyone remembering to.
func walkStrings(e Event, clear bool) []string {
	var hits []string
	v := reflect.ValueOf(e)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return nil
	}
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			f, fv := t.Field(i), v.Field(i)
			if f.Anonymous && fv.Kind() == reflect.Struct {
				walk(fv)
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch fv.Kind() {
			case reflect.String:
				if f.Tag.Get("scan") == "uuid" && isUUID(fv.String()) {
					// One random UUID in about 2,400 holds 11 digits that
					// pass the checksum; dropping such a message id lost
					// the event. A well-formed UUID is an id, not a number.
					continue
				}
				if ContainsPersonNumber(fv.String()) {
					hits = append(hits, name)
					if clear {
						fv.SetString("")
					}
				}
			case reflect.Slice:
				if fv.Type().Elem().Kind() != reflect.String {
					continue
				}
				hit := false
				for j := range fv.Len() {
					if ContainsPersonNumber(fv.Index(j).String()) {
						hit = true
					}
				}
				if hit {
					hits = append(hits, name)
					if clear {
						fv.Set(reflect.Zero(fv.Type()))
					}
				}
			}
		}
	}
	walk(v.Elem())
	return hits
}

// isUUID reports whether s is a UUID in its canonical text form (8-4-4-4-12
// hex digits). Only that form is exempt: any other text in a uuid field is
// scanned like every other field.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

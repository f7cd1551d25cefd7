package events

import (
	"testing"
)

// BenchmarkBuilder_MessageStatus is the daemon's cost per status: UUIDv7,
// pseudonym, scan, validation, JSON.
func BenchmarkBuilder_MessageStatus(b *testing.B) {
	bl := testBuilder(b)
	in := statusInput(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := bl.MessageStatus(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode is pakkesporing's strict decode and validation per event.
func BenchmarkDecode(b *testing.B) {
	_, body, err := testBuilder(b).MessageStatus(statusInput(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkContainsPersonNumber scans one encoded event's text.
func BenchmarkContainsPersonNumber(b *testing.B) {
	_, body, err := testBuilder(b).MessageStatus(statusInput(b))
	if err != nil {
		b.Fatal(err)
	}
	s := string(body)
	b.ReportAllocs()
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		ContainsPersonNumber(s)
	}
}

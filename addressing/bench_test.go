package addressing

import (
	"context"
	"testing"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/addressing/process"
)

func BenchmarkParseID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ident.ParseID("0192:910075918"); err != nil {
			b.Fatal(err)
		}
		if _, err := ident.ParseID("06068700602"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLooksLikePersonNumber(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if !ident.LooksLikePersonNumber("06068700602") {
			b.Fatal("valid number rejected")
		}
	}
}

// BenchmarkResolve compares an organisation served from the 5-minute cache with a citizen,
// which is a full SR → KRR → Folkeregister round trip over loopback every time.
func BenchmarkResolve(b *testing.B) {
	for _, bc := range []struct {
		name, id, process, doc string
	}{
		{"org_cached", "910075918", process.Administrasjon, process.DocArkivmelding},
		{"citizen_uncached", "06068700602", process.Vedtak, process.DocDigital},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEnv(b, sender)
			id, err := ident.ParseID(bc.id)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.res.ResolveMessage(ctx, Request{Receiver: id, Process: bc.process, DocumentType: bc.doc}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

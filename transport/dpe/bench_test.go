package dpe_test

import (
	"context"
	"testing"

	"github.com/efm-go/efm/transport/dpe"
)

// BenchmarkClient_SendReceive measures one DPE message through the
// simulator: send with a 16 KiB package, peek-lock, decode, complete.
func BenchmarkClient_SendReceive(b *testing.B) {
	e := newEnv(b, nil)
	c, err := dpe.New(dpe.Config{BaseURL: e.srv.URL, Keys: dpe.StaticKey{Name: keyName, Key: key}, OwnQueue: dpe.OwnQueue(orgAgency, "innsyn")})
	if err != nil {
		b.Fatal(err)
	}
	cms := make([]byte, 16<<10)
	queue := dpe.OwnQueue(orgAgency, "innsyn")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		sbd, _ := publisering("987464291", orgAgency)
		if err := c.Send(ctx, queue, sbd, cms); err != nil {
			b.Fatal(err)
		}
		m, err := c.Receive(ctx)
		if err != nil || m == nil {
			b.Fatal(err)
		}
		if err := c.Complete(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
}

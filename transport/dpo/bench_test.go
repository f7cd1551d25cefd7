package dpo_test

import (
	"context"
	"testing"

	"github.com/efm-go/efm/transport/dpo"
)

// BenchmarkClient_Send measures one DPO send (initialise + streamed upload
// of a 64 KiB package) through the simulator over loopback HTTP, the part
// of accept-to-SENDT that the channel owns.
func BenchmarkClient_Send(b *testing.B) {
	e := newEnvB(b)
	a := e.clientB(b, orgA)
	pkg := make([]byte, 64<<10)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(pkg)))
	for b.Loop() {
		sbd, _ := arkivmelding(orgA, orgC, "")
		if _, err := a.Send(ctx, dpo.Outgoing{SBD: sbd, Payload: payloadOf(pkg)}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClient_Receive measures Pending + Download + Confirm of one
// status message, the receipt path of every DPO message.
func BenchmarkClient_Receive(b *testing.B) {
	e := newEnvB(b)
	a, c := e.clientB(b, orgA), e.clientB(b, orgC)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		sbd, _ := arkivmelding(orgA, orgC, "")
		if _, err := a.Send(ctx, dpo.Outgoing{SBD: sbd}); err != nil {
			b.Fatal(err)
		}
		var pending []dpo.Overview
		for len(pending) == 0 {
			var err error
			if pending, err = c.Pending(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		pending, err := c.Pending(ctx)
		if err != nil || len(pending) != 1 {
			b.Fatal(err, len(pending))
		}
		f, err := c.Download(ctx, pending[0].FileTransferID)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
		if err := c.Confirm(ctx, pending[0].FileTransferID); err != nil {
			b.Fatal(err)
		}
	}
}

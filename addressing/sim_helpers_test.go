package addressing

import (
	"github.com/efm-go/efm/addressing/krr"
	"github.com/efm-go/efm/addressing/seed"
	"github.com/efm-go/efm/internal/simfault"
)

func faultDrop(path string) simfault.Fault { return simfault.Fault{Path: path, Drop: true, Times: 2} }
func faultMalformed(path string) simfault.Fault {
	return simfault.Fault{Path: path, Malformed: true, Times: 1}
}

// krrWire is the simulator's entry for a seeded person, without the certificate (tests that
// change KRR state between lookups start from it).
func krrWire(p *seed.Person) krr.WirePerson {
	w := krr.WirePerson{Personidentifikator: p.Personidentifikator, Reservasjon: p.KRR.Reservasjon, Status: p.KRR.Status,
		Varslingsstatus: p.KRR.Varslingsstatus, Spraak: p.KRR.Spraak}
	if dp := p.KRR.DigitalPost; dp != nil {
		w.DigitalPost = &krr.DigitalPost{Postkasseadresse: dp.Postkasseadresse, Postkasseleverandoeradresse: dp.Postkasseleverandoeradresse}
	}
	return w
}

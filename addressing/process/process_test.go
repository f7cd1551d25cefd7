package process

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMessageType(t *testing.T) {
	tests := map[string]string{
		DocArkivmelding:                      "arkivmelding",
		DocDigitalDPV:                        "digital_dpv",
		DocPrint:                             "print",
		"urn:no:difi:arkivmelding:xsd::feil": "",
		"no-separator":                       "",
		"urn:x::Arkivmelding":                "",
		DocEInnsynKvittering:                 "einnsyn_kvittering",
	}
	for in, want := range tests {
		assert.Equal(t, want, MessageType(in), in)
	}
}

func TestTable(t *testing.T) {
	assert.Len(t, InCategories(Arkivmelding), 12, "eleven archive processes and the response process")
	assert.Len(t, InCategories(DigitalPost), 2)
	p, ok := Lookup(Taushetsbelagt)
	assert.True(t, ok)
	assert.Equal(t, "eformidling-dpv-taushetsbelagt", p.DPVResource)
	for _, p := range All() {
		assert.NotEmpty(t, p.DocumentTypes, p.ID)
		if p.Category == EInnsyn {
			assert.NotEmpty(t, p.DPEQueue, p.ID)
		}
	}
}

package seed

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefault(t *testing.T) {
	s, err := Default()
	require.NoError(t, err)
	certs := s.Organisations()
	for _, org := range []string{"910077473", "910075918", "910076787", "810074582", "984661185", "922020175", "971032146"} {
		assert.Contains(t, certs, org, "needs a certificate")
	}
	assert.NotContains(t, certs, "910078003", "the DPO receiver without VirkSert certificate must stay without one")
	p, ok := s.Person("06068700602")
	require.True(t, ok)
	require.NotNil(t, p.KRR)
	assert.Equal(t, "AKTIV", p.KRR.Status)
	assert.NotNil(t, p.KRR.DigitalPost)
	var pids []string
	for _, pid := range s.CertificatePersons() {
		pids = append(pids, pid.Reveal())
	}
	assert.Contains(t, pids, "06068700602")
	for _, o := range s.Orgs {
		assert.NotEmpty(t, o.Purpose, o.Organisasjonsnummer)
	}
	for _, p := range s.Persons {
		assert.NotEmpty(t, p.Purpose)
	}
}

func TestLoad_ReportsEveryProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seed.json")
	require.NoError(t, os.WriteFile(path, []byte(`{
	  "printProvider": "910075918",
	  "organisations": [
	    {"organisasjonsnummer": "910075924", "navn": "x", "organisasjonsform": "ORGL"},
	    {"organisasjonsnummer": "910075918", "navn": "y", "organisasjonsform": "ORGL", "enhetsregisteret": "maybe",
	     "elma": [{"documentType": "urn:x::y", "processes": ["urn:nope"]}], "svarut": [{"id": "a", "niva": 2}]}
	  ],
	  "persons": [
	    {"personidentifikator": "10068700602"},
	    {"personidentifikator": "06068700602", "krr": {"reservasjon": "KANSKJE", "status": "AKTIV", "varslingsstatus": "KAN_VARSLES",
	      "digitalPost": {"postkasseadresse": "a", "postkasseleverandoeradresse": "999999999"}}}
	  ]
	}`), 0o600))
	_, err := Load(path)
	require.ErrorIs(t, err, ErrInvalidSeed)
	msg := err.Error()
	for _, want := range []string{
		`organisations[0].organisasjonsnummer "910075924"`,
		`organisations[1] (910075918).enhetsregisteret "maybe"`,
		`organisations[1] (910075918).elma[0].documentType "urn:x::y"`,
		`organisations[1] (910075918).elma[0].processes[0] "urn:nope"`,
		`organisations[1] (910075918).svarut[0].niva 2`,
		`printProvider "910075918"`,
		`persons[0].personidentifikator`,
		`persons[1].krr.reservasjon "KANSKJE"`,
		`persons[1].krr.digitalPost.postkasseleverandoeradresse "999999999"`,
	} {
		assert.Contains(t, msg, want)
	}
	assert.NotContains(t, msg, "10068700602", "person numbers never appear in errors")
	assert.NotContains(t, msg, "06068700602", "person numbers never appear in errors")
}

func TestLoad_RejectsUnknownFields(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seed.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"printProvidr": "x"}`), 0o600))
	_, err := Load(path)
	require.ErrorIs(t, err, ErrInvalidSeed)
	assert.True(t, strings.Contains(err.Error(), "printProvidr"), err.Error())
}

func TestDefaultJSONRoundTrip(t *testing.T) {
	s, err := Parse(DefaultJSON())
	require.NoError(t, err)
	d, err := Default()
	require.NoError(t, err)
	assert.Equal(t, d, s)
}

func TestDefault_DPH(t *testing.T) {
	s, err := Default()
	require.NoError(t, err)
	gp, ok := s.HealthParty("8142519")
	require.True(t, ok)
	assert.Equal(t, "910088009", gp.Organisasjonsnummer)
	own, ok := s.HealthParty("8143154")
	require.True(t, ok)
	assert.Equal(t, "910077473", own.Organisasjonsnummer)
	_, ok = s.HealthParty("")
	assert.False(t, ok, "an organisation without a HER-id is no health party")
	p, ok := s.Person("06068700602")
	require.True(t, ok)
	assert.Equal(t, "8142519", p.Fastlege)
}

func TestParse_DPHValidation(t *testing.T) {
	_, err := Parse([]byte(`{
	  "printProvider": "984661185",
	  "organisations": [
	    {"organisasjonsnummer": "984661185", "navn": "P", "organisasjonsform": "AS", "certificate": true, "herId": "12a"},
	    {"organisasjonsnummer": "910075918", "navn": "y", "organisasjonsform": "ORGL", "herId": "8142519"},
	    {"organisasjonsnummer": "910076787", "navn": "z", "organisasjonsform": "ORGL", "certificate": true, "herId": "8142519"}
	  ],
	  "persons": [
	    {"personidentifikator": "06068700602", "fastlege": "999"},
	    {"personidentifikator": "09118532322", "fastlege": "8142519"}
	  ]
	}`))
	require.ErrorIs(t, err, ErrInvalidSeed)
	msg := err.Error()
	for _, want := range []string{
		`organisations[0] (984661185).herId "12a": want 1 to 9 digits`,
		`organisations[1] (910075918).herId: needs "navn" and "certificate": true`,
		`organisations[2] (910076787).herId "8142519": HER-id listed twice`,
		`persons[0].fastlege "999": want the herId of an organisation in this seed`,
		`persons[1].fastlege: needs "folkeregister"`,
	} {
		assert.Contains(t, msg, want)
	}
	assert.NotContains(t, msg, "06068700602", "person numbers never appear in errors")
}

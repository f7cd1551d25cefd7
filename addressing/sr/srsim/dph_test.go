package srsim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/addressing/internal/simauth"
	"github.com/efm-go/efm/addressing/internal/simcert"
	"github.com/efm-go/efm/addressing/regsim"
	"github.com/efm-go/efm/addressing/sr"
)

const (
	helse    = "urn:no:difi:profile:helse:helse:ver1.0"
	gpHerID  = "8142519"
	gpOrg    = "910088009"
	patient  = "06068700602"
	ownHerID = "8143154"
)

// getBeta asks the SR with or without X-Enable-Beta-Features.
func getBeta(t *testing.T, url, tok string, beta bool) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	if beta {
		req.Header.Set("X-Enable-Beta-Features", "true")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

func answer(t *testing.T, b []byte) sr.Answer {
	t.Helper()
	var a sr.Answer
	require.NoError(t, json.Unmarshal(b, &a), "body: %s", b)
	return a
}

func services(a sr.Answer) []string {
	var out []string
	for _, r := range a.ServiceRecords {
		out = append(out, r.Service.Identifier+" "+r.Process)
	}
	return out
}

// TestDPH covers §4.6 from the seeded NHN address register: beta header and scope gate it,
// her-id and fastlege-for give one DPH record, and a health organisation's number gets it too.
func TestDPH(t *testing.T) {
	gpPEM, _, err := simcert.SelfSigned("legesenter", gpOrg)
	require.NoError(t, err)
	set := start(t, regsim.Options{OrgCertificates: map[string][]byte{gpOrg: gpPEM}})
	k, err := simcert.Key()
	require.NoError(t, err)
	dph, err := simauth.Mint(k, "910077473", []string{"eformidling:dph", "eformidling:dpo"}, time.Minute)
	require.NoError(t, err)
	noDPH, err := simauth.Mint(k, "910077473", []string{"eformidling:dpo"}, time.Minute)
	require.NoError(t, err)
	base := set.SRURL + "/identifier/"

	t.Run("gated", func(t *testing.T) {
		st, _ := getBeta(t, base+"her-id:"+gpHerID, dph, false)
		assert.Equal(t, 404, st, "only with X-Enable-Beta-Features")
		st, body := getBeta(t, base+"her-id:"+gpHerID, noDPH, true)
		assert.Equal(t, 401, st)
		assert.Contains(t, string(body), "insufficient_scope")
	})
	t.Run("her-id", func(t *testing.T) {
		for _, path := range []string{"her-id:" + gpHerID, "her-id:" + gpHerID + "/process/" + helse} {
			st, body := getBeta(t, base+path, dph, true)
			require.Equal(t, 200, st, "%s: %s", path, body)
			a := answer(t, body)
			assert.Equal(t, "her-id:"+gpHerID, a.InfoRecord.Identifier.Reveal())
			assert.Equal(t, "NorskHelsenett", a.InfoRecord.EntityType.Name)
			assert.Equal(t, gpOrg, a.InfoRecord.OrganizationNumber)
			assert.Equal(t, gpHerID, a.InfoRecord.HerID)
			assert.Equal(t, "SVARVIK LEGESENTER", a.InfoRecord.OrganizationName)
			require.Len(t, a.ServiceRecords, 1)
			rec := a.ServiceRecords[0]
			assert.Equal(t, "DPH", rec.Service.Identifier)
			assert.Equal(t, helse, rec.Process)
			assert.Equal(t, []string{"urn:no:difi:helse:xsd:schema::dialogmelding"}, rec.DocumentTypes)
			assert.Equal(t, gpHerID, rec.HerID)
			assert.Equal(t, gpOrg, rec.OrganisationNumber.Reveal())
			assert.Nil(t, rec.Patient)
			c, err := rec.Certificate()
			require.NoError(t, err, "the register's certificate")
			assert.Equal(t, gpOrg, c.Subject.SerialNumber)
		}
		st, body := getBeta(t, base+"her-id:"+gpHerID+"/process/urn:no:difi:profile:arkivmelding:administrasjon:ver1.0", dph, true)
		assert.Equal(t, 404, st, "%s", body)
		st, _ = getBeta(t, base+"her-id:999", dph, true)
		assert.Equal(t, 404, st, "not in the register")
	})
	t.Run("fastlege-for", func(t *testing.T) {
		st, body := getBeta(t, base+"fastlege-for:"+patient+"/process/"+helse, dph, true)
		require.Equal(t, 200, st, "%s", body)
		a := answer(t, body)
		assert.Equal(t, "her-id:"+gpHerID, a.InfoRecord.Identifier.Reveal(), "the info record names the GP, not the patient")
		require.Len(t, a.ServiceRecords, 1)
		rec := a.ServiceRecords[0]
		assert.Equal(t, gpHerID, rec.HerID)
		require.NotNil(t, rec.Patient)
		assert.Equal(t, patient, rec.Patient.Fnr.Reveal())
		assert.Equal(t, "Nora", rec.Patient.FirstName)
		assert.Equal(t, "Testesen", rec.Patient.LastName)

		// A person without a regular GP; the number stays out of the answer.
		st, body = getBeta(t, base+"fastlege-for:09118532322", dph, true)
		assert.Equal(t, 404, st)
		assert.NotContains(t, string(body), "09118532322")
		st, body = getBeta(t, base+"fastlege-for:"+patient+"/process/urn:no:difi:profile:arkivmelding:administrasjon:ver1.0", dph, true)
		assert.Equal(t, 404, st)
		assert.NotContains(t, string(body), patient)
	})
	t.Run("organisation number", func(t *testing.T) {
		st, body := getBeta(t, base+gpOrg, dph, false)
		require.Equal(t, 200, st, "%s", body)
		assert.NotContains(t, services(answer(t, body)), "DPH "+helse, "no DPH without the beta header")
		st, body = getBeta(t, base+gpOrg, dph, true)
		require.Equal(t, 200, st, "%s", body)
		a := answer(t, body)
		assert.Contains(t, services(a), "DPH "+helse)
		assert.Contains(t, services(a), "DPV urn:no:difi:profile:arkivmelding:administrasjon:ver1.0", "archive records as before")
		assert.Equal(t, "SVARVIK LEGESENTER", a.InfoRecord.OrganizationName, "Enhetsregisteret's info record")

		st, body = getBeta(t, base+gpOrg+"/process/"+helse, dph, true)
		require.Equal(t, 200, st, "%s", body)
		assert.Equal(t, []string{"DPH " + helse}, services(answer(t, body)))
		st, _ = getBeta(t, base+gpOrg+"/process/"+helse, noDPH, true)
		assert.Equal(t, 404, st, "without the DPH scope the health process is unknown for an organisation")
		st, _ = getBeta(t, base+"910075918/process/"+helse, dph, true)
		assert.Equal(t, 404, st, "an organisation not in NHN's register")
	})
	t.Run("info", func(t *testing.T) {
		st, body := getBeta(t, set.SRURL+"/info/her-id:"+ownHerID, dph, true)
		require.Equal(t, 200, st, "%s", body)
		var ir sr.InfoRecord
		require.NoError(t, json.Unmarshal(body, &ir))
		assert.Equal(t, "910077473", ir.OrganizationNumber, "DPH's consumer_org comes from here")
		assert.Equal(t, ownHerID, ir.HerID)
		st, _ = getBeta(t, set.SRURL+"/info/her-id:"+ownHerID, dph, false)
		assert.Equal(t, 404, st)
	})
}

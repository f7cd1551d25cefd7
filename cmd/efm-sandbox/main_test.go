package main

import (
	"path/filepath"
	"testing"

	jprops "github.com/magiconair/properties"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/internal/sandbox"
	"github.com/efm-go/efm/packaging/testpki"
)

// Every daemon of a multi-agency sandbox needs its own Maskinporten client and
// its own port; with the shared base values the second daemon is refused every
// token (and cannot bind the first one's port).
func TestWriteProperties_OneClientAndPortPerOrganisation(t *testing.T) {
	dir := t.TempDir()
	orgs := map[string]*testpki.Identity{}
	for _, org := range []string{"910076787", sandbox.OwnOrg, "910075918"} {
		orgs[org] = &testpki.Identity{OrgNumber: org, KeystorePath: filepath.Join(dir, org+".p12"), KeystorePassword: "changeit", Alias: org}
	}
	base := map[string]string{
		"difi.move.oidc.clientId": sandbox.ClientID(sandbox.OwnOrg),
		"difi.move.oidc.url":      "http://127.0.0.1:1/token",
	}
	dpf := func(org string) map[string]string {
		return map[string]string{"difi.move.fiks.ut.username": "ut-" + org}
	}
	require.NoError(t, writeProperties(dir, base, orgs, dpf, 9093))

	ports, clients := map[string]string{}, map[string]string{}
	for org := range orgs {
		p, err := jprops.LoadFile(filepath.Join(dir, org+".properties"), jprops.UTF8)
		require.NoError(t, err)
		assert.Equal(t, org, p.MustGetString("difi.move.org.number"))
		assert.Equal(t, "http://127.0.0.1:1/token", p.MustGetString("difi.move.oidc.url"), "shared simulators stay shared")
		clients[org] = p.MustGetString("difi.move.oidc.clientId")
		assert.Equal(t, "ut-"+org, p.MustGetString("difi.move.fiks.ut.username"), "each organisation's own DPF account")
		ports[org] = p.MustGetString("server.port")
	}
	assert.Equal(t, map[string]string{
		sandbox.OwnOrg: "MOVE_IP_" + sandbox.OwnOrg, "910075918": "MOVE_IP_910075918", "910076787": "MOVE_IP_910076787",
	}, clients)
	assert.Equal(t, map[string]string{sandbox.OwnOrg: "9093", "910075918": "9094", "910076787": "9095"}, ports,
		"the own organisation keeps the default port, the others follow in number order")
}

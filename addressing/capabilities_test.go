package addressing

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/addressing/ident"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", strings.Split(t.Name(), "/")[0], name+".golden")
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create %s", path)
	assert.JSONEq(t, string(want), string(got))
}

// TestCapabilities checks E1's body for the seeded receivers against golden files, and the
// error mapping of the catalogue.
func TestCapabilities(t *testing.T) {
	e := newEnv(t, sender)
	ctx := context.Background()
	tests := []struct {
		name, id string
		q        CapabilitiesQuery
	}{
		{"dpo_and_dpe_organisation", "0192:910076787", CapabilitiesQuery{}},
		{"dpo_some_archive_processes", "910075918", CapabilitiesQuery{Process: admin}},
		{"einnsyn_only", "810074582", CapabilitiesQuery{Process: journal}},
		{"municipality_svarut", "910079018", CapabilitiesQuery{Process: admin}},
		{"supports_nothing_at_level_4", "910081004", CapabilitiesQuery{SecurityLevel: 4}},
		{"citizen_active_mailbox", "06068700602", CapabilitiesQuery{}},
		{"citizen_reserved_vedtak", "27126900142", CapabilitiesQuery{Process: vedtak}},
		{"citizen_reserved_info", "27126900142", CapabilitiesQuery{Process: info}},
		{"citizen_secret_address", "05050910077", CapabilitiesQuery{Process: info}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := e.res.Capabilities(ctx, tt.id, tt.q)
			require.NoError(t, err)
			assert.Equal(t, len(tt.id) == 11, c.NoStore, "citizens are never cached")
			b, err := json.MarshalIndent(c, "", "  ")
			require.NoError(t, err)
			for _, never := range []string{"pemCertificate", "BEGIN CERTIFICATE", "innbygger@example.test", "+4799999999", "kanVarsles", "epost", "mobil"} {
				assert.NotContains(t, string(b), never)
			}
			golden(t, tt.name, b)
		})
	}

	errs := []struct {
		name, id   string
		q          CapabilitiesQuery
		wantErr    error
		wantStatus int
		wantExc    string
	}{
		{"org check digit", "910075924", CapabilitiesQuery{}, ident.ErrOrgCheckDigit, 400, ExceptionInvalidIdentifier},
		{"person check digits", "10068700602", CapabilitiesQuery{}, ident.ErrPersonCheckDigits, 400, ExceptionInvalidIdentifier},
		{"synthetic not allowed", "17912099997", CapabilitiesQuery{}, ident.ErrSyntheticNotAllowed, 400, ExceptionInvalidIdentifier},
		{"no accepted form", "hello", CapabilitiesQuery{}, ident.ErrUnrecognised, 400, ExceptionInvalidIdentifier},
		{"unknown receiver", "910087002", CapabilitiesQuery{}, ErrReceiverNotFound, 404, ExceptionIdentifierNotFound},
		{"deleted receiver", "910083007", CapabilitiesQuery{}, ErrReceiverNotFound, 404, ExceptionIdentifierNotFound},
		{"process not supported", "910075918", CapabilitiesQuery{Process: journal}, ErrProcessNotSupported, 404, ExceptionIdentifierNotFound},
		{"no virksert certificate", "910078003", CapabilitiesQuery{}, ErrCertificateNotFound, 404, ExceptionIdentifierNotFound},
		{"level 4 impossible", "910080008", CapabilitiesQuery{Process: admin, SecurityLevel: 4}, ErrSecurityLevel, 400, ExceptionReceiverDoesNotAccept},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.res.Capabilities(ctx, tt.id, tt.q)
			require.ErrorIs(t, err, tt.wantErr)
			status, exc := CapabilitiesStatus(err)
			assert.Equal(t, tt.wantStatus, status)
			assert.Equal(t, tt.wantExc, exc)
			if len(tt.id) == 11 {
				assert.NotContains(t, err.Error(), tt.id)
			}
		})
	}
	assert.Equal(t, int64(4), e.res.Metrics().InvalidIdentifiers.Load())

	t.Run("synthetic allowed", func(t *testing.T) {
		e.res.cfg.Policy.AllowSynthetic = true
		defer func() { e.res.cfg.Policy.AllowSynthetic = false }()
		c, err := e.res.Capabilities(ctx, "17912099997", CapabilitiesQuery{Process: vedtak})
		require.NoError(t, err)
		require.Len(t, c.Capabilities, 1)
		assert.Equal(t, "DPI", c.Capabilities[0].ServiceIdentifier)
	})
}

// TestCapabilities_EverySeededReceiver: every seeded organisation and person gets an answer or
// one of the catalogue's errors, never a registry failure.
func TestCapabilities_EverySeededReceiver(t *testing.T) {
	e := newEnv(t, sender)
	e.res.cfg.Policy.AllowSynthetic = true
	ctx := context.Background()
	var ids []string
	for _, o := range e.seed.Orgs {
		ids = append(ids, o.Organisasjonsnummer)
	}
	for _, p := range e.seed.Persons {
		ids = append(ids, p.Personidentifikator)
	}
	for i, id := range ids {
		c, err := e.res.Capabilities(ctx, id, CapabilitiesQuery{})
		if err != nil {
			status, _ := CapabilitiesStatus(err)
			assert.Equal(t, 404, status, "entry %d", i)
			continue
		}
		for _, cp := range c.Capabilities {
			assert.NotEmpty(t, cp.Process)
			assert.NotEmpty(t, cp.DocumentTypes)
			for _, d := range cp.DocumentTypes {
				assert.True(t, strings.HasSuffix(d.Standard, "::"+d.Type), d.Standard)
			}
		}
	}
}

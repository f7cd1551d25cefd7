package check_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt/check"
	"github.com/efm-go/efm/integrasjonspunkt/config"
	"github.com/efm-go/efm/internal/sandbox"
	"github.com/efm-go/efm/transport/altinn/altinnsim"
)

func startSandbox(t *testing.T) (*sandbox.Sandbox, string) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	sb, err := sandbox.Start(ctx, sandbox.Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); sb.Close() })
	return sb, dir
}

func loadConfig(t *testing.T, sb *sandbox.Sandbox, dir string, extra map[string]string) *config.Config {
	t.Helper()
	ov := map[string]string{}
	for k, v := range sb.Overrides {
		ov[k] = v
	}
	for k, v := range extra {
		ov[k] = v
	}
	cfg, _, err := config.Load(config.Source{Overrides: ov, DataDir: dir + "/data"})
	require.NoError(t, err)
	return cfg
}

func service(t *testing.T, sb *sandbox.Sandbox, name string) string {
	t.Helper()
	for _, s := range sb.Services {
		if s.Name == name {
			return s.BaseURL
		}
	}
	t.Fatalf("no simulator %s", name)
	return ""
}

// simFault sets a fault through the simulator's /_sim/ control API, as an
// operator of the sandbox would, and clears it when the case ends.
func simFault(t *testing.T, base, fault string) {
	t.Helper()
	resp, err := http.Post(base+"/_sim/faults", "application/json", strings.NewReader(fault))
	require.NoError(t, err)
	resp.Body.Close()
	require.Less(t, resp.StatusCode, 300, "fault %s at %s", fault, base)
	t.Cleanup(func() {
		req, _ := http.NewRequest(http.MethodDelete, base+"/_sim/faults", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	})
}

func report(rep check.Report) string {
	var b bytes.Buffer
	rep.Print(&b)
	return b.String()
}

// The sandbox is green; each fault knob makes the check name the part that
// fails, with a fix, and no part after it is blamed.
func TestCheck_GreenInTheSandboxAndEachFaultNamed(t *testing.T) {
	sb, dir := startSandbox(t)
	cfg := loadConfig(t, sb, dir, nil)
	opts := check.Options{Timeout: 3 * time.Second}

	rep := check.Run(context.Background(), cfg, opts)
	require.True(t, rep.OK(), "the sandbox must be green:\n%s", report(rep))
	var parts []string
	for _, r := range rep.Results {
		parts = append(parts, r.Part)
	}
	assert.Equal(t, []string{"certificate", "maskinporten", "service registry", "krr",
		"altinn token exchange (DPO)", "altinn broker (DPO)",
		"altinn token exchange (DPV)", "altinn correspondence (DPV)",
		"maskinporten token (DPI)", "dpi access point (DPI)",
		"svarut (DPF)", "svarinn (DPF)",
		"service bus key (DPE)"}, parts, "one round trip per enabled part")
	t.Logf("green:\n%s", report(rep))

	tests := []struct {
		sim, fault, part, fix string
	}{
		{"maskinporten", `{"path": "/token", "status": 503}`, "maskinporten", "status.digdir.no"},
		{"service-registry", `{"path": "/identifier/", "status": 503}`, "service registry", "server errors"},
		{"krr", `{"path": "/rest/v2/printSertifikat", "status": 503}`, "krr", "krr"},
		{"altinn-authentication", `{"path": "` + altinnsim.ExchangePath + `", "status": 401}`, "altinn token exchange (DPO)", "system user"},
		{"altinn-broker", `{"path": "/broker/api/v1/filetransfer", "method": "GET", "status": 403}`, "altinn broker (DPO)", "difi.move.dpo.resource"},
		{"altinn-correspondence", `{"path": "/correspondence/api/v1/correspondence/*", "status": 403}`, "altinn correspondence (DPV)", "DPV access list"},
		{"service-registry", `{"path": "/sastoken", "status": 500}`, "service bus key (DPE)", "server errors"},
		{"dpi", `{"path": "/messages/out/*/statuses", "status": 401}`, "dpi access point (DPI)", "refused the credentials"},
		{"dpi", `{"path": "/messages/out/*/statuses", "status": 503}`, "dpi access point (DPI)", "server errors"},
		{"ks-fiks", `{"path": "/api/v2/forsendelsestyper", "status": 401}`, "svarut (DPF)", "difi.move.fiks.ut.password"},
		{"ks-fiks", `{"path": "/tjenester/svarinn/mottaker/hentNyeForsendelser", "status": 401}`, "svarinn (DPF)", "difi.move.fiks.inn.password"},
		{"altinn-broker", `{"path": "/broker/api/v1/filetransfer", "method": "GET", "drop": true}`, "altinn broker (DPO)", "firewall"},
	}
	for _, tt := range tests {
		t.Run(tt.sim+" "+tt.part, func(t *testing.T) {
			simFault(t, service(t, sb, tt.sim), tt.fault)
			rep := check.Run(context.Background(), cfg, opts)
			require.False(t, rep.OK(), "the fault went unnoticed:\n%s", report(rep))
			f := rep.FirstFailure()
			require.NotNil(t, f)
			assert.Equal(t, tt.part, f.Part, "the failing part is named:\n%s", report(rep))
			assert.Contains(t, f.Fix, tt.fix, "with its fix:\n%s", report(rep))
			assert.Contains(t, report(rep), "FAIL  "+tt.part)
		})
	}
}

// A wrong client id is Maskinporten's invalid_client: the fix names the key.
func TestCheck_MaskinportenInvalidClientNamesTheKey(t *testing.T) {
	sb, dir := startSandbox(t)
	cfg := loadConfig(t, sb, dir, map[string]string{"difi.move.oidc.clientId": "MOVE_IP_000000000"})
	rep := check.Run(context.Background(), cfg, check.Options{Timeout: 3 * time.Second})
	f := rep.FirstFailure()
	require.NotNil(t, f, report(rep))
	assert.Equal(t, "maskinporten", f.Part)
	assert.Contains(t, f.Error, "invalid_client")
	assert.Contains(t, f.Fix, "difi.move.oidc.clientId")
	for _, r := range rep.Results[2:] {
		assert.True(t, r.OK || r.Skipped || r.Part == "service registry" || r.Part == "krr", "only maskinporten is blamed: %+v", r)
	}
}

// Only the channels asked for are tried, and the report is kept for the
// status page.
func TestCheck_OneChannelAndTheSavedReport(t *testing.T) {
	sb, dir := startSandbox(t)
	cfg := loadConfig(t, sb, dir, nil)
	rep := check.Run(context.Background(), cfg, check.Options{Channels: []string{"DPV"}})
	require.True(t, rep.OK(), report(rep))
	for _, r := range rep.Results {
		assert.NotEqual(t, "DPO", r.Channel)
		assert.NotEqual(t, "DPE", r.Channel)
	}
	require.NoError(t, rep.Save(dir))
	last := check.Last(dir)
	require.NotNil(t, last)
	assert.Equal(t, len(rep.Results), len(last.Results))
	assert.True(t, last.OK())
}

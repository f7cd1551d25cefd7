package e2e

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/internal/apitest"
	"github.com/efm-go/efm/update"
	"github.com/efm-go/efm/update/internal/svcmgr"
	"github.com/efm-go/efm/update/manifest"
	"github.com/efm-go/efm/update/updatesim"
)

// TestE2E_MessagesSurviveTheSwap accepts messages just before an update
// (issue 8, "Must show" 2): the broker holds them back, so they are still
// unsent when 1.0.0 swaps itself for 1.1.0, and 1.1.0 must deliver every one.
func TestE2E_MessagesSurviveTheSwap(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the daemon twice and runs it as a child process")
	}
	build := t.TempDir()
	v100 := buildDaemon(t, build, "1.0.0")
	v110 := buildDaemon(t, build, "1.1.0")

	sim, err := updatesim.New(updatesim.Options{})
	require.NoError(t, err)
	srv := httptest.NewServer(sim)
	defer srv.Close()

	dir := t.TempDir()
	d := &daemon{t: t, exe: filepath.Join(dir, "bin", "integrasjonspunkt"), data: filepath.Join(dir, "data")}
	if runtime.GOOS == "windows" {
		d.exe += ".exe"
	}
	require.NoError(t, os.MkdirAll(filepath.Dir(d.exe), 0o755))
	require.NoError(t, os.MkdirAll(d.data, 0o750))
	require.NoError(t, os.WriteFile(d.exe, read(t, v100), 0o755))
	port := freePort(t)
	d.base = "http://127.0.0.1:" + strconv.Itoa(port)
	conf := filepath.Join(dir, "integrasjonspunkt-local.properties")
	require.NoError(t, os.WriteFile(conf, []byte(strings.Join([]string{
		"efm.update.url=" + srv.URL + "/manifest.json",
		"efm.update.trusted-keys=" + sim.PublicKey().String(),
		"efm.update.windows=* * * * * *",
		"efm.update.window-length=1h",
		"efm.update.max-delay=0",
		"efm.update.check-interval=1s",
		"efm.update.probation=15s",
		"efm.update.probation-stable=2s",
		"",
	}, "\n")), 0o600))
	d.mgr = &svcmgr.Manager{
		Path: d.exe, Dir: d.data,
		Args: []string{"run", "--sandbox", "--data", d.data, "--config", conf},
		Env:  []string{"SERVER_PORT=" + strconv.Itoa(port)},
	}
	require.NoError(t, d.mgr.Start())
	defer d.mgr.Stop()
	d.waitFor("1.0.0 serving", 60*time.Second, func() bool { return d.serving() && d.version() == "1.0.0" })

	// The simulators run inside the daemon and restart with it, so a message
	// already handed to the old broker would wait for receipts forever. The
	// broker refuses uploads instead: every message is unsent at the swap.
	apitest.SimFault(t, d.base, "altinn-broker", `{"path":"/broker/api/v1/filetransfer","method":"POST","status":503}`)
	var ids []string
	for range 10 {
		ids = append(ids, apitest.SendReadmeMessage(t, d.base))
	}
	for _, id := range ids {
		require.False(t, apitest.HasStatus(d.base, id, "SENDT"), "message %s sent although the broker refused uploads", id)
	}

	platform := runtime.GOOS + "/" + runtime.GOARCH
	require.NoError(t, sim.Publish("1.1.0", map[string][]byte{platform: read(t, v110)}, updatesim.ReleaseOptions{}))
	for _, env := range []string{"production", "staging"} {
		require.NoError(t, sim.SetChannel(env, manifest.ChannelStable, "1.1.0"))
	}
	d.waitFor("1.1.0 committed", 90*time.Second, func() bool {
		s := d.state()
		return s.Phase == update.PhaseCommitted && s.To == "1.1.0" && d.version() == "1.1.0"
	})
	for _, id := range ids {
		d.waitFor("message "+id+" delivered after the swap", 60*time.Second, func() bool { return apitest.HasStatus(d.base, id, "LEVERT") })
	}
}

package wintest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/internal/apitest"
	"github.com/efm-go/efm/packaging/testpki"
)

// Paths with spaces and backslashes, under C:\ProgramData as an installed
// service has them (operations.md §1.4).
const (
	configDirWin = `C:\ProgramData\efm test\config`
	configWin    = configDirWin + `\integrasjonspunkt-local.properties`
)

func TestWine_Version(t *testing.T) {
	p := wine(t)
	out, code := p.run(t, nil, exeWin, "version")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "integrasjonspunkt "+testVersion)
	assert.Regexp(t, `go:\s+go1\.`, out)
	assert.Contains(t, out, "v1 (current)")
}

// TestWine_ConfigCheck_WindowsPaths reads a properties file the way a Windows
// operator writes one: escaped backslashes (Java properties syntax), spaces,
// a secret from ${file:C:\...}.
func TestWine_ConfigCheck_WindowsPaths(t *testing.T) {
	p := wine(t)
	// config check opens the keystore: a real one, where the file says.
	pki, err := testpki.Ensure(t.TempDir(), []string{"910077473"})
	require.NoError(t, err)
	p12, err := os.ReadFile(pki.Orgs["910077473"].KeystorePath)
	require.NoError(t, err)
	writeFile(t, p.path(configDirWin+`\virksomhet sertifikat.p12`), string(p12))
	writeFile(t, p.path(configDirWin+`\keystore password.txt`), testpki.KeystorePassword+"\n")
	props := strings.Join([]string{
		`difi.move.org.number=910077473`,
		`difi.move.org.keystore.path=file:C:\\ProgramData\\efm test\\config\\virksomhet sertifikat.p12`,
		`difi.move.org.keystore.alias=910077473`,
		`difi.move.org.keystore.password=${file:C:\\ProgramData\\efm test\\config\\keystore password.txt}`,
		`difi.move.feature.enableDPO=true`,
		`server.port=19093`,
	}, "\r\n") + "\r\n" // as Notepad saves it
	writeFile(t, p.path(configWin), props)

	out, code := p.run(t, nil, exeWin, "config", "check", "--config", configWin, "--data", `C:\ProgramData\efm test\data`)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "configuration OK: organisation 910077473")
	assert.Regexp(t, `difi\.move\.org\.keystore\.path\s+file:C:\\ProgramData\\efm test\\config\\virksomhet sertifikat\.p12\s+\(file line 2\)`, out)
	assert.Regexp(t, `difi\.move\.org\.keystore\.password\s+\*+\s+\(file line 4\)`, out)
	assert.NotContains(t, out, testpki.KeystorePassword, "the secret is masked")
	assert.Regexp(t, `server\.port\s+19093\s+\(file line 6\)`, out)

	// The ${file:} secret is really read from the Windows path: a missing
	// file is an error naming it.
	bad := `C:\ProgramData\efm test\config\bad.properties`
	writeFile(t, p.path(bad), strings.Replace(props, `keystore password.txt`, `no such file.txt`, 1))
	out, code = p.run(t, nil, exeWin, "config", "check", "--config", bad)
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "no such file.txt")
}

// TestWine_RunSandbox_ReadmeMessage is the README's tour on Windows: run
// --sandbox with the data dir under C:\ProgramData, /manage/health UP, the
// README's DPO message to LEVERT, a clean stop, and the store and queue on
// Wine's filesystem where operations.md §1.4 puts them.
func TestWine_RunSandbox_ReadmeMessage(t *testing.T) {
	p := wine(t)
	port := apitest.FreePort(t)
	data := `C:\ProgramData\efm test\integrasjonspunkt data`
	// The config file is read by run too: it sets the port.
	cfg := configDirWin + `\run.properties`
	writeFile(t, p.path(cfg), fmt.Sprintf("server.port=%d\r\nefm.shutdown.drain=5s\r\n", port))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	d := p.start(t, exeWin, "run", "--sandbox", "--config", cfg, "--data", data)
	waitHealthy(t, d, base)

	id := apitest.SendReadmeMessage(t, base)
	deadline := time.Now().Add(90 * time.Second)
	for !apitest.HasStatus(base, id, "LEVERT") {
		if time.Now().After(deadline) {
			t.Fatalf("no LEVERT within 90 s: %v\n%s", apitest.Statuses(base, id), d.out.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
	assert.Equal(t, "OPPRETTET", apitest.Statuses(base, id)[0])

	code := d.stop(t)
	require.Equal(t, 0, code, "a clean stop exits 0:\n%s", d.out.String())
	assert.Contains(t, d.out.String(), `"msg":"integrasjonspunkt stopped"`)

	for _, f := range []string{`\store.db`, `\jetstream`, `\secrets\pseudonym.key`} {
		_, err := os.Stat(p.path(data + f))
		assert.NoError(t, err, "%s%s must be in the data dir", data, f)
	}
	// The clean stop checkpointed the WAL into the database file.
	if fi, err := os.Stat(p.path(data + `\store.db-wal`)); err == nil {
		assert.Zero(t, fi.Size(), "the WAL is checkpointed on a clean stop")
	}

	// The store on Wine's filesystem survives the restart with the message.
	d = p.start(t, exeWin, "run", "--sandbox", "--config", cfg, "--data", data)
	waitHealthy(t, d, base)
	assert.Contains(t, apitest.Statuses(base, id), "LEVERT", "the message's history is kept across a restart")
	require.Equal(t, 0, d.stop(t), d.out.String())
}

// daemon is a program running in the prefix.
type daemon struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

func (p *prefix) start(t *testing.T, exe string, args ...string) *daemon {
	t.Helper()
	d := &daemon{out: &syncBuffer{}, done: make(chan struct{})}
	d.cmd = p.command(context.Background(), p.wine, append([]string{exe}, args...)...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	require.NoError(t, d.cmd.Start())
	go func() { d.err = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	})
	return d
}

// stop sends what Ctrl-C sends (Wine turns SIGINT into CTRL_C_EVENT) and
// waits for the exit code.
func (d *daemon) stop(t *testing.T) int {
	t.Helper()
	require.NoError(t, d.cmd.Process.Signal(os.Interrupt))
	select {
	case <-d.done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("no exit within 2 minutes of Ctrl-C:\n%s", d.out.String())
	}
	return d.cmd.ProcessState.ExitCode()
}

func waitHealthy(t *testing.T, d *daemon, base string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case <-d.done:
			t.Fatalf("the daemon exited (%v):\n%s", d.err, d.out.String())
		default:
		}
		if apitest.HealthStatus(base) == "UP" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not UP within 2 minutes:\n%s", d.out.String())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

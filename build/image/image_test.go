// Package imagetest builds the container image with image.sh (`make image`),
// checks its configuration and, where this machine can run a container,
// runs the README's tour in it.
package imagetest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/internal/apitest"
	"github.com/efm-go/efm/internal/testtool"
)

const (
	uid     = 10001
	dataDir = "/var/lib/integrasjonspunkt"
	version = "9.8.7-image"
)

func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the daemon and an image")
	}
	buildah := testtool.Need(t, "buildah", "buildah")
	bin := buildDaemon(t)
	name := fmt.Sprintf("localhost/integrasjonspunkt-test:%d", time.Now().UnixNano())
	out, err := exec.Command("sh", "image.sh", bin, version, name).CombinedOutput()
	require.NoError(t, err, "image.sh: %s", out)
	t.Cleanup(func() { _ = exec.Command(buildah, "rmi", "-f", name).Run() })

	b, err := exec.Command(buildah, "inspect", "--type", "image", name).Output()
	require.NoError(t, err)
	var img struct {
		Docker struct {
			Config struct {
				User        string
				Env         []string
				Entrypoint  []string
				Cmd         []string
				Volumes     map[string]any
				Healthcheck struct{ Test []string }
			} `json:"config"`
		} `json:"Docker"`
	}
	require.NoError(t, json.Unmarshal(b, &img))
	c := img.Docker.Config
	assert.Equal(t, fmt.Sprintf("%d:%d", uid, uid), c.User, "never root")
	assert.Equal(t, map[string]any{dataDir: map[string]any{}}, c.Volumes, "one data volume")
	assert.Contains(t, c.Env, "EFM_UPDATE_MODE=off", "a container is updated by a new image")
	assert.Equal(t, []string{"/opt/integrasjonspunkt/bin/integrasjonspunkt"}, c.Entrypoint)
	assert.Equal(t, []string{"run", "--config", "/etc/integrasjonspunkt/integrasjonspunkt-local.properties", "--data", dataDir}, c.Cmd)
	assert.Equal(t, []string{"CMD", "/opt/integrasjonspunkt/bin/integrasjonspunkt", "probe", "--config", "/etc/integrasjonspunkt/integrasjonspunkt-local.properties"}, c.Healthcheck.Test,
		"liveness through the binary itself: the image has no shell or curl")

	smoke(t, name)
}

// smoke runs the image with podman: the sandbox, the README's DPO message to
// LEVERT, the health check, a clean stop, the store on the volume.
func smoke(t *testing.T, image string) {
	podman := testtool.Need(t, "podman", "podman")
	// runc, not crun: crun refuses hybrid cgroup hierarchies such as this
	// machine's. Ulimits below the host's: raising them is not allowed here.
	runtime := testtool.Need(t, "runc", "runc")
	base := []string{"--runtime", runtime}
	limits := []string{"--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"}
	if out, err := exec.Command(podman, append(append(append(base, "run", "--rm", "--network", "host"), limits...), image, "version")...).CombinedOutput(); err != nil {
		t.Skipf("this machine cannot run a container (%v): %s", err, lastLine(string(out)))
	}

	data := t.TempDir()
	require.NoError(t, os.Chown(data, uid, uid), "the volume belongs to the image's user")
	ctr, api, logs := startContainer(t, podman, base, limits, data, image)

	id := apitest.SendReadmeMessage(t, api)
	deadline := time.Now().Add(time.Minute)
	for !apitest.HasStatus(api, id, "LEVERT") {
		if time.Now().After(deadline) {
			t.Fatalf("no LEVERT within a minute: %v\n%s", apitest.Statuses(api, id), logs())
		}
		time.Sleep(250 * time.Millisecond)
	}

	out, err := exec.Command(podman, append(base, "healthcheck", "run", ctr)...).CombinedOutput()
	assert.NoError(t, err, "health check: %s", out)
	out, err = exec.Command(podman, "top", ctr, "user", "args").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Regexp(t, `(?m)^integrasjonspunkt\s+/opt/integrasjonspunkt/bin/integrasjonspunkt run`, string(out), "the daemon runs as the image's user")

	out, err = exec.Command(podman, append(base, "stop", "-t", "60", ctr)...).CombinedOutput()
	require.NoError(t, err, "podman stop: %s", out)
	code, err := exec.Command(podman, "inspect", ctr, "--format", "{{.State.ExitCode}}").Output()
	require.NoError(t, err)
	assert.Equal(t, "0", strings.TrimSpace(string(code)), "SIGTERM drains and exits 0:\n%s", logs())
	assert.Contains(t, logs(), `"msg":"integrasjonspunkt stopped"`)
	fi, err := os.Stat(filepath.Join(data, "store.db"))
	require.NoError(t, err, "the store is on the volume")
	assert.NotZero(t, fi.Size())
}

// startContainer runs the image's daemon with its sandbox on a free port
// and waits until it is UP. The port is free when picked but not held, and
// the other test packages run meanwhile: when the daemon loses the port to
// one of them, it starts again on another.
func startContainer(t *testing.T, podman string, base, limits []string, data, image string) (ctr, api string, logs func() string) {
	for attempt := 1; ; attempt++ {
		port := apitest.FreePort(t)
		ctr = fmt.Sprintf("iptest-%d", time.Now().UnixNano())
		args := append(append(append(base, "run", "-d", "--name", ctr, "--network", "host"), limits...),
			"-v", data+":"+dataDir, "-e", fmt.Sprintf("SERVER_PORT=%d", port),
			image, "run", "--sandbox", "--config", "/etc/integrasjonspunkt/integrasjonspunkt-local.properties", "--data", dataDir)
		out, err := exec.Command(podman, args...).CombinedOutput()
		require.NoError(t, err, "podman run: %s", out)
		name := ctr
		t.Cleanup(func() { _ = exec.Command(podman, "rm", "-f", name).Run() })
		logs = func() string {
			b, _ := exec.Command(podman, "logs", name).CombinedOutput()
			return string(b)
		}
		api = fmt.Sprintf("http://127.0.0.1:%d", port)
		deadline := time.Now().Add(2 * time.Minute)
		for apitest.HealthStatus(api) != "UP" {
			if l := logs(); strings.Contains(l, "address already in use") && attempt < 3 {
				t.Logf("port %d taken before the daemon bound it; starting again", port)
				_ = exec.Command(podman, "rm", "-f", name).Run()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("not UP within 2 minutes:\n%s", logs())
			}
			time.Sleep(300 * time.Millisecond)
		}
		if apitest.HealthStatus(api) == "UP" {
			return ctr, api, logs
		}
	}
}

func buildDaemon(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "integrasjonspunkt")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out,
		"-ldflags", "-s -w -X github.com/efm-go/efm/internal/buildinfo.Version="+version, "./cmd/integrasjonspunkt")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", b)
	return out
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

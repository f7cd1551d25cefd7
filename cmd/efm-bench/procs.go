package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

// ownOrg is the sandbox daemon's organisation (internal/sandbox.OwnOrg; not
// imported so that efm-bench links none of the simulators).
const ownOrg = "910077473"

// children are the child processes running, to end on an interrupt.
var children sync.Map // *exec.Cmd → true

// killChildren ends every child process efm-bench started.
func killChildren() {
	children.Range(func(k, _ any) bool {
		k.(*exec.Cmd).Process.Kill()
		return true
	})
}

// proc is a child process efm-bench started and must end.
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func start(name string, args []string, env []string, logPath string) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{cmd: cmd, log: logPath, done: make(chan struct{})}
	children.Store(cmd, true)
	go func() { cmd.Wait(); children.Delete(cmd); logf.Close(); close(p.done) }()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop ends the process with SIGTERM, then SIGKILL after a grace period.
func (p *proc) stop() {
	if p == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail is the end of the process's log, for errors.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// sandbox is bin/efm-sandbox in its own process.
type sandbox struct {
	*proc
	dir      string
	services map[string]string // name → base URL
}

// startSandbox runs the simulators. The PKI is kept under dir between runs:
// making an RSA key for every seeded organisation is most of its start.
func startSandbox(bin, dir string) (*sandbox, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	os.Remove(filepath.Join(dir, ownOrg+".properties"))
	out := filepath.Join(dir, "sandbox.out")
	os.Remove(out)
	p, err := start(filepath.Join(bin, "efm-sandbox"), []string{"-dir", dir, "-base-port", strconv.Itoa(port)}, nil, out)
	if err != nil {
		return nil, err
	}
	sb := &sandbox{proc: p, dir: dir, services: map[string]string{}}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) && !p.exited() {
		// The properties files are written after the list of services.
		if _, err := os.Stat(filepath.Join(dir, ownOrg+".properties")); err == nil {
			b, _ := os.ReadFile(out)
			for _, line := range strings.Split(string(b), "\n") {
				if f := strings.Fields(line); len(f) == 2 && strings.HasPrefix(f[1], "http") {
					sb.services[f[0]] = f[1]
				}
			}
			if sb.services["altinn-broker"] != "" {
				return sb, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.stop()
	return nil, fmt.Errorf("efm-sandbox did not start:\n%s", p.tail())
}

// call calls a simulator's /_sim/ control API.
func (sb *sandbox) call(sim, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, sb.services[sim]+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		return fmt.Errorf("%s %s%s: %d %s", method, sim, path, res.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// daemon is bin/integrasjonspunkt in its own process.
type daemon struct {
	*proc
	base    string
	data    string
	started time.Duration // from exec to ready
}

// daemonConfig writes the sandbox's properties for the own organisation with
// extra on top into dir and returns the file and the port.
func daemonConfig(sb *sandbox, dir string, extra map[string]string) (string, int, error) {
	b, err := os.ReadFile(filepath.Join(sb.dir, ownOrg+".properties"))
	if err != nil {
		return "", 0, err
	}
	port, err := freePort()
	if err != nil {
		return "", 0, err
	}
	ov := map[string]string{
		"server.port":        strconv.Itoa(port),
		"server.address":     "127.0.0.1",
		"efm.log.level":      "warn",
		"efm.shutdown.drain": "2s",
	}
	maps.Copy(ov, extra)
	var w strings.Builder
	w.Write(b)
	w.WriteString("# efm-bench\n")
	for _, k := range slices.Sorted(maps.Keys(ov)) {
		fmt.Fprintf(&w, "%s=%s\n", k, ov[k])
	}
	conf := filepath.Join(dir, "integrasjonspunkt.properties")
	return conf, port, os.WriteFile(conf, []byte(w.String()), 0o600)
}

// startDaemon runs a daemon with its data in dir/data and waits until it is
// ready (/manage/health/readiness answers 200).
func startDaemon(bin string, sb *sandbox, dir string, extra map[string]string) (*daemon, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	conf, port, err := daemonConfig(sb, dir, extra)
	if err != nil {
		return nil, err
	}
	return runDaemon(bin, conf, port, filepath.Join(dir, "data"), filepath.Join(dir, "daemon.log"))
}

func runDaemon(bin, conf string, port int, data, logPath string) (*daemon, error) {
	t0 := time.Now()
	p, err := start(filepath.Join(bin, "integrasjonspunkt"), []string{"run", "--config", conf, "--data", data}, nil, logPath)
	if err != nil {
		return nil, err
	}
	d := &daemon{proc: p, base: fmt.Sprintf("http://127.0.0.1:%d", port), data: data}
	c := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) && !p.exited() {
		res, err := c.Get(d.base + "/manage/health/readiness")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				d.started = time.Since(t0)
				return d, nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.stop()
	return nil, fmt.Errorf("daemon did not become ready:\n%s", p.tail())
}

// sum adds up the samples on /manage/prometheus whose series line match
// accepts; found says whether any did.
func (d *daemon) sum(ctx context.Context, match func(series string) bool) (sum float64, found bool, err error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", d.base+"/manage/prometheus", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer res.Body.Close()
	s := bufio.NewScanner(res.Body)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || !match(strings.Join(f[:len(f)-1], " ")) {
			continue
		}
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		sum, found = sum+v, true
	}
	return sum, found, s.Err()
}

// counter reads one efm_messages_total series (outgoing, the status) from
// /manage/prometheus: a cheap way to count messages at a status without
// asking the store for pages.
func (d *daemon) counter(ctx context.Context, status string) (float64, error) {
	n, _, err := d.sum(ctx, func(series string) bool {
		return strings.HasPrefix(series, "efm_messages_total{") && strings.Contains(series, `direction="OUTGOING"`) &&
			strings.Contains(series, `status="`+status+`"`)
	})
	return n, err
}

// gauge reads one unlabelled metric from /manage/prometheus.
func (d *daemon) gauge(ctx context.Context, name string) (float64, error) {
	v, found, err := d.sum(ctx, func(series string) bool { return series == name })
	if err == nil && !found {
		err = fmt.Errorf("no metric %s", name)
	}
	return v, err
}

// waitCount waits until at least n outgoing messages reached status and
// returns when the count first reached n.
func (d *daemon) waitCount(status string, n int, within time.Duration) (time.Time, error) {
	deadline := time.Now().Add(within)
	var got float64
	for time.Now().Before(deadline) {
		var err error
		got, err = d.counter(context.Background(), status)
		if err == nil && got >= float64(n) {
			return time.Now(), nil
		}
		if d.exited() {
			return time.Time{}, fmt.Errorf("daemon exited:\n%s", d.tail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("%.0f of %d messages reached %s within %s", got, n, status, within)
}

// dirSize is the bytes of the files under dir whose base name match says.
func dirSize(dir string, match func(rel string) bool) int64 {
	var n int64
	filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if match(rel) {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// statuses is E20: a message's statuses, oldest first.
func (d *daemon) statuses(ctx context.Context, id string) ([]string, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", d.base+"/api/statuses/"+id+"?size=100", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var page struct {
		Content []struct {
			Status string `json:"status"`
		} `json:"content"`
	}
	if err := json.NewDecoder(res.Body).Decode(&page); err != nil {
		return nil, err
	}
	var out []string
	for _, c := range page.Content {
		out = append(out, c.Status)
	}
	return out, nil
}

// liveBytes is the bytes of store.db's pages in use: the file keeps the
// pages a deleted row freed (SQLite reuses them but never shrinks the file
// without VACUUM), so its size is the high-water mark, not what is stored.
// Read through a read-only connection; a running daemon's WAL is seen.
func liveBytes(path string) (int64, error) {
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var pages, free, size int64
	for q, v := range map[string]*int64{"PRAGMA page_count": &pages, "PRAGMA freelist_count": &free, "PRAGMA page_size": &size} {
		if err := db.QueryRow(q).Scan(v); err != nil {
			return 0, fmt.Errorf("%s: %w", q, err)
		}
	}
	return (pages - free) * size, nil
}

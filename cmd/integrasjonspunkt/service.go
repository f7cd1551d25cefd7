package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/kardianos/service"

	"github.com/efm-go/efm/integrasjonspunkt/config"
	"github.com/efm-go/efm/integrasjonspunkt/events"
)

const serviceName = "integrasjonspunkt"

func init() {
	commands = append(commands,
		command{"install", "register the service (idempotent); --config, --data, --user", installCmd},
		command{"uninstall", "remove the service registration; --purge also removes the data dir", uninstallCmd},
		command{"start", "start the installed service", controlCmd("start")},
		command{"stop", "stop the service (it drains first)", controlCmd("stop")},
		command{"restart", "restart the service", controlCmd("restart")},
		command{"status", "service state and the daemon's own health; exit 0 UP, 1 DOWN/DEGRADED, 3 stopped, 4 not installed", statusCmd},
	)
}

// defaultUser is the service account operations.md §1.3 creates at install.
func defaultUser() string {
	if runtime.GOOS == "windows" {
		return `NT SERVICE\integrasjonspunkt`
	}
	return "integrasjonspunkt"
}

// serviceConfig is the registration. The systemd unit is rendered here, not
// by kardianos' template, so that it can be tested and compared byte for byte
// (idempotent install).
func serviceConfig(loc locations, userName string, drain time.Duration) *service.Config {
	args := []string{"run", "--data", loc.data}
	if loc.config != "" {
		args = append(args, "--config", loc.config)
	}
	exe, _ := os.Executable()
	return &service.Config{
		Name:             serviceName,
		DisplayName:      "eFormidling integrasjonspunkt",
		Description:      "eFormidling integration point: secure message exchange for public agencies",
		Executable:       exe,
		Arguments:        args,
		UserName:         userName,
		WorkingDirectory: loc.data,
		Option: service.KeyValue{
			"StartType":              "automatic",
			"DelayedAutoStart":       true,
			"OnFailure":              "restart",
			"OnFailureDelayDuration": "5s",
			"OnFailureResetPeriod":   86400,
			"Restart":                "always",
			"SystemdScript":          systemdUnit(unitParams{Exe: exe, Args: args, User: userName, Data: loc.data, Drain: drain}),
		},
	}
}

type unitParams struct {
	Exe   string
	Args  []string
	User  string
	Data  string
	Drain time.Duration
}

var unitTemplate = template.Must(template.New("unit").Funcs(template.FuncMap{
	"q":    systemdQuote,
	"join": func(a []string) string { return strings.Join(mapQuote(a), " ") },
}).Parse(`[Unit]
Description=eFormidling integrasjonspunkt
After=network-online.target
Wants=network-online.target
ConditionFileIsExecutable={{q .Exe}}
StartLimitIntervalSec=0

[Service]
Type=simple
ExecStart={{q .Exe}} {{join .Args}}
WorkingDirectory={{q .Data}}
{{- if .User}}
User={{.User}}
Group={{.User}}
{{- end}}
Restart=always
RestartSec=5
TimeoutStopSec={{.StopTimeout}}
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths={{q .Data}} {{q .BinDir}}
PrivateTmp=yes
ProtectHome=yes
ProtectKernelTunables=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
UMask=0027

[Install]
WantedBy=multi-user.target
`))

// systemdUnit renders the unit with the hardening of operations.md §1.2. The
// binary's dir is writable because the self-update swaps the binary there.
// TimeoutStopSec exceeds the drain so systemd never kills a draining daemon.
func systemdUnit(p unitParams) string {
	var b bytes.Buffer
	err := unitTemplate.Execute(&b, struct {
		unitParams
		BinDir      string
		StopTimeout int
	}{p, filepath.Dir(p.Exe), int((p.Drain + 15*time.Second).Seconds())})
	if err != nil {
		panic(err) // the template is fixed; a failure is a bug caught by the tests
	}
	return b.String()
}

func mapQuote(a []string) []string {
	out := make([]string, len(a))
	for i, s := range a {
		out[i] = systemdQuote(s)
	}
	return out
}

// systemdQuote quotes a word for systemd's command-line syntax when needed.
func systemdQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"'\\$%;") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `$$`, `%`, `%%`)
	return `"` + r.Replace(s) + `"`
}

// registration is what install records, so a second install with the same
// arguments can tell that nothing changes.
type registration struct {
	Executable string   `json:"executable"`
	Arguments  []string `json:"arguments"`
	User       string   `json:"user"`
	Unit       string   `json:"unit,omitempty"`
}

func registrationPath(data string) string { return filepath.Join(data, "service.json") }

// serviceFiles are where the Linux service managers keep a registration;
// a variable so a test can point it at a temp dir.
var serviceFiles = []string{
	"/etc/systemd/system/" + serviceName + ".service",
	"/lib/systemd/system/" + serviceName + ".service",
	"/etc/init.d/" + serviceName,
	"/etc/init/" + serviceName + ".conf",
}

// registeredHere tells whether install left any trace: its own record in the
// data dir or a service manager's file.
func registeredHere(data string) bool {
	if _, err := os.Stat(registrationPath(data)); err == nil {
		return true
	}
	if runtime.GOOS != "linux" {
		return true // the SCM's answer is authoritative there
	}
	for _, f := range serviceFiles {
		if _, err := os.Stat(f); err == nil {
			return true
		}
	}
	return false
}

func installCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	loc := serviceLocations()
	fs := newFlags("install", stderr)
	loc.flags(fs)
	userName := fs.String("user", defaultUser(), "service `account`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := requireAdmin("install"); err != nil {
		return err
	}
	loc, err := loc.abs()
	if err != nil {
		return err
	}
	drain := 30 * time.Second
	if loc.config != "" {
		if cfg, _, err := config.Load(config.Source{File: loc.config, Env: os.Environ(), DataDir: loc.data}); err == nil {
			drain = cfg.ShutdownDrain
		} else if !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stdout, "warning: the configuration has problems; run 'integrasjonspunkt config check --config %s'\n", loc.config)
		}
	}
	sc := serviceConfig(loc, *userName, drain)
	want := registration{Executable: sc.Executable, Arguments: sc.Arguments, User: *userName}
	if runtime.GOOS == "linux" {
		want.Unit = sc.Option["SystemdScript"].(string)
	}
	svc, err := service.New(&program{}, sc)
	if err != nil {
		return err
	}
	// The pseudonym key is made at install so it exists before the first
	// event and is in the first backup (operations.md §5.3).
	if _, err := events.LoadOrCreateKey(pseudonymKeyPath(loc.data)); err != nil {
		return fmt.Errorf("making the pseudonym key: %w", err)
	}
	if err := ensureAccount(*userName, loc.data); err != nil {
		return err
	}
	_, statusErr := svc.Status()
	if !errors.Is(statusErr, service.ErrNotInstalled) {
		var have registration
		if b, err := os.ReadFile(registrationPath(loc.data)); err == nil && json.Unmarshal(b, &have) == nil && equalRegistration(have, want) {
			fmt.Fprintln(stdout, "integrasjonspunkt is already installed with these settings; nothing changed")
			return nil
		}
		if err := svc.Uninstall(); err != nil {
			return fmt.Errorf("replacing the old registration: %w", err)
		}
		fmt.Fprintln(stdout, "updating the existing registration")
	}
	if err := svc.Install(); err != nil {
		return fmt.Errorf("registering the service: %w", err)
	}
	b, _ := json.MarshalIndent(want, "", "  ")
	if err := os.WriteFile(registrationPath(loc.data), b, 0o640); err != nil {
		return fmt.Errorf("recording the registration: %w", err)
	}
	fmt.Fprintf(stdout, "installed service %s: %s %s\nstart it with 'integrasjonspunkt start'\n", serviceName, sc.Executable, strings.Join(sc.Arguments, " "))
	return nil
}

func equalRegistration(a, b registration) bool {
	return a.Executable == b.Executable && a.User == b.User && a.Unit == b.Unit &&
		strings.Join(a.Arguments, "\x00") == strings.Join(b.Arguments, "\x00")
}

// ensureAccount creates the Linux system user if missing and gives it the
// data dir. Windows' virtual account needs no creation.
func ensureAccount(name, data string) error {
	if err := os.MkdirAll(data, 0o750); err != nil {
		return fmt.Errorf("creating data dir: %w", err)
	}
	if runtime.GOOS != "linux" || name == "" || name == "root" {
		return nil
	}
	if _, err := user.Lookup(name); err != nil {
		out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", data, "--shell", "/usr/sbin/nologin", name).CombinedOutput()
		if err != nil {
			return fmt.Errorf("creating service user %s: %v: %s", name, err, strings.TrimSpace(string(out)))
		}
	}
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("looking up service user %s: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.WalkDir(data, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

func uninstallCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	loc := serviceLocations()
	fs := newFlags("uninstall", stderr)
	loc.flags(fs)
	purge := fs.Bool("purge", false, "also delete the data dir (asks first)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := requireAdmin("uninstall"); err != nil {
		return err
	}
	loc, err := loc.abs()
	if err != nil {
		return err
	}
	svc, err := service.New(&program{}, serviceConfig(loc, "", 0))
	if err != nil {
		return err
	}
	if _, err := svc.Status(); errors.Is(err, service.ErrNotInstalled) {
		fmt.Fprintln(stdout, "integrasjonspunkt is not installed; nothing to remove")
	} else {
		_ = svc.Stop()
		if err := svc.Uninstall(); err != nil {
			return fmt.Errorf("removing the registration: %w", err)
		}
		_ = os.Remove(registrationPath(loc.data))
		fmt.Fprintln(stdout, "service removed")
	}
	if *purge {
		fmt.Fprintf(stdout, "delete %s with every message, status and key in it? type yes: ", loc.data)
		var answer string
		fmt.Fscanln(os.Stdin, &answer)
		if answer != "yes" {
			fmt.Fprintln(stdout, "data kept")
			return nil
		}
		if err := os.RemoveAll(loc.data); err != nil {
			return fmt.Errorf("deleting data dir: %w", err)
		}
		fmt.Fprintln(stdout, "data deleted")
	}
	return nil
}

func controlCmd(action string) func(context.Context, []string, io.Writer, io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		if err := parseFlags(newFlags(action, stderr), args); err != nil {
			return err
		}
		if err := requireAdmin(action); err != nil {
			return err
		}
		svc, err := service.New(&program{}, &service.Config{Name: serviceName})
		if err != nil {
			return err
		}
		if _, err := svc.Status(); errors.Is(err, service.ErrNotInstalled) {
			return &exitError{code: exitNotInstalled, err: errors.New("integrasjonspunkt is not installed; run 'integrasjonspunkt install'")}
		}
		if err := service.Control(svc, action); err != nil {
			return fmt.Errorf("%s: %w", action, err)
		}
		fmt.Fprintf(stdout, "integrasjonspunkt: %s done\n", action)
		return nil
	}
}

func statusCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	loc := serviceLocations()
	fs := newFlags("status", stderr)
	loc.flags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	svc, err := service.New(&program{}, &service.Config{Name: serviceName})
	if err != nil {
		return err
	}
	st, err := svc.Status()
	switch {
	case errors.Is(err, service.ErrNotInstalled), err != nil && !registeredHere(loc.data):
		// Without systemd (a container, a bare VM) the service manager's
		// own answer is an error, yet nothing of ours was ever installed.
		fmt.Fprintln(stdout, "service: not installed")
		return &exitError{code: exitNotInstalled, err: errors.New("integrasjonspunkt is not installed; run 'integrasjonspunkt install'")}
	case err != nil:
		return fmt.Errorf("asking the service manager: %w", err)
	case st != service.StatusRunning:
		fmt.Fprintln(stdout, "service: stopped")
		return &exitError{code: exitStopped}
	}
	fmt.Fprintln(stdout, "service: running")
	health, err := askHealth(ctx, loc.config)
	if err != nil {
		fmt.Fprintf(stdout, "health:  DOWN (%v)\n", err)
		return &exitError{code: exitFailure}
	}
	fmt.Fprintf(stdout, "health:  %s\n", health)
	if health != "UP" {
		return &exitError{code: exitFailure}
	}
	return nil
}

// askHealth calls the daemon's own /manage/health on loopback, so "running but
// DOWN" is visible.
func askHealth(ctx context.Context, configFile string) (string, error) {
	base, client := "http://127.0.0.1:9093", http.DefaultClient
	if cfg, _, err := config.Load(config.Source{File: configFile, Env: os.Environ()}); cfg != nil && (err == nil || cfg.Server.Port != 0) {
		// An exposed API speaks TLS and asks for auth on /manage too.
		base, client = selfClient(cfg, 5*time.Second)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/manage/health?verbose=false", nil)
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("no answer at %s", base)
	}
	defer resp.Body.Close()
	var h struct{ Status string }
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&h); err != nil {
		return "", errors.New("unreadable health answer")
	}
	return h.Status, nil
}

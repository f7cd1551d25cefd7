package update

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"aead.dev/minisign"
	"github.com/efm-go/efm/update/manifest"
)

// Modes of efm.update.mode.
const (
	ModeAuto   = "auto"   // stage and apply in the windows (default)
	ModeNotify = "notify" // stage and report, never swap: .deb/.rpm installs, where the package manager owns the binary
	ModeOff    = "off"    // no checks at all
)

// Defaults of operations.md §4.5 not declared beside their use.
const (
	DefaultCheckInterval   = time.Hour
	DefaultProbation       = 120 * time.Second // to first UP, the same order as KOSMOS' 150 s launch timeout
	DefaultProbationStable = 5 * time.Minute   // then UP without a break
	DefaultPollInterval    = 2 * time.Second
	DefaultPreflight       = 30 * time.Second
	// MaxBootAttempts is how many starts a new version gets before it is taken
	// for a crash loop and rolled back (operations.md §4.4 step 10).
	MaxBootAttempts = 3
)

// ExitRestart is the exit status the daemon uses after ErrRestart: the
// service manager restarts on any exit, and a distinct value tells a reader of
// the journal that the exit was deliberate. 75 is EX_TEMPFAIL in sysexits.h.
const ExitRestart = 75

// Config is what the daemon gives the updater. Fields marked required must be
// set; New fills the other defaults.
type Config struct {
	// DataDir is the daemon's data dir; state and staging live in DataDir/update. Required.
	DataDir string
	// ConfigFile is passed to the new binary's self-test (--config). May be empty.
	ConfigFile string
	// SelfTestArgs are appended to the preflight's `self-test --data D
	// --config F`, e.g. "--sandbox" for a daemon run with simulated services.
	SelfTestArgs []string
	// ExecutablePath is the binary that is replaced. Empty means os.Executable().
	ExecutablePath string
	// CurrentVersion is this binary's version (buildinfo.Version). Required; a
	// non-semver version ("dev") disables checking.
	CurrentVersion string
	// Environment is "production" or "staging" (default production).
	Environment string
	// ManifestURL is efm.update.url; the signature is at ManifestURL+".minisig". Required unless Mode is off.
	ManifestURL string
	// PublicKeys are the trusted minisign keys. Empty means the compiled-in
	// current and next keys (BuiltinKeys).
	PublicKeys []minisign.PublicKey

	Mode          string        // ModeAuto (default), ModeNotify, ModeOff
	Channel       string        // manifest.ChannelStable (default) or manifest.ChannelEarlybird
	Pin           string        // go-version constraint; empty allows all
	MaxMajor      int           // 0: the running major
	Windows       string        // Spring cron; default DefaultWindows
	WindowLength  time.Duration // default DefaultWindowLength
	Timezone      string        // default DefaultTimezone
	SpreadDelay   time.Duration // delay into each window; negative disables, 0 derives one from DataDir up to MaxDelay
	MaxDelay      time.Duration // cap of the derived delay; 0 means MaxSpreadDelay, negative means none
	CheckInterval time.Duration // default DefaultCheckInterval
	AllowUrgent   *bool         // nil means true: security releases outside the windows

	Probation        time.Duration // to first healthy answer; default DefaultProbation
	ProbationStable  time.Duration // then healthy without a break; default DefaultProbationStable
	PollInterval     time.Duration // health polling during probation; default DefaultPollInterval
	PreflightTimeout time.Duration // self-test of the staged binary; default DefaultPreflight
	// Wake is the longest the loop sleeps before looking at the clock again,
	// so a clock jump or a suspended machine does not sleep through a
	// window; default one minute.
	Wake time.Duration

	// Health answers whether this daemon is up: true for UP and DEGRADED (an
	// outside service failing is not the new version's fault), false or an
	// error for DOWN or no answer. Required for probation; HTTPHealth builds
	// one from the loopback /manage/health URL.
	Health func(ctx context.Context) (up bool, err error)
	// APIMajorsInUse lists API majors a client system called in the last 30
	// days. May be nil.
	APIMajorsInUse func() []int
	// BeforeSwap runs after the preflight and before the executable is
	// replaced; the daemon snapshots the store there when the target's
	// schema_version differs (operations.md §4.4 step 7). May be nil.
	BeforeSwap func(ctx context.Context, target manifest.Release) error
	// LogTail returns the last lines of the daemon's own log for rollback
	// notices. May be nil.
	LogTail func() string

	// OnEvent receives every update event (the central log shipper maps them
	// to update.* events). Called synchronously; must not block. May be nil.
	OnEvent func(Event)
	// Mail sends notices when Mail.Host and Mail.To are set.
	Mail MailConfig

	Logger     *slog.Logger     // default slog.Default()
	Now        func() time.Time // default time.Now; tests inject a clock
	HTTPClient *http.Client     // default: proxy from environment, 10 s connect
	GOOS       string           // default runtime.GOOS
	GOARCH     string           // default runtime.GOARCH
}

// MailConfig is the SMTP notice configuration (KOSMOS' mail keys as aliases).
type MailConfig struct {
	Host          string   // spring.mail.host
	Port          int      // spring.mail.port, default 25
	From          string   // efm.update.mail.from / kosmos.mail.from
	To            []string // efm.update.mail.to / kosmos.mail.recipient
	SubjectSuffix string   // efm.update.mail.subject-suffix / kosmos.mail.append-subject
	Username      string   // spring.mail.username (optional, PLAIN auth over TLS only)
	Password      string   // spring.mail.password
}

// Key documents one configuration key the updater reads.
type Key struct {
	Name    string
	Default string
	Aliases []string // KOSMOS or Spring keys read with the same meaning
	Doc     string
}

// Keys lists the configuration keys of operations.md §4.5 with their
// defaults and aliases, for the config loader, `config check` and docs.
func Keys() []Key {
	return []Key{
		{"efm.update.mode", ModeAuto, []string{"kosmos.integrasjonspunkt.autoRefresh (false → off)"}, "auto | notify | off"},
		{"efm.update.url", "", nil, "manifest.json URL; kosmos.integrasjonspunkt.versionsURL is ignored (unsigned format)"},
		{"efm.update.channel", manifest.ChannelStable, []string{"kosmos.integrasjonspunkt.earlybird (true → earlybird)"}, "stable | earlybird"},
		{"efm.update.pin", "", nil, "go-version constraint such as ~> 1.4 or >= 1.4, < 2.0"},
		{"efm.update.max-major", "", []string{"kosmos.integrasjonspunkt.supported-major-version"}, "highest major installed automatically; empty = the running major"},
		{"efm.update.windows", DefaultWindows, []string{"kosmos.schedulerCronExpression"}, "Spring six-field cron"},
		{"efm.update.window-length", DefaultWindowLength.String(), nil, "how long each window stays open"},
		{"efm.update.max-delay", MaxSpreadDelay.String(), nil, "upper bound of this installation's fixed delay into each window; 0 for none"},
		{"efm.update.timezone", DefaultTimezone, nil, "zone the windows are read in"},
		{"efm.update.check-interval", DefaultCheckInterval.String(), nil, "time between manifest checks"},
		{"efm.update.allow-urgent", "true", nil, "apply security releases outside the windows"},
		{"efm.update.probation", DefaultProbation.String(), []string{"kosmos.launchTimeoutInMs (milliseconds)"}, "time for a new version to first answer healthy"},
		{"efm.update.probation-stable", DefaultProbationStable.String(), nil, "then healthy without a break before the update is committed"},
		{"efm.update.trusted-keys", "built-in current + next", []string{"kosmos.verification.publicKeyPaths (OpenPGP keys are not used)"}, "extra minisign public keys, comma separated, for a private mirror"},
		{"efm.update.mail.to", "", []string{"kosmos.mail.recipient"}, "notice recipients, comma separated"},
		{"efm.update.mail.from", "", []string{"kosmos.mail.from"}, "notice sender"},
		{"efm.update.mail.subject-suffix", "", []string{"kosmos.mail.append-subject"}, "appended to notice subjects"},
		{"spring.mail.host", "", nil, "SMTP server for notices"},
		{"spring.mail.port", "25", nil, "SMTP port"},
	}
}

// ErrConfig wraps every configuration problem New and Settings report.
var ErrConfig = errors.New("update configuration invalid")

// Settings reads the §4.5 keys from lookup (the config loader's resolved
// properties, after relaxed binding) into cfg, KOSMOS aliases included.
// Every problem is reported at once, naming the key and the value.
func Settings(cfg *Config, lookup func(key string) (string, bool)) error {
	var errs []error
	bad := func(key, val, want string) {
		errs = append(errs, fmt.Errorf("%w: %s=%q: %s", ErrConfig, key, val, want))
	}
	get := func(keys ...string) (string, string, bool) {
		for _, k := range keys {
			if v, ok := lookup(k); ok {
				return k, strings.TrimSpace(v), true
			}
		}
		return "", "", false
	}
	dur := func(dst *time.Duration, key string) {
		if k, v, ok := get(key); ok {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				bad(k, v, "a positive duration such as 30m or 120s")
				return
			}
			*dst = d
		}
	}

	if k, v, ok := get("efm.update.mode"); ok {
		switch v {
		case ModeAuto, ModeNotify, ModeOff:
			cfg.Mode = v
		default:
			bad(k, v, "auto, notify or off")
		}
	} else if k, v, ok := get("kosmos.integrasjonspunkt.autoRefresh", "kosmos.integrasjonspunkt.auto-refresh"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad(k, v, "true or false")
		} else if !b {
			cfg.Mode = ModeOff
		}
	}
	if k, v, ok := get("efm.update.url"); ok {
		if err := CheckURL(v); v != "" && err != nil {
			bad(k, v, "an https:// URL (plain http only to a loopback host)")
		} else {
			cfg.ManifestURL = v
		}
	}
	if k, v, ok := get("efm.update.channel"); ok {
		if v != manifest.ChannelStable && v != manifest.ChannelEarlybird {
			bad(k, v, "stable or earlybird")
		} else {
			cfg.Channel = v
		}
	} else if k, v, ok := get("kosmos.integrasjonspunkt.earlybird"); ok {
		b, err := strconv.ParseBool(v)
		switch {
		case err != nil:
			bad(k, v, "true or false")
		case b:
			cfg.Channel = manifest.ChannelEarlybird
		default:
			cfg.Channel = manifest.ChannelStable
		}
	}
	if _, v, ok := get("efm.update.pin"); ok {
		cfg.Pin = v
	}
	if k, v, ok := get("efm.update.max-major", "kosmos.integrasjonspunkt.supported-major-version"); ok && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			bad(k, v, "a major version number such as 2")
		} else {
			cfg.MaxMajor = n
		}
	}
	if _, v, ok := get("efm.update.windows", "kosmos.schedulerCronExpression", "kosmos.scheduler-cron-expression"); ok {
		cfg.Windows = v
	}
	dur(&cfg.WindowLength, "efm.update.window-length")
	if k, v, ok := get("efm.update.max-delay"); ok {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil || d < 0:
			bad(k, v, "a duration such as 10m, or 0 for none")
		case d == 0:
			cfg.MaxDelay = -1
		default:
			cfg.MaxDelay = d
		}
	}
	if k, v, ok := get("efm.update.timezone"); ok {
		if _, err := time.LoadLocation(v); err != nil {
			bad(k, v, "an IANA time zone such as Europe/Oslo")
		} else {
			cfg.Timezone = v
		}
	}
	dur(&cfg.CheckInterval, "efm.update.check-interval")
	if k, v, ok := get("efm.update.allow-urgent"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad(k, v, "true or false")
		} else {
			cfg.AllowUrgent = &b
		}
	}
	if _, _, ok := get("efm.update.probation"); ok {
		dur(&cfg.Probation, "efm.update.probation")
	} else if k, v, ok := get("kosmos.launchTimeoutInMs", "kosmos.launch-timeout-in-ms"); ok {
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 {
			bad(k, v, "milliseconds")
		} else {
			cfg.Probation = time.Duration(ms) * time.Millisecond
		}
	}
	dur(&cfg.ProbationStable, "efm.update.probation-stable")
	if k, v, ok := get("efm.update.trusted-keys"); ok && v != "" {
		keys := append([]minisign.PublicKey(nil), cfg.PublicKeys...)
		if len(keys) == 0 {
			keys = BuiltinKeys()
		}
		for _, s := range strings.Split(v, ",") {
			pk, err := manifest.ParsePublicKey(s)
			if err != nil {
				bad(k, s, "a minisign public key (base64 line of a .pub file)")
				continue
			}
			keys = append(keys, pk)
		}
		cfg.PublicKeys = keys
	}
	if _, v, ok := get("efm.update.mail.to", "kosmos.mail.recipient"); ok && v != "" {
		cfg.Mail.To = nil
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				cfg.Mail.To = append(cfg.Mail.To, a)
			}
		}
	}
	if _, v, ok := get("efm.update.mail.from", "kosmos.mail.from"); ok {
		cfg.Mail.From = v
	}
	if _, v, ok := get("efm.update.mail.subject-suffix", "kosmos.mail.append-subject"); ok {
		cfg.Mail.SubjectSuffix = v
	}
	if _, v, ok := get("spring.mail.host"); ok {
		cfg.Mail.Host = v
	}
	if k, v, ok := get("spring.mail.port"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 65535 {
			bad(k, v, "a TCP port")
		} else {
			cfg.Mail.Port = n
		}
	}
	if _, v, ok := get("spring.mail.username"); ok {
		cfg.Mail.Username = v
	}
	if _, v, ok := get("spring.mail.password"); ok {
		cfg.Mail.Password = v
	}
	return errors.Join(errs...)
}

// Package config reads the daemon's configuration: the Java integration
// point's integrasjonspunkt-local.properties with its key names as they are,
// our own efm.* keys, environment variables with Spring's relaxed names, and
// command-line overrides (operations.md §1.5).
//
// Precedence, lowest first: built-in defaults, profile defaults, the file,
// environment variables, overrides. Every problem is reported at once.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/magiconair/properties"
)

// Channels in the order the reference lists its feature flags.
var Channels = []string{"DPO", "DPV", "DPI", "DPF", "DPE", "DPH"}

// Config is the effective configuration. The typed fields are the ones the
// core needs; channel packages read their own keys with Value.
type Config struct {
	Environment string // production or staging
	OrgNumber   string
	Keystore    Keystore
	Enabled     []string // enabled channels, in Channels order
	SyntheticOK bool     // difi.move.identifier.synthetic.allow

	Server        Server
	DataDir       string
	ShutdownDrain time.Duration
	QueuePort     int // 0: the embedded NATS server opens no TCP port
	DiskMinFree   int64
	PublicHealth  bool
	LogLevel      string

	values map[string]value // canonical name → resolved value
}

// Keystore is the agency's business certificate (difi.move.org.keystore.*).
type Keystore struct {
	Path        string
	Alias       string
	Password    string
	KeyPassword string // the reference demands it equal Password; we allow it to differ
	Type        string // PKCS12 or JKS
}

// Server is how the local API listens.
type Server struct {
	Address      string
	Port         int
	AllowedHosts []string // extra Host header values besides the local names
	TLS          bool
	TLSKeystore  Keystore
	BasicAuth    bool
	User         string
	Password     string
}

// Addr is the listen address.
func (s Server) Addr() string {
	return netJoin(s.Address, s.Port)
}

// Loopback reports whether the API is bound to loopback only.
func (s Server) Loopback() bool {
	if s.Address == "localhost" {
		return true
	}
	ip := net.ParseIP(s.Address)
	return ip != nil && ip.IsLoopback()
}

// Enables reports whether a channel is enabled.
func (c *Config) Enables(channel string) bool { return slices.Contains(c.Enabled, channel) }

// Value returns a key's effective value, "" when unset. Names are matched
// relaxed (difi.move.dpo.brokerserviceUrl = difi.move.dpo.brokerservice-url).
func (c *Config) Value(name string) string { return c.values[canonical(name)].v }

// Duration returns a key's value as a duration, or def when unset.
func (c *Config) Duration(name string, def time.Duration) time.Duration {
	d, err := parseDuration(c.Value(name))
	if err != nil {
		return def
	}
	return d
}

// Size returns a key's value in bytes, or def when unset.
func (c *Config) Size(name string, def int64) int64 {
	n, err := parseSize(c.Value(name))
	if err != nil {
		return def
	}
	return n
}

// Source says where the daemon found its settings.
type Source struct {
	File      string            // properties file; "" for none
	Env       []string          // KEY=VALUE pairs, normally os.Environ()
	Overrides map[string]string // flags and sandbox wiring: highest precedence
	DataDir   string
}

// Warning is something worth telling the operator that does not stop the daemon.
type Warning struct {
	Key, Msg string
}

func (w Warning) String() string { return w.Key + ": " + w.Msg }

// Problem is one invalid setting. Value is masked when the key is secret.
type Problem struct {
	Key, Value, Expected string
}

func (p *Problem) Error() string {
	if p.Value == "" {
		return fmt.Sprintf("%s: missing; expected %s", p.Key, p.Expected)
	}
	return fmt.Sprintf("%s = %q: expected %s", p.Key, p.Value, p.Expected)
}

type value struct {
	name   string // as written by its source
	v      string
	origin string // "default", "file:LINE", "env NAME", "override"
}

// Load reads and validates the configuration. On validation failure it returns
// the warnings found so far and an error joining every *Problem.
func Load(src Source) (*Config, []Warning, error) {
	vals := map[string]value{}
	var warns []Warning
	for _, k := range keys {
		if k.def != "" {
			vals[canonical(k.name)] = value{name: k.name, v: k.def, origin: "default"}
		}
	}

	var fileVals map[string]value
	if src.File != "" {
		var err error
		fileVals, warns, err = readFile(src.File)
		if err != nil {
			return nil, nil, err
		}
	}
	envVals := fromEnv(src.Env)

	// The profile is chosen before its defaults apply: from the environment or
	// the file, as Spring does with spring.profiles.active.
	env := "production"
	for _, layer := range []map[string]value{fileVals, envVals, overrideValues(src.Overrides)} {
		for _, n := range []string{"spring.profiles.active", "environment"} {
			if v, ok := layer[canonical(n)]; ok && v.v != "" {
				env = strings.ToLower(v.v)
			}
		}
	}
	if env == "production" {
		// The reference's production profile turns eInnsyn on.
		vals[canonical("difi.move.feature.enableDPE")] = value{name: "difi.move.feature.enableDPE", v: "true", origin: "production profile"}
	}
	for _, layer := range []map[string]value{fileVals, envVals, overrideValues(src.Overrides)} {
		for k, v := range layer {
			vals[k] = v
		}
	}

	var problems []error
	for k, v := range vals {
		resolved, err := resolve(v.v, vals, 0)
		if err != nil {
			problems = append(problems, &Problem{Key: v.name, Value: mask(v.name, v.v), Expected: err.Error()})
			continue
		}
		v.v = resolved
		vals[k] = v
	}

	c := &Config{values: vals, Environment: env, DataDir: src.DataDir}
	for _, ch := range Channels {
		if b, _ := parseBool(c.Value("difi.move.feature.enable" + ch)); b {
			c.Enabled = append(c.Enabled, ch)
		}
	}

	known := map[string]key{}
	for _, k := range keys {
		known[canonical(k.name)] = k
	}
	for cname, v := range vals {
		k, ok := lookupKey(known, cname)
		if !ok {
			if strings.HasPrefix(cname, "difi.move.") || strings.HasPrefix(cname, "efm.") {
				warns = append(warns, Warning{Key: v.name, Msg: "unknown key" + nearest(v.name)})
			}
			continue
		}
		if k.ignored {
			if v.origin != "default" {
				warns = append(warns, Warning{Key: v.name, Msg: "ignored: it configures a part this integration point does not have"})
			}
			continue
		}
		if k.channel != "" && !c.Enables(k.channel) {
			continue
		}
		if k.check != nil && v.v != "" {
			if err := k.check(v.v); err != nil {
				problems = append(problems, &Problem{Key: v.name, Value: mask(k.name, v.v), Expected: err.Error()})
			}
		}
	}
	for _, k := range keys {
		if !k.required || (k.channel != "" && !c.Enables(k.channel)) || (k.when != nil && !k.when(c)) {
			continue
		}
		if c.Value(k.name) == "" {
			exp := "a value"
			if k.channel != "" {
				exp = "a value, because " + k.channel + " is enabled"
			}
			problems = append(problems, &Problem{Key: k.name, Expected: exp})
		}
	}

	if v, ok := vals[canonical("server.address")]; ok && strings.TrimSpace(v.v) == "" {
		// Go's net.Listen reads an empty host as every interface; an empty
		// setting is far more often a template left blank than a wish to
		// expose the API, so it means loopback (operations.md §1.7).
		warns = append(warns, Warning{Key: v.name, Msg: "empty: the API binds loopback 127.0.0.1 only; give an explicit address such as 0.0.0.0 to expose it (TLS and authentication are then required)"})
		vals[canonical("server.address")] = value{name: v.name, v: "127.0.0.1", origin: v.origin + ", empty means loopback"}
	}
	c.fill()
	problems = append(problems, c.checkExposure()...)
	if c.Environment == "production" && c.Value("efm.events.enabled") == "false" {
		problems = append(problems, &Problem{Key: "efm.events.enabled", Value: "false", Expected: "true with environment=production; turning the central log off is for isolated test rigs"})
	}
	slices.SortFunc(warns, func(a, b Warning) int { return strings.Compare(a.Key, b.Key) })
	sortProblems(problems)
	return c, warns, errors.Join(problems...)
}

func (c *Config) fill() {
	c.OrgNumber = c.Value("difi.move.org.number")
	c.Keystore = Keystore{
		Path:        strings.TrimPrefix(c.Value("difi.move.org.keystore.path"), "file:"),
		Alias:       c.Value("difi.move.org.keystore.alias"),
		Password:    c.Value("difi.move.org.keystore.password"),
		KeyPassword: c.Value("difi.move.org.keystore.key-password"),
		Type:        strings.ToUpper(c.Value("difi.move.org.keystore.type")),
	}
	if c.Keystore.KeyPassword == "" {
		c.Keystore.KeyPassword = c.Keystore.Password
	}
	if c.Keystore.Path != "" && !filepath.IsAbs(c.Keystore.Path) && c.DataDir != "" {
		// The service's working directory is the data dir (operations.md §1.4),
		// so a migrated "file:keystore.p12" resolves as it did beside the jar.
		c.Keystore.Path = filepath.Join(c.DataDir, c.Keystore.Path)
	}
	c.SyntheticOK, _ = parseBool(c.Value("difi.move.identifier.synthetic.allow"))
	c.Server.Address = c.Value("server.address")
	c.Server.Port, _ = strconv.Atoi(c.Value("server.port"))
	for _, h := range strings.Split(c.Value("efm.http.allowed-hosts"), ",") {
		if h = strings.TrimSpace(h); h != "" {
			c.Server.AllowedHosts = append(c.Server.AllowedHosts, strings.ToLower(h))
		}
	}
	c.Server.TLS, _ = parseBool(c.Value("difi.ssl.enabled"))
	c.Server.TLSKeystore = Keystore{
		Path:     strings.TrimPrefix(c.Value("difi.ssl.key-store"), "file:"),
		Alias:    c.Value("difi.ssl.key-alias"),
		Password: c.Value("difi.ssl.key-store-password"),
		Type:     strings.ToUpper(c.Value("difi.ssl.key-store-type")),
	}
	c.Server.BasicAuth, _ = parseBool(c.Value("difi.security.enable"))
	c.Server.User = c.Value("difi.security.user.name")
	c.Server.Password = c.Value("difi.security.user.password")
	c.ShutdownDrain = c.Duration("efm.shutdown.drain", 30*time.Second)
	c.QueuePort, _ = strconv.Atoi(c.Value("efm.queue.port"))
	c.DiskMinFree = c.Size("efm.disk.min-free", 1<<30)
	c.PublicHealth, _ = parseBool(c.Value("efm.manage.public-health"))
	c.LogLevel = c.Value("efm.log.level")
}

// checkExposure applies operations.md §1.7: beyond loopback, TLS and
// authentication are both required.
func (c *Config) checkExposure() []error {
	var ps []error
	if c.Server.BasicAuth && (c.Server.User == "" || c.Server.Password == "") {
		ps = append(ps, &Problem{Key: "difi.security.user.password", Expected: "a user name and password, because difi.security.enable=true"})
	}
	if c.Server.TLS && c.Server.TLSKeystore.Path == "" {
		ps = append(ps, &Problem{Key: "difi.ssl.key-store", Expected: "a keystore path, because difi.ssl.enabled=true"})
	}
	if !c.Server.Loopback() {
		if !c.Server.TLS {
			ps = append(ps, &Problem{Key: "difi.ssl.enabled", Value: c.Value("difi.ssl.enabled"), Expected: "true, because server.address=" + c.Server.Address + " is not loopback"})
		}
		if !c.Server.BasicAuth {
			ps = append(ps, &Problem{Key: "difi.security.enable", Value: c.Value("difi.security.enable"), Expected: "true, because server.address=" + c.Server.Address + " is not loopback"})
		}
	}
	return ps
}

// Effective lists every set key with its value (secrets masked) and where it
// came from, sorted by key: what config check prints.
func (c *Config) Effective() [][3]string {
	var out [][3]string
	for _, v := range c.values {
		out = append(out, [3]string{v.name, mask(v.name, v.v), v.origin})
	}
	slices.SortFunc(out, func(a, b [3]string) int { return strings.Compare(a[0], b[0]) })
	return out
}

func readFile(path string) (map[string]value, []Warning, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading configuration file: %w", err)
	}
	enc := properties.UTF8
	if !utf8.Valid(raw) {
		// java.util.Properties' own encoding; files edited on Windows often are.
		enc = properties.ISO_8859_1
	}
	l := properties.Loader{Encoding: enc, DisableExpansion: true}
	p, err := l.LoadBytes(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	lines := strings.Split(string(raw), "\n")
	vals := map[string]value{}
	var warns []Warning
	for _, k := range p.Keys() {
		v, _ := p.Get(k)
		line := lineOf(lines, k)
		if t := strings.TrimRight(v, " \t\r\f"); t != v {
			// A documented source of failures in the reference (kjente_feil.md).
			warns = append(warns, Warning{Key: k, Msg: fmt.Sprintf("trailing whitespace trimmed (line %d)", line)})
			v = t
		}
		vals[canonical(k)] = value{name: k, v: v, origin: fmt.Sprintf("file line %d", line)}
	}
	return vals, warns, nil
}

func lineOf(lines []string, k string) int {
	for i, l := range lines {
		l = strings.TrimLeft(l, " \t")
		if strings.HasPrefix(l, k) && len(l) > len(k) && strings.ContainsRune("=: \t", rune(l[len(k)])) {
			return i + 1
		}
	}
	return 0
}

// fromEnv matches environment variables against the known keys the way Spring
// maps them: dots to underscores, dashes removed, upper case. DIFI_MOVE_ORG_NUMBER
// is difi.move.org.number. Unknown variables are none of ours and are skipped.
func fromEnv(env []string) map[string]value {
	byEnv := map[string]string{}
	for _, k := range keys {
		if !k.prefix {
			byEnv[envName(k.name)] = k.name
		}
	}
	out := map[string]value{}
	for _, kv := range env {
		n, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if n == "SPRING_PROFILES_ACTIVE" {
			out[canonical("spring.profiles.active")] = value{name: "spring.profiles.active", v: v, origin: "env " + n}
			continue
		}
		if name, ok := byEnv[strings.ReplaceAll(strings.ToUpper(n), "-", "")]; ok {
			out[canonical(name)] = value{name: name, v: strings.TrimRight(v, " \t"), origin: "env " + n}
		}
	}
	return out
}

func envName(key string) string {
	return strings.ToUpper(strings.ReplaceAll(strings.ReplaceAll(key, "-", ""), ".", "_"))
}

func overrideValues(m map[string]string) map[string]value {
	out := map[string]value{}
	for k, v := range m {
		out[canonical(k)] = value{name: k, v: v, origin: "override"}
	}
	return out
}

// canonical folds Spring's relaxed forms together: a.firstName, a.first-name
// and a.first_name are one key.
func canonical(k string) string {
	return strings.ToLower(relaxed.Replace(strings.TrimSpace(k)))
}

// relaxed is built once: a Replacer builds its lookup table at first use,
// and a new one per call was 20 KB of garbage each time a key was read
// (the accept path reads one per message, for the disk-space check).
var relaxed = strings.NewReplacer("-", "", "_", "")

func lookupKey(known map[string]key, cname string) (key, bool) {
	if k, ok := known[cname]; ok {
		return k, true
	}
	for i := len(cname) - 1; i > 0; i-- {
		if cname[i] == '.' || cname[i] == '[' {
			if k, ok := known[cname[:i]]; ok && k.prefix {
				return k, true
			}
		}
	}
	return key{}, false
}

func isSecret(name string) bool {
	c := canonical(name)
	for _, k := range keys {
		if k.secret && canonical(k.name) == c {
			return true
		}
	}
	l := strings.ToLower(name)
	return strings.Contains(l, "password") || strings.Contains(l, "passord") || strings.Contains(l, "secret") || strings.Contains(l, "token")
}

func mask(name, v string) string {
	if v == "" || !isSecret(name) {
		return v
	}
	return "********"
}

// resolve expands ${env:NAME}, ${file:PATH} (secrets kept out of the file) and
// Spring's ${other.key} / ${other.key:default}.
func resolve(v string, vals map[string]value, depth int) (string, error) {
	if depth > 8 {
		return "", errors.New("placeholders nested at most 8 deep")
	}
	var b strings.Builder
	for {
		i := strings.Index(v, "${")
		if i < 0 {
			b.WriteString(v)
			return b.String(), nil
		}
		j := strings.IndexByte(v[i:], '}')
		if j < 0 {
			return "", errors.New("a closing } for ${")
		}
		b.WriteString(v[:i])
		ref := v[i+2 : i+j]
		v = v[i+j+1:]
		switch {
		case strings.HasPrefix(ref, "env:"):
			s, ok := os.LookupEnv(ref[4:])
			if !ok {
				return "", fmt.Errorf("environment variable %s to be set", ref[4:])
			}
			b.WriteString(s)
		case strings.HasPrefix(ref, "file:"):
			s, err := os.ReadFile(ref[5:])
			if err != nil {
				return "", fmt.Errorf("a readable file at %s", ref[5:])
			}
			b.WriteString(strings.TrimRight(string(s), "\r\n"))
		default:
			name, def, hasDef := strings.Cut(ref, ":")
			if o, ok := vals[canonical(name)]; ok {
				s, err := resolve(o.v, vals, depth+1)
				if err != nil {
					return "", err
				}
				b.WriteString(s)
			} else if hasDef {
				b.WriteString(def)
			} else {
				return "", fmt.Errorf("${%s} to name a set key", name)
			}
		}
	}
}

func nearest(name string) string {
	best, bestD := "", 1<<30
	c := canonical(name)
	for _, k := range keys {
		if d := levenshtein(c, canonical(k.name)); d < bestD {
			best, bestD = k.name, d
		}
	}
	if bestD <= len(c)/3 {
		return "; did you mean " + best + "?"
	}
	return ""
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func sortProblems(ps []error) {
	slices.SortStableFunc(ps, func(a, b error) int {
		var pa, pb *Problem
		if errors.As(a, &pa) && errors.As(b, &pb) {
			return strings.Compare(pa.Key, pb.Key)
		}
		return 0
	})
}

func parseDuration(v string) (time.Duration, error) {
	if v == "" {
		return 0, errors.New("a duration such as 30s, 5m or 24h")
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return d, nil
	}
	// Spring's simple format: 30d, or a bare number of milliseconds.
	if n, err := strconv.Atoi(strings.TrimSuffix(v, "d")); err == nil && n >= 0 {
		if strings.HasSuffix(v, "d") {
			return time.Duration(n) * 24 * time.Hour, nil
		}
		return time.Duration(n) * time.Millisecond, nil
	}
	return 0, errors.New("a duration such as 30s, 5m or 24h")
}

func parseSize(v string) (int64, error) {
	s := strings.ToUpper(strings.TrimSpace(v))
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suf) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suf)), u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New("a size such as 512KB, 250MB or 1GB")
	}
	return n * mult, nil
}

func netJoin(host string, port int) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

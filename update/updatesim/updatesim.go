// Package updatesim is a release distribution server for the sandbox and the
// tests: it serves a signed manifest.json, its .minisig and the artifacts
// laid out as operations.md §4.3 describes, over real HTTP with Range
// support, and has a /_sim/ control API to publish releases and inject
// faults (bad signature, expired manifest, wrong checksum, replayed serial,
// errors, slowness, truncated bodies).
//
// It signs with its own key (generated unless given); daemons under test
// trust its PublicKey through efm.update.trusted-keys or update.Config.
package updatesim

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"aead.dev/minisign"
	"github.com/efm-go/efm/update/manifest"
)

// Options configure a Server. The zero value works.
type Options struct {
	// Key signs manifests and artifacts; zero means a fresh key.
	Key minisign.PrivateKey
	// Now is the simulator's clock; default time.Now.
	Now func() time.Time
	// Validity is expires_at - issued_at; default 14 days (the maximum).
	Validity time.Duration
	// SerialBase is the first serial; default 2026112100.
	SerialBase uint64
}

// Fault is the set of misbehaviours the simulator can show. The zero value
// is a well-behaved server.
type Fault struct {
	BadSignature   bool          `json:"bad_signature"`    // manifest signed by an untrusted key
	Expired        bool          `json:"expired"`          // expires_at in the past
	ReplaySerial   bool          `json:"replay_serial"`    // serve with the very first serial again
	WrongChecksum  bool          `json:"wrong_checksum"`   // manifest sha256 of every artifact is wrong
	TamperArtifact bool          `json:"tamper_artifact"`  // artifact bytes differ from what was signed
	BadArtifactSig bool          `json:"bad_artifact_sig"` // artifact .minisig made by an untrusted key
	Status         int           `json:"status"`           // answer every request with this status (e.g. 503)
	FailNext       int           `json:"fail_next"`        // the next N requests answer 503
	Delay          time.Duration `json:"delay"`            // sleep before every answer
	TruncateAt     int64         `json:"truncate_at"`      // artifact bodies end after this many bytes
	NoRange        bool          `json:"no_range"`         // ignore Range headers
}

// ReleaseOptions describe a published release beyond its binaries.
type ReleaseOptions struct {
	Channels       []string // channels of the environment that now point at it (default: none)
	Environment    string   // default "production"
	Urgency        string
	MinUpgradeFrom string
	RollbackSafeTo string
	SchemaVersion  int
	APIMajors      []int
}

// Server is the simulator. It implements http.Handler.
type Server struct {
	opts  Options
	key   minisign.PrivateKey
	rogue minisign.PrivateKey // signs when Fault.BadSignature

	mu       sync.Mutex
	releases []manifest.Release
	envs     map[string]manifest.Channels
	revoked  []string
	defaults map[string]string
	files    map[string][]byte // path below the root → bytes
	fault    Fault
	gen      uint64 // bumped on every content change
	cache    *rendered
	requests map[string]int
}

type rendered struct {
	gen       uint64
	fault     Fault
	data, sig []byte
	expires   time.Time
}

// New builds a Server.
func New(opts Options) (*Server, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Validity <= 0 || opts.Validity > manifest.MaxValidity {
		opts.Validity = manifest.MaxValidity
	}
	if opts.SerialBase == 0 {
		opts.SerialBase = 2026112100
	}
	s := &Server{opts: opts, key: opts.Key, envs: map[string]manifest.Channels{}, files: map[string][]byte{}, requests: map[string]int{}}
	if s.key.ID() == 0 {
		_, k, err := minisign.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generating simulator key: %w", err)
		}
		s.key = k
	}
	_, rogue, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating rogue key: %w", err)
	}
	s.rogue = rogue
	return s, nil
}

// PublicKey is the key daemons under test must trust.
func (s *Server) PublicKey() minisign.PublicKey {
	return s.key.Public().(minisign.PublicKey)
}

// ArtifactName is the file name of a binary for goos/goarch.
func ArtifactName(version, goos, goarch string) string {
	n := "integrasjonspunkt-" + version + "-" + goos + "-" + goarch
	if goos == "windows" {
		n += ".exe"
	}
	return n
}

// Publish adds a release with one binary per "os/arch" key, signs every
// binary, and points the given channels at it.
func (s *Server) Publish(version string, binaries map[string][]byte, ro ReleaseOptions) error {
	if len(binaries) == 0 {
		return fmt.Errorf("publishing %s: no binaries", version)
	}
	if version == "" || strings.ContainsAny(version, "/\\ ") {
		return fmt.Errorf("publishing: version %q is not usable in a path", version)
	}
	rel := manifest.Release{
		Version: version, ReleasedAt: s.opts.Now().UTC().Truncate(time.Second), Urgency: ro.Urgency,
		MinUpgradeFrom: ro.MinUpgradeFrom, RollbackSafeTo: ro.RollbackSafeTo, SchemaVersion: ro.SchemaVersion, APIMajors: ro.APIMajors,
	}
	if rel.Urgency == "" {
		rel.Urgency = manifest.UrgencyNormal
	}
	files := map[string][]byte{}
	platforms := make([]string, 0, len(binaries))
	for p := range binaries {
		platforms = append(platforms, p)
	}
	slices.Sort(platforms)
	for _, p := range platforms {
		goos, goarch, ok := strings.Cut(p, "/")
		if !ok || goos == "" || goarch == "" {
			return fmt.Errorf("publishing %s: platform %q is not os/arch", version, p)
		}
		b := binaries[p]
		name := version + "/" + ArtifactName(version, goos, goarch)
		sum := sha256.Sum256(b)
		files[name] = b
		files[name+".minisig"] = manifest.Sign(s.key, b, "file:"+ArtifactName(version, goos, goarch))
		rel.Artifacts = append(rel.Artifacts, manifest.Artifact{
			OS: goos, Arch: goarch, URL: name, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:]), Minisig: name + ".minisig",
		})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releases = slices.DeleteFunc(s.releases, func(r manifest.Release) bool { return r.Version == version })
	s.releases = append(s.releases, rel)
	for k, v := range files {
		s.files[k] = v
	}
	env := ro.Environment
	if env == "" {
		env = "production"
	}
	for _, ch := range ro.Channels {
		if err := s.setChannelLocked(env, ch, version); err != nil {
			return err
		}
	}
	s.gen++
	return nil
}

// SetChannel points env/channel at a published version.
func (s *Server) SetChannel(env, channel, version string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.setChannelLocked(env, channel, version); err != nil {
		return err
	}
	s.gen++
	return nil
}

func (s *Server) setChannelLocked(env, channel, version string) error {
	if !slices.ContainsFunc(s.releases, func(r manifest.Release) bool { return r.Version == version }) {
		return fmt.Errorf("version %s is not published", version)
	}
	c := s.envs[env]
	switch channel {
	case manifest.ChannelStable:
		c.Stable = version
	case manifest.ChannelEarlybird:
		c.Earlybird = version
	default:
		return fmt.Errorf("channel %q is not stable or earlybird", channel)
	}
	s.envs[env] = c
	return nil
}

// Revoke lists a version in the manifest's revoked list.
func (s *Server) Revoke(version string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.revoked, version) {
		s.revoked = append(s.revoked, version)
		s.gen++
	}
}

// SetConfigDefaults replaces the manifest's config_defaults block.
func (s *Server) SetConfigDefaults(m map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.defaults = m
	s.gen++
}

// SetFault replaces the current faults; the zero Fault heals the server.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// Requests returns how many requests each kind of path has seen
// ("manifest", "signature", "artifact", "artifact-signature", "other"), and
// "range" for requests that asked for a byte range (resumed downloads).
func (s *Server) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.requests))
	for k, v := range s.requests {
		out[k] = v
	}
	return out
}

// manifestLocked renders and signs the manifest, reusing the last rendering
// while nothing changed, so manifest.json and its .minisig fetched in two
// requests match.
func (s *Server) manifestLocked() (*rendered, error) {
	now := s.opts.Now().UTC()
	if c := s.cache; c != nil && c.gen == s.gen && c.fault == s.fault && now.Before(c.expires.Add(-time.Hour)) {
		return c, nil
	}
	issued := now.Truncate(time.Second)
	m := manifest.Manifest{
		Schema: manifest.Schema, Product: manifest.Product,
		Serial:   s.opts.SerialBase + s.gen,
		IssuedAt: issued, ExpiresAt: issued.Add(s.opts.Validity),
		Environments: s.envs, Releases: s.releases, Revoked: s.revoked, ConfigDefaults: s.defaults,
	}
	if s.fault.ReplaySerial {
		m.Serial = s.opts.SerialBase
	}
	if s.fault.Expired {
		m.IssuedAt, m.ExpiresAt = issued.Add(-2*24*time.Hour), issued.Add(-24*time.Hour)
	}
	if s.fault.WrongChecksum {
		m.Releases = slices.Clone(m.Releases)
		for i := range m.Releases {
			arts := slices.Clone(m.Releases[i].Artifacts)
			for j := range arts {
				arts[j].SHA256 = strings.Repeat("ab", 32)
			}
			m.Releases[i].Artifacts = arts
		}
	}
	if m.Environments == nil {
		m.Environments = map[string]manifest.Channels{}
	}
	data, err := m.Marshal()
	if err != nil {
		return nil, fmt.Errorf("rendering manifest: %w", err)
	}
	key := s.key
	if s.fault.BadSignature {
		key = s.rogue
	}
	s.cache = &rendered{gen: s.gen, fault: s.fault, data: data, sig: manifest.Sign(key, data, fmt.Sprintf("serial:%d", m.Serial)), expires: m.ExpiresAt}
	return s.cache, nil
}

// ServeHTTP serves the release tree and the /_sim/ controls.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.control(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/")
	p = strings.TrimPrefix(p, "releases/") // accept the §4.3 layout under /releases/ too

	s.mu.Lock()
	s.requests[kind(p)]++
	if r.Header.Get("Range") != "" {
		s.requests["range"]++
	}
	f := s.fault
	if s.fault.FailNext > 0 {
		s.fault.FailNext--
	}
	s.mu.Unlock()

	if f.Delay > 0 {
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case f.Status != 0:
		http.Error(w, "simulated failure", f.Status)
		return
	case f.FailNext > 0:
		http.Error(w, "simulated failure", http.StatusServiceUnavailable)
		return
	}

	s.mu.Lock()
	var body []byte
	var err error
	switch p {
	case "manifest.json", "manifest.json.minisig":
		var m *rendered
		if m, err = s.manifestLocked(); err == nil {
			body = m.data
			if p == "manifest.json.minisig" {
				body = m.sig
			}
		}
	default:
		body = s.files[p]
	}
	s.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if body == nil {
		http.NotFound(w, r)
		return
	}
	if kind(p) == "artifact-signature" && f.BadArtifactSig {
		s.mu.Lock()
		art := s.files[strings.TrimSuffix(p, ".minisig")]
		s.mu.Unlock()
		body = manifest.Sign(s.rogue, art, "file:rogue")
	}
	if kind(p) == "artifact" {
		if f.TamperArtifact {
			body = bytes.Clone(body)
			body[len(body)/2] ^= 0xff
		}
		if f.TruncateAt > 0 && f.TruncateAt < int64(len(body)) {
			// Claim the full length, then stop early, as a dropped connection does.
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(body[:f.TruncateAt])
			return
		}
	}
	if f.NoRange {
		r.Header.Del("Range")
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

func kind(p string) string {
	switch {
	case p == "manifest.json":
		return "manifest"
	case p == "manifest.json.minisig":
		return "signature"
	case strings.HasSuffix(p, ".minisig"):
		return "artifact-signature"
	case strings.Contains(p, "/"):
		return "artifact"
	}
	return "other"
}

// control is the /_sim/ API:
//
//	POST   /_sim/releases?version=V&os=O&arch=A[&channel=stable][&env=production][&urgency=security]  body: the binary
//	POST   /_sim/channel?env=E&channel=C&version=V
//	POST   /_sim/revoke?version=V
//	PUT    /_sim/fault        body: Fault as JSON (delay as nanoseconds)
//	DELETE /_sim/fault
//	GET    /_sim/requests     counters by path kind
//	GET    /_sim/key          the public key to trust, minisign .pub format
func (s *Server) control(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	route := r.Method + " " + r.URL.Path
	switch route {
	case "POST /_sim/releases":
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<30))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ro := ReleaseOptions{Environment: q.Get("env"), Urgency: q.Get("urgency"), MinUpgradeFrom: q.Get("min_upgrade_from")}
		if ch := q.Get("channel"); ch != "" {
			ro.Channels = strings.Split(ch, ",")
		}
		if err := s.Publish(q.Get("version"), map[string][]byte{q.Get("os") + "/" + q.Get("arch"): b}, ro); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case "POST /_sim/channel":
		if err := s.SetChannel(q.Get("env"), q.Get("channel"), q.Get("version")); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case "POST /_sim/revoke":
		s.Revoke(q.Get("version"))
		w.WriteHeader(http.StatusNoContent)
	case "PUT /_sim/fault":
		var f Fault
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&f); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.SetFault(f)
		w.WriteHeader(http.StatusNoContent)
	case "DELETE /_sim/fault":
		s.SetFault(Fault{})
		w.WriteHeader(http.StatusNoContent)
	case "GET /_sim/requests":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Requests())
	case "GET /_sim/key":
		b, _ := s.PublicKey().MarshalText()
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(append(b, '\n'))
	default:
		http.NotFound(w, r)
	}
}

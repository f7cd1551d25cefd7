// Package manifest is the release manifest of operations.md §4.3: its JSON
// shape, its validation, and its minisign (Ed25519) signatures.
//
// Both sides use it: the daemon's updater verifies and reads manifests, the
// release tool (cmd/efm-release) and the distribution simulator
// (update/updatesim) build and sign them. It imports nothing of the daemon.
package manifest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"
)

// Schema is the only manifest schema this code understands.
const Schema = 1

// Product is the value of the manifest's "product" field.
const Product = "integrasjonspunkt"

// MaxSize caps a manifest and its signature (operations.md §4.4 step 2: 1 MB).
const MaxSize = 1 << 20

// MaxValidity is the longest expires_at - issued_at a manifest may claim
// (operations.md §4.3): a stolen old manifest can freeze an installation for at
// most this long.
const MaxValidity = 14 * 24 * time.Hour

// Channel names (operations.md §4.4 step 3).
const (
	ChannelStable    = "stable"
	ChannelEarlybird = "earlybird"
)

// Urgency values of a release.
const (
	UrgencyNormal   = "normal"
	UrgencySecurity = "security"
)

// Errors a caller branches on. Every rejection wraps one of them.
var (
	ErrMalformed     = errors.New("manifest malformed")
	ErrSchema        = errors.New("manifest schema unknown")
	ErrProduct       = errors.New("manifest is for another product")
	ErrSignature     = errors.New("signature not valid for any trusted key")
	ErrExpired       = errors.New("manifest expired")
	ErrNotYetValid   = errors.New("manifest issued in the future: check the clock")
	ErrSerialReplay  = errors.New("manifest serial lower than one already seen")
	ErrTooLarge      = errors.New("manifest larger than the size cap")
	ErrNoTrustedKeys = errors.New("no trusted keys")
)

// Manifest is manifest.json (schema 1). Field names are the contract's.
type Manifest struct {
	Schema         int                 `json:"schema"`
	Product        string              `json:"product"`
	Serial         uint64              `json:"serial"`
	IssuedAt       time.Time           `json:"issued_at"`
	ExpiresAt      time.Time           `json:"expires_at"`
	Environments   map[string]Channels `json:"environments"`
	Releases       []Release           `json:"releases"`
	Revoked        []string            `json:"revoked,omitempty"`
	ConfigDefaults map[string]string   `json:"config_defaults,omitempty"`
}

// Channels names the version offered on each update channel of one environment.
type Channels struct {
	Stable    string `json:"stable,omitempty"`
	Earlybird string `json:"earlybird,omitempty"`
}

// Get returns the version named for channel, or "".
func (c Channels) Get(channel string) string {
	switch channel {
	case ChannelStable:
		return c.Stable
	case ChannelEarlybird:
		return c.Earlybird
	}
	return ""
}

// Release is one published version.
type Release struct {
	Version        string     `json:"version"`
	ReleasedAt     time.Time  `json:"released_at"`
	Urgency        string     `json:"urgency,omitempty"`
	MinUpgradeFrom string     `json:"min_upgrade_from,omitempty"`
	SchemaVersion  int        `json:"schema_version,omitempty"`
	RollbackSafeTo string     `json:"rollback_safe_to,omitempty"`
	APIMajors      []int      `json:"api_majors,omitempty"`
	NotesURL       string     `json:"notes_url,omitempty"`
	Artifacts      []Artifact `json:"artifacts"`
}

// Artifact is one binary of a release for one OS/arch.
type Artifact struct {
	OS      string `json:"os"`
	Arch    string `json:"arch"`
	URL     string `json:"url"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	Minisig string `json:"minisig"`
}

// Artifact returns the release's artifact for goos/goarch.
func (r Release) Artifact(goos, goarch string) (Artifact, bool) {
	for _, a := range r.Artifacts {
		if a.OS == goos && a.Arch == goarch {
			return a, true
		}
	}
	return Artifact{}, false
}

// Release returns the release with exactly this version string.
func (m *Manifest) Release(version string) (Release, bool) {
	for _, r := range m.Releases {
		if r.Version == version {
			return r, true
		}
	}
	return Release{}, false
}

// IsRevoked reports whether version is listed in revoked.
func (m *Manifest) IsRevoked(version string) bool {
	return slices.Contains(m.Revoked, version)
}

// Parse decodes and validates a manifest. Unknown fields are refused: the
// manifest is signed by us, so an unknown field means a newer schema or a
// mistake, and both should be loud. Parse does not check the signature or the
// time; Verify does both.
func Parse(data []byte) (*Manifest, error) {
	if len(data) > MaxSize {
		return nil, ErrTooLarge
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: trailing data after the object", ErrMalformed)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks the manifest's structure. It reports every problem at once.
func (m *Manifest) Validate() error {
	if m.Schema != Schema {
		return fmt.Errorf("%w: schema %d, this binary knows %d", ErrSchema, m.Schema, Schema)
	}
	if m.Product != Product {
		return fmt.Errorf("%w: %q", ErrProduct, m.Product)
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if m.Serial == 0 {
		bad("serial must be > 0")
	}
	if m.IssuedAt.IsZero() || m.ExpiresAt.IsZero() {
		bad("issued_at and expires_at are required")
	} else if !m.ExpiresAt.After(m.IssuedAt) {
		bad("expires_at %s is not after issued_at %s", m.ExpiresAt.Format(time.RFC3339), m.IssuedAt.Format(time.RFC3339))
	} else if m.ExpiresAt.Sub(m.IssuedAt) > MaxValidity {
		bad("expires_at is more than %s after issued_at", MaxValidity)
	}
	seen := map[string]bool{}
	for i, r := range m.Releases {
		if r.Version == "" {
			bad("releases[%d]: version is empty", i)
		}
		if seen[r.Version] {
			bad("releases[%d]: version %q listed twice", i, r.Version)
		}
		seen[r.Version] = true
		switch r.Urgency {
		case "", UrgencyNormal, UrgencySecurity:
		default:
			bad("releases[%d]: urgency %q is not normal or security", i, r.Urgency)
		}
		for j, a := range r.Artifacts {
			if err := a.validate(); err != nil {
				bad("releases[%d].artifacts[%d]: %w", i, j, err)
			}
			for _, b := range r.Artifacts[:j] {
				if a.OS == b.OS && a.Arch == b.Arch {
					bad("releases[%d].artifacts[%d]: second artifact for %s/%s", i, j, a.OS, a.Arch)
				}
			}
		}
	}
	for env, ch := range m.Environments {
		for _, v := range []string{ch.Stable, ch.Earlybird} {
			if v != "" && !seen[v] {
				bad("environments.%s names version %q that has no release entry", env, v)
			}
		}
	}
	for k := range m.ConfigDefaults {
		if !ConfigKeyAllowed(k) {
			bad("config_defaults: key %q is not centrally managed", k)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrMalformed, errors.Join(errs...))
	}
	return nil
}

func (a Artifact) validate() error {
	var errs []error
	if a.OS == "" || a.Arch == "" {
		errs = append(errs, errors.New("os and arch are required"))
	}
	if a.Size <= 0 {
		errs = append(errs, fmt.Errorf("size %d must be > 0", a.Size))
	}
	if b, err := hex.DecodeString(a.SHA256); err != nil || len(b) != 32 {
		errs = append(errs, fmt.Errorf("sha256 %q is not 64 hex digits", a.SHA256))
	}
	if err := checkRef(a.URL); err != nil {
		errs = append(errs, fmt.Errorf("url: %w", err))
	}
	if err := checkRef(a.Minisig); err != nil {
		errs = append(errs, fmt.Errorf("minisig: %w", err))
	}
	return errors.Join(errs...)
}

// checkRef accepts an absolute https/http URL or a relative path that stays
// below the manifest's folder: a signed manifest must not be able to point the
// download at "../../something".
func checkRef(ref string) error {
	switch {
	case ref == "":
		return errors.New("empty")
	case strings.HasPrefix(ref, "https://"), strings.HasPrefix(ref, "http://"):
		return nil
	case strings.Contains(ref, "://"), strings.HasPrefix(ref, "/"), strings.Contains(ref, `\`):
		return fmt.Errorf("%q is neither an http(s) URL nor a relative path", ref)
	}
	if c := path.Clean(ref); c == ".." || strings.HasPrefix(c, "../") {
		return fmt.Errorf("%q leaves the release folder", ref)
	}
	return nil
}

// Marshal encodes the manifest the way the release tool publishes it.
func (m *Manifest) Marshal() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// Package release is the signing side of self-update: it lays out a
// release tree as operations.md §4.3 describes (manifest.json, its .minisig,
// and per-version artifacts each with its own .minisig), adds releases to it,
// and re-seals the manifest with a new serial and expiry. cmd/efm-release is
// its command line. The private key never leaves the process that calls it.
package release

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"aead.dev/minisign"
	"github.com/efm-go/efm/update/manifest"
	"github.com/hashicorp/go-version"
)

// Errors callers branch on.
var (
	ErrArtifactName = errors.New("artifact file name is not integrasjonspunkt-<version>-<os>-<arch>[.exe]")
	ErrVersion      = errors.New("version is not strict semver")
	ErrExists       = errors.New("release already in the manifest")
	ErrTree         = errors.New("release tree does not verify")
	// ErrRollbackUnsafe: the release raises the store schema but would be
	// applied automatically, and the version before it cannot open the
	// migrated store (operations.md §4.4 rules M1 and M3).
	ErrRollbackUnsafe = errors.New("release migrates the store beyond what an older release opens, but rollback_safe_to is not itself")
)

// ManifestName is the file the daemons poll.
const ManifestName = "manifest.json"

var artifactRE = regexp.MustCompile(`^integrasjonspunkt-(.+)-([a-z0-9]+)-([a-z0-9]+?)(\.exe)?$`)

// ParseArtifactName reads version, OS and arch from an artifact's file name.
func ParseArtifactName(name string) (ver, goos, goarch string, err error) {
	m := artifactRE.FindStringSubmatch(filepath.Base(name))
	if m == nil {
		return "", "", "", fmt.Errorf("%w: %q", ErrArtifactName, filepath.Base(name))
	}
	if (m[4] == ".exe") != (m[2] == "windows") {
		return "", "", "", fmt.Errorf("%w: %q (.exe exactly for windows)", ErrArtifactName, filepath.Base(name))
	}
	return m[1], m[2], m[3], nil
}

// LoadKey reads a minisign private key file, decrypting it with password
// when it is encrypted.
func LoadKey(path, password string) (minisign.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return minisign.PrivateKey{}, fmt.Errorf("reading signing key: %w", err)
	}
	if minisign.IsEncrypted(b) {
		k, err := minisign.DecryptKey(password, b)
		if err != nil {
			return minisign.PrivateKey{}, fmt.Errorf("decrypting signing key: %w", err)
		}
		return k, nil
	}
	var k minisign.PrivateKey
	if err := k.UnmarshalText(b); err != nil {
		return minisign.PrivateKey{}, fmt.Errorf("parsing signing key: %w", err)
	}
	return k, nil
}

// Load reads dir/manifest.json, or returns an empty manifest when there is none.
func Load(dir string) (*manifest.Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return &manifest.Manifest{Schema: manifest.Schema, Product: manifest.Product, Environments: map[string]manifest.Channels{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	m, err := manifest.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("parsing existing manifest: %w", err)
	}
	if m.Environments == nil {
		m.Environments = map[string]manifest.Channels{}
	}
	return m, nil
}

// Add copies the artifacts into dir/<version>/, signs each, and adds the
// release to m. rel.Artifacts is filled from the files; the other fields of
// rel are kept as given.
func Add(m *manifest.Manifest, dir string, rel manifest.Release, files []string, key minisign.PrivateKey) error {
	if _, err := version.NewSemver(rel.Version); err != nil {
		return fmt.Errorf("%w: %q", ErrVersion, rel.Version)
	}
	if _, ok := m.Release(rel.Version); ok {
		return fmt.Errorf("%w: %s", ErrExists, rel.Version)
	}
	if len(files) == 0 {
		return fmt.Errorf("release %s: no artifacts", rel.Version)
	}
	if err := checkRollbackSafe(m, rel); err != nil {
		return err
	}
	rel.Artifacts = nil
	for _, f := range files {
		v, goos, goarch, err := ParseArtifactName(f)
		if err != nil {
			return err
		}
		if v != rel.Version {
			return fmt.Errorf("%w: %s is for version %s, not %s", ErrArtifactName, filepath.Base(f), v, rel.Version)
		}
		a, err := addArtifact(dir, rel.Version, f, key)
		if err != nil {
			return err
		}
		a.OS, a.Arch = goos, goarch
		rel.Artifacts = append(rel.Artifacts, a)
	}
	slices.SortFunc(rel.Artifacts, func(a, b manifest.Artifact) int { return strings.Compare(a.OS+a.Arch, b.OS+b.Arch) })
	m.Releases = append(m.Releases, rel)
	return nil
}

// checkRollbackSafe refuses a release that raises the schema of an older
// release in the manifest unless it is marked rollback_safe_to itself: a
// binary refuses a store newer than it knows, so an automatic rollback across
// that migration needs the pre-update snapshot and loses what came after it,
// and M3 allows that only for a release an operator applies. Releases below
// its min_upgrade_from do not count: they never roll back from it.
func checkRollbackSafe(m *manifest.Manifest, rel manifest.Release) error {
	if rel.SchemaVersion == 0 || rel.RollbackSafeTo == rel.Version {
		return nil
	}
	v, err := version.NewSemver(rel.Version)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrVersion, rel.Version)
	}
	var floor *version.Version // releases below MinUpgradeFrom never update to this one directly
	if rel.MinUpgradeFrom != "" {
		if floor, err = version.NewSemver(rel.MinUpgradeFrom); err != nil {
			return fmt.Errorf("%w: min_upgrade_from %q", ErrVersion, rel.MinUpgradeFrom)
		}
	}
	for _, r := range m.Releases {
		older, err := version.NewSemver(r.Version)
		if err != nil || r.SchemaVersion == 0 || r.SchemaVersion >= rel.SchemaVersion || !older.LessThan(v) ||
			floor != nil && older.LessThan(floor) {
			continue
		}
		return fmt.Errorf("%w: %s takes the store from schema %d (%s) to %d; add it with -rollback-safe-to %s",
			ErrRollbackUnsafe, rel.Version, r.SchemaVersion, r.Version, rel.SchemaVersion, rel.Version)
	}
	return nil
}

func addArtifact(dir, ver, src string, key minisign.PrivateKey) (manifest.Artifact, error) {
	name := filepath.Base(src)
	rel := ver + "/" + name
	dst := filepath.Join(dir, ver, name)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return manifest.Artifact{}, fmt.Errorf("creating release folder: %w", err)
	}
	in, err := os.Open(src)
	if err != nil {
		return manifest.Artifact{}, fmt.Errorf("opening artifact: %w", err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return manifest.Artifact{}, fmt.Errorf("creating %s: %w", dst, err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return manifest.Artifact{}, fmt.Errorf("copying %s: %w", name, err)
	}
	sig, err := manifest.SignFile(key, dst, "file:"+name)
	if err != nil {
		return manifest.Artifact{}, err
	}
	if err := os.WriteFile(dst+".minisig", sig, 0o644); err != nil {
		return manifest.Artifact{}, fmt.Errorf("writing signature: %w", err)
	}
	return manifest.Artifact{URL: rel, Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), Minisig: rel + ".minisig"}, nil
}

// Seal gives m the next serial and a fresh validity window, writes
// manifest.json and signs it. The serial is the larger of the previous one
// plus one and YYYYMMDD00 of now, so it is both strictly increasing and
// readable.
func Seal(m *manifest.Manifest, dir string, key minisign.PrivateKey, now time.Time, validity time.Duration) error {
	if validity <= 0 || validity > manifest.MaxValidity {
		validity = manifest.MaxValidity
	}
	now = now.UTC().Truncate(time.Second)
	day, _ := strconv.ParseUint(now.Format("20060102")+"00", 10, 64)
	m.Serial = max(m.Serial+1, day)
	m.IssuedAt, m.ExpiresAt = now, now.Add(validity)
	data, err := m.Marshal()
	if err != nil {
		return err
	}
	sig := manifest.Sign(key, data, fmt.Sprintf("serial:%d", m.Serial))
	// Signature first, then the manifest: a poller that catches the gap sees
	// a signature that does not match and retries at the next check, rather
	// than a manifest verified by a stale signature.
	if err := writeAtomic(filepath.Join(dir, ManifestName+".minisig"), sig); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, ManifestName), data)
}

func writeAtomic(name string, data []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, name); err != nil {
		return fmt.Errorf("renaming %s: %w", name, err)
	}
	return nil
}

// Verify checks a release tree as a daemon would: the manifest's signature
// and validity, then every artifact's size, sha256 and signature.
func Verify(dir string, keys []minisign.PublicKey, now time.Time) (*manifest.Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTree, err)
	}
	sig, err := os.ReadFile(filepath.Join(dir, ManifestName+".minisig"))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTree, err)
	}
	m, err := manifest.Verify(keys, data, sig, manifest.Freshness{Now: now})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTree, err)
	}
	var errs []error
	for _, r := range m.Releases {
		for _, a := range r.Artifacts {
			if err := verifyArtifact(dir, a, keys); err != nil {
				errs = append(errs, fmt.Errorf("%s %s/%s: %w", r.Version, a.OS, a.Arch, err))
			}
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrTree, errors.Join(errs...))
	}
	return m, nil
}

func verifyArtifact(dir string, a manifest.Artifact, keys []minisign.PublicKey) error {
	if strings.Contains(a.URL, "://") {
		return nil // hosted elsewhere; the daemon checks it at download
	}
	p := filepath.Join(dir, filepath.FromSlash(a.URL))
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.Size() != a.Size {
		return fmt.Errorf("size %d, manifest says %d", fi.Size(), a.Size)
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != a.SHA256 {
		return fmt.Errorf("sha256 %s, manifest says %s", got, a.SHA256)
	}
	sig, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(a.Minisig)))
	if err != nil {
		return err
	}
	return manifest.VerifyFile(keys, p, sig)
}

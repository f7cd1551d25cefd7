package update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"time"

	"github.com/efm-go/efm/update/manifest"
)

// Errors of fetching and staging.
var (
	ErrManifestUnavailable = errors.New("manifest could not be fetched")
	ErrDownload            = errors.New("artifact download failed")
	ErrSizeMismatch        = errors.New("artifact size differs from the manifest")
	ErrChecksumMismatch    = errors.New("artifact sha256 differs from the manifest")
	ErrArtifactSignature   = errors.New("artifact signature not valid")
	ErrDiskFull            = errors.New("not enough free disk space to stage the update")
)

const (
	// manifestTimeout is the total time for one manifest fetch (operations.md
	// §4.4 step 2: 10 s connect, 60 s total).
	manifestTimeout = 60 * time.Second
	// maxSigSize caps a .minisig file; a real one is about 300 bytes.
	maxSigSize = 64 << 10
	// maxArtifactSize is a sanity cap on a manifest's size claim: the daemon is
	// about 30 MB, so 1 GB means a broken manifest, not a bigger daemon.
	maxArtifactSize = 1 << 30
	// freeSpaceFactor: staging needs free space ≥ 3 × the artifact (the
	// .partial, the .new selfupdate writes beside the target, the .previous).
	freeSpaceFactor = 3
)

// fetchManifest gets manifest.json and its .minisig, each capped.
func (u *Updater) fetchManifest(ctx context.Context) (data, sig []byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, manifestTimeout)
	defer cancel()
	data, err = u.get(ctx, u.cfg.ManifestURL, manifest.MaxSize)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrManifestUnavailable, err)
	}
	sig, err = u.get(ctx, u.cfg.ManifestURL+".minisig", maxSigSize)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: signature: %w", ErrManifestUnavailable, err)
	}
	return data, sig, nil
}

// get reads a whole response body, refusing one larger than limit.
func (u *Updater) get(ctx context.Context, rawURL string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	resp, err := u.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("requesting %s: %w", redact(rawURL), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("requesting %s: HTTP %d", redact(rawURL), resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", redact(rawURL), err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes: %w", redact(rawURL), limit, manifest.ErrTooLarge)
	}
	return b, nil
}

// redact drops query and user info from a URL before it reaches a log or an
// error: a mirror URL may carry a token.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// resolve makes an artifact reference absolute against the manifest URL.
func (u *Updater) resolve(ref string) (string, error) {
	base, err := url.Parse(u.cfg.ManifestURL)
	if err != nil {
		return "", fmt.Errorf("parsing manifest URL: %w", err)
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("parsing artifact reference: %w", err)
	}
	abs := base.ResolveReference(r).String()
	if err := CheckURL(abs); err != nil {
		return "", err
	}
	return abs, nil
}

func (u *Updater) stagingDir(version string) string {
	return filepath.Join(u.dir, "staging", version)
}

// stage downloads the chosen artifact to .partial, checks size, sha256 and
// its own minisig, and renames it to .ready (operations.md §4.4 step 4). An
// already staged and still valid .ready is reused.
func (u *Updater) stage(ctx context.Context, c Choice) (*Staged, error) {
	a := c.Artifact
	if a.Size > maxArtifactSize {
		return nil, fmt.Errorf("%w: manifest claims %d bytes", ErrSizeMismatch, a.Size)
	}
	dir := u.stagingDir(c.Release.Version)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating staging dir: %w", err)
	}
	name := path.Base(a.URL)
	if name == "." || name == "/" || name == "" {
		name = "integrasjonspunkt"
	}
	st := &Staged{
		Version:       c.Release.Version,
		Path:          filepath.Join(dir, name+".ready"),
		SigPath:       filepath.Join(dir, name+".minisig"),
		SHA256:        a.SHA256,
		Size:          a.Size,
		Urgency:       c.Release.Urgency,
		SchemaVersion: c.Release.SchemaVersion,
	}
	sigURL, err := u.resolve(a.Minisig)
	if err != nil {
		return nil, err
	}
	sig, err := u.get(ctx, sigURL, maxSigSize)
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %w", ErrDownload, err)
	}
	if err := writeFileAtomic(st.SigPath, sig, 0o600); err != nil {
		return nil, err
	}
	if err := u.verifyStaged(st); err == nil {
		return st, nil // staged before and untouched since
	}
	_ = os.Remove(st.Path)

	if err := checkFreeSpace(dir, freeSpaceFactor*a.Size); err != nil {
		return nil, err
	}
	partial := filepath.Join(dir, name+".partial")
	artURL, err := u.resolve(a.URL)
	if err != nil {
		return nil, err
	}
	if err := u.download(ctx, artURL, partial, a.Size); err != nil {
		return nil, err
	}
	tmp := *st
	tmp.Path = partial
	if err := u.verifyStaged(&tmp); err != nil {
		// Unverified bytes never keep a name that could be mistaken for a
		// good one, and the next attempt starts from scratch.
		_ = os.Remove(partial)
		return nil, err
	}
	if err := os.Rename(partial, st.Path); err != nil {
		return nil, fmt.Errorf("renaming staged artifact: %w", err)
	}
	return st, nil
}

// download fetches url into dst, resuming with Range when dst already holds
// a prefix, never writing more than size bytes, logging progress.
func (u *Updater) download(ctx context.Context, rawURL, dst string, size int64) error {
	var have int64
	if fi, err := os.Stat(dst); err == nil {
		have = fi.Size()
	}
	if have >= size {
		// A complete (or overlong) partial from an earlier run: verify it as is.
		if have == size {
			return nil
		}
		_ = os.Remove(dst)
		have = 0
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fmt.Errorf("%w: building request: %w", ErrDownload, err)
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	resp, err := u.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrDownload, redact(rawURL), err)
	}
	defer resp.Body.Close()
	flags := os.O_CREATE | os.O_WRONLY
	switch {
	case have > 0 && resp.StatusCode == http.StatusPartialContent:
		flags |= os.O_APPEND
		u.log.InfoContext(ctx, "resuming update download", slog.Int64("offset", have), slog.Int64("size", size))
	case resp.StatusCode == http.StatusOK:
		flags |= os.O_TRUNC // the server ignored Range: start over
		have = 0
	default:
		return fmt.Errorf("%w: %s: HTTP %d", ErrDownload, redact(rawURL), resp.StatusCode)
	}
	f, err := os.OpenFile(dst, flags, 0o600)
	if err != nil {
		return fmt.Errorf("%w: opening %s: %w", ErrDownload, dst, err)
	}
	defer f.Close()
	pw := &progressWriter{u: u, ctx: ctx, done: have, size: size, step: max(size/10, 1), next: have + max(size/10, 1)}
	// Read one byte past the claim so an overlong body is detected without
	// storing more than the cap.
	n, err := io.Copy(io.MultiWriter(f, pw), io.LimitReader(resp.Body, size-have+1))
	if err != nil {
		return fmt.Errorf("%w: after %d bytes: %w", ErrDownload, have+n, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("%w: syncing: %w", ErrDownload, err)
	}
	if got := have + n; got != size {
		if got < size {
			return fmt.Errorf("%w: got %d of %d bytes; the download resumes at the next check", ErrDownload, got, size)
		}
		_ = os.Remove(dst)
		return fmt.Errorf("%w: server sent more than the %d bytes the manifest states", ErrSizeMismatch, size)
	}
	return nil
}

type progressWriter struct {
	u          *Updater
	ctx        context.Context
	done, size int64
	step, next int64
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	if p.done >= p.next || p.done == p.size {
		p.u.log.DebugContext(p.ctx, "update download progress",
			slog.Int64("bytes", p.done), slog.Int64("size", p.size), slog.Int64("percent", p.done*100/max(p.size, 1)))
		for p.next <= p.done {
			p.next += p.step
		}
	}
	return len(b), nil
}

// verifyStaged checks a staged file's size, sha256 and minisig. It is run at
// staging and again immediately before the swap (operations.md §4.4 step 5),
// because the file may have been touched in between.
func (u *Updater) verifyStaged(st *Staged) error {
	f, err := os.Open(st.Path)
	if err != nil {
		return fmt.Errorf("opening staged artifact: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("reading staged artifact: %w", err)
	}
	if fi.Size() != st.Size {
		return fmt.Errorf("%w: %d bytes, manifest says %d", ErrSizeMismatch, fi.Size(), st.Size)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("hashing staged artifact: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != st.SHA256 {
		return fmt.Errorf("%w: got %s, manifest says %s", ErrChecksumMismatch, got, st.SHA256)
	}
	sig, err := os.ReadFile(st.SigPath)
	if err != nil {
		return fmt.Errorf("%w: reading minisig: %w", ErrArtifactSignature, err)
	}
	if err := manifest.VerifyFile(u.keys, st.Path, sig); err != nil {
		return fmt.Errorf("%w: %w", ErrArtifactSignature, err)
	}
	return nil
}

func fileSHA256(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", fmt.Errorf("opening %s: %w", name, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

package update

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/efm-go/efm/update/manifest"
	"github.com/minio/selfupdate"
)

// Errors of the preflight and the swap.
var (
	ErrPreflight = errors.New("staged binary failed its self-test")
	ErrSwap      = errors.New("replacing the executable failed; the old one is still in place")
	// ErrSwapRollback means the swap failed and putting the old executable
	// back failed too: the binary path may be empty. The process must keep
	// running the old code in memory and an operator must act.
	ErrSwapRollback = errors.New("replacing the executable failed and restoring the old one failed too")
	ErrNoPrevious   = errors.New("no previous executable kept to roll back to")
)

// previousPath is bin/integrasjonspunkt.previous(.exe) (operations.md §1.4).
func previousPath(exe string) string {
	ext := filepath.Ext(exe)
	if strings.EqualFold(ext, ".exe") {
		return strings.TrimSuffix(exe, ext) + ".previous" + ext
	}
	return exe + ".previous"
}

// failedPath keeps a rolled-back binary beside the others for analysis; the
// next successful update replaces it.
func failedPath(exe string) string {
	ext := filepath.Ext(exe)
	if strings.EqualFold(ext, ".exe") {
		return strings.TrimSuffix(exe, ext) + ".failed" + ext
	}
	return exe + ".failed"
}

// preflight runs the staged binary's self-test (operations.md §4.4 step 6):
// it must run on this OS, print the target version and accept this
// installation's configuration and store, before anything is replaced.
func (u *Updater) preflight(ctx context.Context, st *Staged) error {
	if err := os.Chmod(st.Path, 0o700); err != nil {
		return fmt.Errorf("%w: making it executable: %w", ErrPreflight, err)
	}
	ctx, cancel := context.WithTimeout(ctx, u.cfg.PreflightTimeout)
	defer cancel()
	args := []string{"self-test", "--data", u.cfg.DataDir}
	if u.cfg.ConfigFile != "" {
		args = append(args, "--config", u.cfg.ConfigFile)
	}
	args = append(args, u.cfg.SelfTestArgs...)
	cmd := exec.CommandContext(ctx, st.Path, args...)
	var out capped
	out.limit = 64 << 10
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Dir = u.cfg.DataDir
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		return fmt.Errorf("%w: no answer within %s", ErrPreflight, u.cfg.PreflightTimeout)
	}
	if err != nil {
		return fmt.Errorf("%w: %w: %s", ErrPreflight, err, lastLines(out.String(), 5))
	}
	if !hasVersionToken(out.String(), st.Version) {
		return fmt.Errorf("%w: it did not report version %s: %s", ErrPreflight, st.Version, lastLines(out.String(), 5))
	}
	return nil
}

// hasVersionToken looks for v as a whole token ("version=1.4.2", "1.4.2").
func hasVersionToken(out, v string) bool {
	for _, f := range strings.FieldsFunc(out, func(r rune) bool { return r == ' ' || r == '\n' || r == '\t' || r == '\r' || r == '=' || r == '"' }) {
		if f == v {
			return true
		}
	}
	return false
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

type capped struct {
	bytes.Buffer
	limit int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.limit - c.Len(); room > 0 {
		c.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// swapIn replaces the executable with the staged file through
// selfupdate.Apply, with the checksum and the minisign verifier set so the
// bytes are checked once more as they are written, and the old executable
// kept at oldSave.
func (u *Updater) swapIn(src, sigPath, sha string, oldSave string) error {
	sum, err := hex.DecodeString(sha)
	if err != nil {
		return fmt.Errorf("%w: bad sha256 %q", ErrSwap, sha)
	}
	opts := selfupdate.Options{
		TargetPath:  u.exe,
		TargetMode:  u.exeMode(),
		Checksum:    sum,
		OldSavePath: oldSave,
	}
	if sigPath != "" {
		sig, err := os.ReadFile(sigPath)
		if err != nil {
			return fmt.Errorf("%w: reading signature: %w", ErrSwap, err)
		}
		key, err := manifest.KeyFor(u.keys, sig)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrArtifactSignature, err)
		}
		v := selfupdate.NewVerifier()
		if err := v.LoadFromFile(sigPath, key.String()); err != nil {
			return fmt.Errorf("%w: loading signature: %w", ErrSwap, err)
		}
		opts.Verifier = v
	}
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("%w: opening %s: %w", ErrSwap, src, err)
	}
	defer f.Close()
	err = selfupdate.Apply(io.Reader(f), opts)
	if err == nil {
		return nil
	}
	if rerr := selfupdate.RollbackError(err); rerr != nil {
		return fmt.Errorf("%w: swap: %w; restore: %w", ErrSwapRollback, err, rerr)
	}
	return fmt.Errorf("%w: %w", ErrSwap, err)
}

func (u *Updater) exeMode() os.FileMode {
	if fi, err := os.Stat(u.exe); err == nil {
		return fi.Mode().Perm()
	}
	return 0o755
}

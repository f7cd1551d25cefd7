package update

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Phase is where an update stands in state.json.
type Phase string

// Phases of operations.md §4.4.
const (
	PhaseIdle       Phase = ""
	PhaseProbation  Phase = "probation"
	PhaseCommitted  Phase = "committed"
	PhaseRolledBack Phase = "rolled_back"
	// PhaseRollbackFailed: the new version failed probation but the old
	// executable could not be put back; the new one keeps running and an
	// operator must act.
	PhaseRollbackFailed Phase = "rollback_failed"
)

// State is <data>/update/state.json. It is the one record that survives the
// swap and the restart, so everything the new binary needs to judge itself,
// and everything the old one needs after a rollback, is here.
type State struct {
	Phase          Phase     `json:"phase"`
	From           string    `json:"from,omitempty"`
	To             string    `json:"to,omitempty"`
	PreviousSHA256 string    `json:"previous_sha256,omitempty"`
	Attempts       int       `json:"attempts"`
	SwappedAt      time.Time `json:"swapped_at,omitzero"`
	Reason         string    `json:"reason,omitempty"`
	LogTail        string    `json:"log_tail,omitempty"`

	// HighestSerial is the highest manifest serial accepted, against replay.
	HighestSerial uint64 `json:"highest_serial"`
	// Blocklist holds versions that failed here; they are not offered again.
	Blocklist map[string]Block `json:"blocklist,omitempty"`

	LastCheck         time.Time `json:"last_check,omitzero"`
	LastResult        string    `json:"last_result,omitempty"` // a Result value
	LastReason        string    `json:"last_reason,omitempty"` // a Reason code
	LastError         string    `json:"last_error,omitempty"`  // human text, for status and health
	Available         string    `json:"available,omitempty"`   // newer version offered and allowed
	Waiting           string    `json:"waiting,omitempty"`     // newer version waiting for an operator's decision
	Staged            *Staged   `json:"staged,omitempty"`
	ManifestExpiresAt time.Time `json:"manifest_expires_at,omitzero"`
	// RevokedRunning is the running version when the manifest revokes it:
	// an alert for the operator, never a reason to downgrade.
	RevokedRunning string `json:"revoked_running,omitempty"`
}

// Block records why a version is blocked.
type Block struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// Staged is a verified artifact waiting in staging for a window.
type Staged struct {
	Version       string `json:"version"`
	Path          string `json:"path"`     // the .ready file
	SigPath       string `json:"sig_path"` // its minisig
	SHA256        string `json:"sha256"`
	Size          int64  `json:"size"`
	Urgency       string `json:"urgency,omitempty"`
	SchemaVersion int    `json:"schema_version,omitempty"`
}

func (s *State) blocked(v string) bool { _, ok := s.Blocklist[v]; return ok }

func (s *State) block(v, reason string, at time.Time) {
	if s.Blocklist == nil {
		s.Blocklist = map[string]Block{}
	}
	s.Blocklist[v] = Block{At: at, Reason: reason}
}

// readState reads state.json; a missing file is the idle state.
func readState(path string) (State, error) {
	var s State
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("reading update state: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("decoding update state %s: %w", path, err)
	}
	return s, nil
}

// writeState replaces state.json atomically: temp file, fsync, rename, so a
// crash mid-write leaves the old state, never a torn one.
func writeState(path string, s State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding update state: %w", err)
	}
	return writeFileAtomic(path, append(b, '\n'), 0o600)
}

func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("creating temp file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("setting mode of %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("renaming into %s: %w", path, err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes the rename durable where the OS allows fsync on a directory.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // Windows refuses; its rename is durable on NTFS
		d.Close()
	}
}

package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/sbd"
)

// The ledger of a dir shared by the daemons of a group (efm.shared.dir):
// one small JSON file per message, read afresh on every use, so that the
// daemon that takes a message over from a killed one finds its checkpoint.
// A file is replaced by rename, so a process killed mid-write leaves the old
// or the new version, never half of one.

func (l *ledger) filePath(id string) string { return filepath.Join(l.dir, id+".json") }

func (l *ledger) fileGet(id string) (entry, error) {
	var e entry
	b, err := os.ReadFile(l.filePath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return e, nil
	}
	if err != nil {
		return e, fmt.Errorf("reading pipeline entry: %w", err)
	}
	if err := json.Unmarshal(b, &e); err != nil {
		// A torn file cannot happen (rename); anything else is not ours to
		// trust, and forgetting it only costs a fresh attempt.
		return entry{}, nil
	}
	return e, nil
}

// fileUpdate applies fn to the message's entry and writes it back; the
// caller holds l.mu.
func (l *ledger) fileUpdate(id string, fn func(*entry)) (entry, error) {
	e, err := l.fileGet(id)
	if err != nil {
		return e, err
	}
	fn(&e)
	e.Updated = time.Now().UTC()
	return e, l.fileWrite(id, e)
}

func (l *ledger) fileWrite(id string, e entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	p := l.filePath(id)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("writing pipeline entry: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("writing pipeline entry: %w", err)
	}
	return nil
}

func (l *ledger) fileRemove(id string) error {
	if err := os.Remove(l.filePath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing pipeline entry: %w", err)
	}
	return nil
}

// fileEntries reads every message's file.
func (l *ledger) fileEntries() (map[string]entry, error) {
	des, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("listing pipeline entries: %w", err)
	}
	out := map[string]entry{}
	for _, de := range des {
		id, ok := strings.CutSuffix(de.Name(), ".json")
		if !ok || !sbd.IsUUID(id) {
			continue
		}
		e, err := l.fileGet(id)
		if err != nil {
			return nil, err
		}
		out[id] = e
	}
	return out, nil
}

package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/sbd"
)

// entry is what the pipeline remembers about one outgoing message between
// attempts and across restarts: nothing the store does not already know but
// the channel's own bookkeeping.
type entry struct {
	Channel string `json:"channel"`
	// Checkpoint is what a channel saved before anything left the machine
	// (DPO: the broker's fileTransferId).
	Checkpoint string `json:"checkpoint,omitempty"`
	// Reference is the channel's id for a sent message (DPV: the
	// correspondenceId), kept while its statuses are tracked.
	Reference string `json:"reference,omitempty"`
	// Attempts counts failed attempts, for the dead-letter limit.
	Attempts int       `json:"attempts,omitempty"`
	Tracking bool      `json:"tracking,omitempty"`
	Updated  time.Time `json:"updated"`
	// Seen is how many statuses the Tracker has reported, and Changed when
	// that number last grew (or the message was sent): the age the status
	// polling back-off works from (channels.md §1.6).
	Seen    int       `json:"seen,omitempty"`
	Changed time.Time `json:"changed,omitzero"`
	// Receipt is the arkivmelding_kvittering generated for the message,
	// handed to the core as incoming on the first LEVERT (channels.md §3.5).
	Receipt json.RawMessage `json:"receipt,omitempty"`
}

// ledger keeps one small JSON file per message under dir. A file is replaced
// by rename, so a process killed mid-write leaves the old or the new version,
// never half of one; that is the crash model of the daemon (SIGKILL, not power
// loss), so there is no fsync on the hot path.
type ledger struct {
	dir string
	mu  sync.Mutex // serialises read-modify-write of one message's file
}

func openLedger(dir string) (*ledger, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating pipeline dir: %w", err)
	}
	return &ledger{dir: dir}, nil
}

// path refuses anything but a UUID: the id comes from a queue entry and
// becomes a file name.
func (l *ledger) path(messageID string) (string, error) {
	if !sbd.IsUUID(messageID) {
		return "", fmt.Errorf("ledger: message id is not a uuid")
	}
	return filepath.Join(l.dir, strings.ToLower(messageID)+".json"), nil
}

func (l *ledger) get(messageID string) (entry, error) {
	var e entry
	p, err := l.path(messageID)
	if err != nil {
		return e, err
	}
	b, err := os.ReadFile(p)
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

// update applies fn to the message's entry and writes it back.
func (l *ledger) update(messageID string, fn func(*entry)) (entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, err := l.get(messageID)
	if err != nil {
		return e, err
	}
	fn(&e)
	e.Updated = time.Now().UTC()
	p, _ := l.path(messageID)
	b, err := json.Marshal(e)
	if err != nil {
		return e, err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return e, fmt.Errorf("writing pipeline entry: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return e, fmt.Errorf("writing pipeline entry: %w", err)
	}
	return e, nil
}

func (l *ledger) remove(messageID string) error {
	p, err := l.path(messageID)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing pipeline entry: %w", err)
	}
	return nil
}

// tracking lists the messages whose statuses a Tracker follows.
func (l *ledger) tracking() (map[string]entry, error) {
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
		e, err := l.get(id)
		if err != nil {
			return nil, err
		}
		if e.Tracking {
			out[id] = e
		}
	}
	return out, nil
}

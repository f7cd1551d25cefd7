package pipeline

import (
	"bufio"
	"bytes"
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

// record is one line of the ledger's log: a message's entry as it now
// stands, or its removal.
type record struct {
	ID      string `json:"id"`
	Entry   *entry `json:"e,omitempty"`
	Removed bool   `json:"rm,omitempty"`
}

// ledger keeps the entries in memory and appends every change to one log
// file, rewritten (to a temporary file, then renamed) at open and whenever
// it holds far more lines than entries. One write per change: a small JSON
// file per message, replaced by rename and removed at the end, cost a
// create, a rename and an unlink per message, 4 % of the daemon's CPU per
// delivered message (issue 18).
//
// The crash model is the daemon's (SIGKILL, not power loss), so there is no
// fsync on the hot path: a write that returned is in the file. A process
// killed during a write may leave a torn last line; it is skipped when the
// log is read, and the change it carried was never acted on (update had not
// returned, so nothing was uploaded on its strength).
//
// A dir shared by the daemons of a group keeps a file per message instead
// (ledger_files.go): there the entry must be read from disk on every use.
type ledger struct {
	dir    string
	shared bool
	mu     sync.Mutex // serialises read-modify-write of an entry
	// The log; unused when shared.
	f       *os.File
	entries map[string]entry
	lines   int // in the log file
}

const (
	ledgerLog = "ledger.log"
	// compactAt is how many lines beyond the live entries the log may hold
	// before it is rewritten.
	compactAt = 4096
)

// openLedger opens the ledger in dir; shared says other daemons use dir too.
func openLedger(dir string, shared bool) (*ledger, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating pipeline dir: %w", err)
	}
	l := &ledger{dir: dir, shared: shared, entries: map[string]entry{}}
	if err := l.readLog(); err != nil {
		return nil, err
	}
	if shared {
		// A log left by a daemon that ran alone on this dir becomes files.
		for id, e := range l.entries {
			if err := l.fileWrite(id, e); err != nil {
				return nil, err
			}
		}
		if err := os.Remove(filepath.Join(dir, ledgerLog)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("removing pipeline ledger: %w", err)
		}
		l.entries = nil
		return l, nil
	}
	legacy, err := l.fileEntries()
	if err != nil {
		return nil, err
	}
	// A file per message is the format of earlier versions, and of a group
	// (shared dir): the log, written after it, is newer for any message
	// both hold.
	for id, e := range legacy {
		if _, ok := l.entries[id]; !ok {
			l.entries[id] = e
		}
	}
	if err := l.compact(); err != nil {
		return nil, err
	}
	for id := range legacy {
		os.Remove(filepath.Join(dir, id+".json"))
	}
	return l, nil
}

func (l *ledger) readLog() error {
	f, err := os.Open(filepath.Join(l.dir, ledgerLog))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading pipeline ledger: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20) // an entry may hold a generated receipt
	for sc.Scan() {
		var r record
		if json.Unmarshal(sc.Bytes(), &r) != nil || !sbd.IsUUID(r.ID) {
			// A torn last line, or nothing of ours: forgetting an entry
			// costs at most a fresh attempt.
			continue
		}
		switch {
		case r.Removed:
			delete(l.entries, r.ID)
		case r.Entry != nil:
			l.entries[r.ID] = *r.Entry
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading pipeline ledger: %w", err)
	}
	return nil
}

// compact writes the live entries to a new log and appends from there on.
// A torn line at the end of the old log goes with it.
func (l *ledger) compact() error {
	var buf bytes.Buffer
	for id, e := range l.entries {
		b, err := json.Marshal(record{ID: id, Entry: &e})
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	path := filepath.Join(l.dir, ledgerLog)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("writing pipeline ledger: %w", err)
	}
	if l.f != nil {
		l.f.Close() // Windows renames over no open file
		l.f = nil
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing pipeline ledger: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening pipeline ledger: %w", err)
	}
	l.f, l.lines = f, len(l.entries)
	return nil
}

// appendRecord writes r as one line in one write, so a reader sees it
// whole or, if the process died in the write, not at all.
func (l *ledger) appendRecord(r record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if l.f == nil {
		// An earlier compaction failed after closing the log.
		if err := l.compact(); err != nil {
			return err
		}
	}
	if _, err := l.f.Write(append(b, '\n')); err != nil {
		// Part of the line may be in the file: the next change starts a
		// fresh log rather than append to it.
		l.f.Close()
		l.f = nil
		return fmt.Errorf("writing pipeline entry: %w", err)
	}
	l.lines++
	if l.lines > 4*len(l.entries)+compactAt {
		// The change is written; a failed rewrite only leaves a longer log.
		_ = l.compact()
	}
	return nil
}

// close closes the log file; a later change opens a fresh one.
func (l *ledger) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// key is the ledger's key of a message id. It refuses anything but a UUID:
// the id comes from a queue entry, and becomes a file name in a shared dir.
func key(messageID string) (string, error) {
	if !sbd.IsUUID(messageID) {
		return "", fmt.Errorf("ledger: message id is not a uuid")
	}
	return strings.ToLower(messageID), nil
}

func (l *ledger) get(messageID string) (entry, error) {
	id, err := key(messageID)
	if err != nil {
		return entry{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shared {
		return l.fileGet(id)
	}
	return l.entries[id], nil
}

// update applies fn to the message's entry and writes it back.
func (l *ledger) update(messageID string, fn func(*entry)) (entry, error) {
	id, err := key(messageID)
	if err != nil {
		return entry{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shared {
		return l.fileUpdate(id, fn)
	}
	e := l.entries[id]
	fn(&e)
	e.Updated = time.Now().UTC()
	if err := l.appendRecord(record{ID: id, Entry: &e}); err != nil {
		return e, err
	}
	l.entries[id] = e
	return e, nil
}

func (l *ledger) remove(messageID string) error {
	id, err := key(messageID)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shared {
		return l.fileRemove(id)
	}
	if _, ok := l.entries[id]; !ok {
		return nil
	}
	if err := l.appendRecord(record{ID: id, Removed: true}); err != nil {
		return fmt.Errorf("removing pipeline entry: %w", err)
	}
	delete(l.entries, id)
	return nil
}

// tracking lists the messages whose statuses a Tracker follows.
func (l *ledger) tracking() (map[string]entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	es := l.entries
	if l.shared {
		var err error
		if es, err = l.fileEntries(); err != nil {
			return nil, err
		}
	}
	out := map[string]entry{}
	for id, e := range es {
		if e.Tracking {
			out[id] = e
		}
	}
	return out, nil
}

// Package logfile is a size-rotated log file: <dir>/integrasjonspunkt.log and
// up to Keep older files .1 … .N (operations.md §2.2: 10 MB × 8 files, as the
// reference's WinSW example). A Windows service has no journald to catch
// stderr, so this is where its log goes.
package logfile

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// File is an io.Writer that rotates when a write would pass MaxSize. It is
// safe for concurrent use; slog handlers write one line per call.
type File struct {
	path    string
	maxSize int64
	keep    int

	mu   sync.Mutex
	f    *os.File
	size int64
}

// Open opens (appending) path, rotating at maxSize bytes and keeping keep old files.
func Open(path string, maxSize int64, keep int) (*File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("creating log dir: %w", err)
	}
	l := &File{path: path, maxSize: maxSize, keep: keep}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *File) open() error {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("opening log file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("opening log file: %w", err)
	}
	l.f, l.size = f, st.Size()
	return nil
}

func (l *File) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.size > 0 && l.size+int64(len(p)) > l.maxSize {
		if err := l.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return n, err
}

func (l *File) rotate() error {
	if err := l.f.Close(); err != nil {
		return err
	}
	for i := l.keep - 1; i >= 1; i-- {
		_ = os.Rename(fmt.Sprintf("%s.%d", l.path, i), fmt.Sprintf("%s.%d", l.path, i+1))
	}
	if l.keep > 0 {
		if err := os.Rename(l.path, l.path+".1"); err != nil {
			return fmt.Errorf("rotating log file: %w", err)
		}
	} else if err := os.Remove(l.path); err != nil {
		return fmt.Errorf("rotating log file: %w", err)
	}
	return l.open()
}

// Close closes the current file.
func (l *File) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

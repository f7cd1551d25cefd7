// Package svcmgr plays the service manager in the update tests: it starts
// the daemon's executable, and restarts it whenever it exits, as systemd's
// Restart=always and the Windows SCM's OnFailure=restart do, recording every
// exit so a test can see the deliberate restart status.
package svcmgr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"time"
)

// Exit is one end of the child process.
type Exit struct {
	Code   int
	At     time.Time
	Output string // the tail of the child's combined output
}

// Manager supervises one executable path: whatever file is at Path when a
// start happens is what runs, just as a service manager execs the path.
type Manager struct {
	Path       string
	Args       []string
	Env        []string      // appended to os.Environ()
	Dir        string        // working directory
	RestartSec time.Duration // delay before a restart; default 100 ms
	MaxStarts  int           // give up after this many starts; default 50

	mu     sync.Mutex
	exits  []Exit
	starts int
	proc   *os.Process
	out    *tail
	cancel context.CancelFunc
	done   chan struct{}
}

// Start begins supervising. Stop ends it.
func (m *Manager) Start() error {
	if m.RestartSec == 0 {
		m.RestartSec = 100 * time.Millisecond
	}
	if m.MaxStarts == 0 {
		m.MaxStarts = 50
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel, m.done = cancel, make(chan struct{})
	go m.loop(ctx)
	return nil
}

func (m *Manager) loop(ctx context.Context) {
	defer close(m.done)
	for {
		m.mu.Lock()
		if m.starts >= m.MaxStarts || ctx.Err() != nil {
			m.mu.Unlock()
			return
		}
		m.starts++
		cmd := exec.Command(m.Path, m.Args...)
		cmd.Env = append(os.Environ(), m.Env...)
		cmd.Dir = m.Dir
		out := &tail{max: 256 << 10}
		cmd.Stdout, cmd.Stderr = out, out
		// Start under the lock: Stop reads the process, which Start writes.
		err := cmd.Start()
		m.out = out
		if err == nil {
			m.proc = cmd.Process
		}
		m.mu.Unlock()
		code := 0
		if err == nil {
			err = cmd.Wait()
		}
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			code = ee.ExitCode()
		case err != nil:
			code = -1
			out.Write([]byte("start failed: " + err.Error()))
		}
		m.mu.Lock()
		m.exits = append(m.exits, Exit{Code: code, At: time.Now(), Output: out.String()})
		m.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(m.RestartSec):
		}
	}
}

// Stop terminates the child (SIGTERM first, so it drains, then kill) and
// stops restarting it.
func (m *Manager) Stop() {
	m.cancel()
	m.mu.Lock()
	proc := m.proc
	m.mu.Unlock()
	if proc != nil {
		_ = terminate(proc)
		select {
		case <-m.done:
			return
		case <-time.After(15 * time.Second):
			_ = proc.Kill()
		}
	}
	<-m.done
}

// Exits returns the exits so far.
func (m *Manager) Exits() []Exit {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Exit(nil), m.exits...)
}

// Starts returns how many times the child was started.
func (m *Manager) Starts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.starts
}

// Output returns the current child's output so far.
func (m *Manager) Output() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.out == nil {
		return ""
	}
	return m.out.String()
}

// Describe summarises the exits for a failure message.
func (m *Manager) Describe() string {
	var b bytes.Buffer
	for i, e := range m.Exits() {
		fmt.Fprintf(&b, "exit %d: code %d at %s\n%s\n", i, e.Code, e.At.Format(time.TimeOnly), e.Output)
	}
	fmt.Fprintf(&b, "current output:\n%s", m.Output())
	return b.String()
}

// tail keeps the last max bytes written.
type tail struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

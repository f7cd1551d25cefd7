// Package pgtest starts a private PostgreSQL server for tests: its own
// cluster in a temporary directory, on a free loopback port, run as a
// non-root user (PostgreSQL refuses to run as root, and CI runs as root).
//
// A test that needs PostgreSQL calls Require: without the server binaries it
// skips with a message saying what to install, except in CI (CI=true), where
// the missing binaries fail the test so the PostgreSQL backend is never
// silently untested.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Superuser is the cluster's superuser; trust authentication on loopback,
// so any password is accepted.
const Superuser = "efm"

// Server is a running private PostgreSQL server.
type Server struct {
	Port int
	dir  string
	cmd  *exec.Cmd
	done chan error
	n    atomic.Int64
}

// Options tune the server.
type Options struct {
	// Durable keeps fsync and synchronous commit on, as a production server
	// runs: for benchmarks. Tests run without, for speed.
	Durable bool
}

// BinDir finds the directory of the initdb and postgres binaries: Debian
// keeps them in /usr/lib/postgresql/<major>/bin, outside PATH.
func BinDir() (string, error) {
	if d := os.Getenv("EFM_PG_BINDIR"); d != "" {
		return d, nil
	}
	if ms, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres"); len(ms) > 0 {
		sort.Slice(ms, func(i, j int) bool { return major(ms[i]) < major(ms[j]) })
		return filepath.Dir(ms[len(ms)-1]), nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			if _, err := os.Stat(filepath.Join(filepath.Dir(r), "postgres")); err == nil {
				return filepath.Dir(r), nil
			}
		}
	}
	return "", errors.New("PostgreSQL server binaries not found (apt-get install postgresql, or set EFM_PG_BINDIR)")
}

func major(p string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
	return n
}

// Need skips t when the PostgreSQL binaries are missing, except in CI,
// where it fails it.
func Need(t testing.TB) {
	t.Helper()
	if _, err := BinDir(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI must test the PostgreSQL backend: %v", err)
		}
		t.Skipf("skipping the PostgreSQL backend: %v", err)
	}
}

var (
	shared     *Server
	sharedErr  error
	sharedOnce sync.Once
)

// Require returns the test binary's shared server, starting it on first use.
// Stop it from TestMain with StopShared.
func Require(t testing.TB) *Server {
	t.Helper()
	Need(t)
	sharedOnce.Do(func() { shared, sharedErr = Start(Options{}) })
	if sharedErr != nil {
		t.Fatalf("starting PostgreSQL: %v", sharedErr)
	}
	return shared
}

// StopShared stops the server Require started, if any.
func StopShared() {
	if shared != nil {
		shared.Stop()
	}
}

// Start initialises a cluster in a new temporary directory and starts it.
func Start(o Options) (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "efm-pg-")
	if err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, cred.uid, cred.gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", Superuser, "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = procAttr(cred)
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	args := []string{"-D", data, "-p", strconv.Itoa(port), "-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + dir, "-c", "max_connections=300", "-c", "shared_buffers=64MB"}
	if !o.Durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.SysProcAttr = procAttr(cred)
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting postgres: %w", err)
	}
	s := &Server{Port: port, dir: dir, cmd: cmd, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := pgx.Connect(context.Background(), s.URL("postgres"))
		if err == nil {
			conn.Close(context.Background())
			return s, nil
		}
		select {
		case werr := <-s.done:
			log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			os.RemoveAll(dir)
			return nil, fmt.Errorf("postgres exited: %v: %s", werr, log)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("postgres did not accept connections within 60s: %w", err)
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// URL is a postgres:// URL for database db as the superuser.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", Superuser, s.Port, db)
}

// JDBC is the JDBC URL the daemon's spring.datasource.url takes for db.
func (s *Server) JDBC(db string) string {
	return fmt.Sprintf("jdbc:postgresql://127.0.0.1:%d/%s", s.Port, db)
}

// CreateDB makes a new empty database and returns its name; tests never
// share one.
func (s *Server) CreateDB(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), s.n.Add(1))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		t.Fatalf("connecting to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("creating database: %v", err)
	}
	return name
}

// Stop shuts the server down fast and removes its directory.
func (s *Server) Stop() {
	if s.cmd.Process != nil {
		// SIGINT is PostgreSQL's fast shutdown.
		_ = s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	os.RemoveAll(s.dir)
}

// Log returns the server's log, for a failing test's output.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
	return strings.TrimSpace(string(b))
}

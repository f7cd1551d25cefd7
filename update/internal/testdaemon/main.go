// Command testdaemon is a minimal daemon built on the update library, for
// the library's own process-level tests: it serves /manage/health, runs the
// updater and exits with update.ExitRestart when told to.
//
// Its behaviour is part of the executable's bytes, as a release's is: the
// tests build it once and append a trailer per variant (see trailer.go), so
// each "release" has its own content and checksum without a build each:
//
//	version    the version it reports
//	health     "up"; "down": /manage/health answers 503 (never becomes ready);
//	           "crash": exits 1 right after Boot (crashes at start)
//	selftest   "ok"; "fail": `self-test` fails (does not run here)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"aead.dev/minisign"
	"github.com/efm-go/efm/update"
	"github.com/efm-go/efm/update/manifest"
)

var (
	version  = "0.0.0"
	health   = "up"
	selftest = "ok"
)

func main() {
	if t, err := readTrailer(); err == nil {
		version, health, selftest = t.Version, t.Health, t.SelfTest
	}
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testdaemon run|self-test [flags]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "self-test":
		if selftest != "ok" {
			fmt.Println("self-test failed: configuration refused")
			os.Exit(1)
		}
		fmt.Printf("self-test ok version=%s\n", version)
	case "run":
		os.Exit(run(os.Args[2:]))
	default:
		os.Exit(2)
	}
}

func run(args []string) int {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	data := fs.String("data", "", "data dir")
	port := fs.Int("port", 0, "health port")
	manifestURL := fs.String("manifest", "", "manifest URL")
	key := fs.String("key", "", "trusted public key")
	windows := fs.String("windows", "* * * * * *", "update windows")
	check := fs.Duration("check", time.Second, "check interval")
	probation := fs.Duration("probation", 3*time.Second, "probation to first UP")
	stable := fs.Duration("stable", time.Second, "probation stable period")
	mode := fs.String("mode", update.ModeAuto, "update mode")
	_ = fs.Parse(args)

	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With(slog.String("version", version))
	pk, err := manifest.ParsePublicKey(*key)
	if err != nil {
		log.Error("bad key", slog.Any("error", err))
		return 1
	}
	var evMu sync.Mutex
	healthURL := "http://127.0.0.1:" + strconv.Itoa(*port) + "/manage/health"
	u, err := update.New(update.Config{
		DataDir: *data, CurrentVersion: version, ManifestURL: *manifestURL,
		PublicKeys: []minisign.PublicKey{pk}, Mode: *mode,
		Windows: *windows, WindowLength: time.Hour, SpreadDelay: -1, CheckInterval: *check,
		Probation: *probation, ProbationStable: *stable, PollInterval: 100 * time.Millisecond,
		Health: update.HTTPHealth(healthURL, nil), Logger: log,
		LogTail: func() string { return "testdaemon " + version + " log tail" },
		OnEvent: func(e update.Event) {
			evMu.Lock()
			defer evMu.Unlock()
			f, err := os.OpenFile(filepath.Join(*data, "events.jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
			if err != nil {
				return
			}
			defer f.Close()
			_ = json.NewEncoder(f).Encode(e)
		},
	})
	if err != nil {
		log.Error("updater", slog.Any("error", err))
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := u.Boot(ctx); err != nil {
		if errors.Is(err, update.ErrRestart) {
			return update.ExitRestart
		}
		log.Error("boot", slog.Any("error", err))
		return 1
	}
	if health == "crash" {
		log.Error("simulated crash at start")
		return 1
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /manage/health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if health == "down" {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"status":"DOWN"}`)
			return
		}
		fmt.Fprintf(w, `{"status":"UP","version":%q}`, version)
	})
	mux.HandleFunc("GET /manage/info", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"build":{"version":%q}}`, version)
	})
	var ln net.Listener
	for range 50 { // the previous process may still hold the port for a moment
		if ln, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(*port)); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		log.Error("listen", slog.Any("error", err))
		return 1
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	err = u.Run(ctx)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	switch {
	case errors.Is(err, update.ErrRestart):
		log.Info("exiting for restart")
		return update.ExitRestart
	case err != nil:
		log.Error("updater stopped", slog.Any("error", err))
		return 1
	}
	return 0
}

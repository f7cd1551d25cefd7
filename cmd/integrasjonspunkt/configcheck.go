package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt"
	"github.com/efm-go/efm/integrasjonspunkt/check"
	"github.com/efm-go/efm/integrasjonspunkt/config"
	"github.com/efm-go/efm/internal/buildinfo"
	"github.com/efm-go/efm/update"
)

// now is the clock config check judges certificates by; tests set it.
var now = time.Now

func configCheckCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	loc := devLocations()
	fs := newFlags("config check", stderr)
	loc.flags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if loc.config == "" {
		return &exitError{code: exitUsage, err: fmt.Errorf("no configuration file: give --config or put %s in the working directory", configName)}
	}
	data, _ := filepath.Abs(loc.data)
	cfg, warns, err := config.Load(config.Source{File: loc.config, Env: os.Environ(), DataDir: data})
	for _, w := range warns {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	if cfg == nil {
		return err
	}
	// The files are opened even when keys have problems: every problem at once.
	fileErrors := 0
	for _, f := range check.Files(cfg, data, now()) {
		fmt.Fprintln(stdout, f)
		if f.Level == check.Error {
			fileErrors++
		}
	}
	if err != nil {
		var joined interface{ Unwrap() []error }
		if errors.As(err, &joined) {
			for _, e := range joined.Unwrap() {
				fmt.Fprintf(stdout, "error: %s\n", e)
			}
			return &exitError{code: exitFailure, err: fmt.Errorf("%d problems in %s", len(joined.Unwrap())+fileErrors, loc.config)}
		}
		fmt.Fprintf(stdout, "error: %s\n", err)
		return &exitError{code: exitFailure, err: fmt.Errorf("problems in %s", loc.config)}
	}
	problems := fileErrors
	var uc update.Config
	if err := update.Settings(&uc, func(k string) (string, bool) { v := cfg.Value(k); return v, v != "" }); err != nil {
		// The updater's keys are checked where the updater reads them; a bad
		// one would otherwise first show when the daemon starts.
		fmt.Fprintf(stdout, "error: %s\n", err)
		problems++
	}
	if problems > 0 {
		return &exitError{code: exitFailure, err: fmt.Errorf("%d problems in %s and the files it names", problems, loc.config)}
	}
	fmt.Fprintf(stdout, "configuration OK: organisation %s, environment %s, channels %v\n", cfg.OrgNumber, cfg.Environment, cfg.Enabled)
	exposure := "loopback only"
	if !cfg.Server.Loopback() {
		exposure = "exposed beyond this host, with TLS and basic auth"
	}
	fmt.Fprintf(stdout, "local API: %s (%s)\n\n", cfg.Server.Addr(), exposure)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, e := range cfg.Effective() {
		fmt.Fprintf(tw, "%s\t%s\t(%s)\n", e[0], e[1], e[2])
	}
	return tw.Flush()
}

func versionCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if err := parseFlags(newFlags("version", stderr), args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "integrasjonspunkt %s\ncommit:     %s\nbuilt:      %s\ngo:         %s\napi majors: ", buildinfo.Version, buildinfo.CommitOrVCS(), buildinfo.Time, buildinfo.GoVersion())
	for m, st := range integrasjonspunkt.APIMajors {
		fmt.Fprintf(stdout, "%s (%s) ", m, st["status"])
	}
	fmt.Fprintln(stdout)
	return nil
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/efm-go/efm/integrasjonspunkt/check"
	"github.com/efm-go/efm/integrasjonspunkt/config"
)

func init() {
	commands = append(commands, command{"check", "a real round trip per enabled part (Maskinporten, registers, each channel); [channel...] limits it", checkCmd})
}

// checkCmd answers "will my first message go?" before the first message:
// every part the configuration enables, OK or the failing step and its fix.
func checkCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	loc := serviceLocations()
	if _, err := os.Stat(loc.data); err != nil {
		loc = devLocations()
	}
	fs := newFlags("check", stderr)
	loc.flags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return &exitError{code: exitUsage, err: err}
	}
	var channels []string
	for _, a := range fs.Args() {
		ch := strings.ToUpper(a)
		if !slices.Contains(config.Channels, ch) {
			return &exitError{code: exitUsage, err: fmt.Errorf("unknown channel %q: one of %s", a, strings.Join(config.Channels, ", "))}
		}
		channels = append(channels, ch)
	}
	if loc.config == "" {
		return &exitError{code: exitUsage, err: fmt.Errorf("no configuration file: give --config or put %s in the working directory", configName)}
	}
	data, _ := filepath.Abs(loc.data)
	cfg, _, err := config.Load(config.Source{File: loc.config, Env: os.Environ(), DataDir: data})
	if err != nil {
		return fmt.Errorf("the configuration has problems; run 'integrasjonspunkt config check --config %s'", loc.config)
	}
	rep := check.Run(ctx, cfg, check.Options{DataDir: data, Channels: channels, Now: now})
	rep.Print(stdout)
	if err := rep.Save(data); err != nil {
		fmt.Fprintf(stderr, "warning: the status page will not show this check: %v\n", err)
	} else {
		giveToDataOwner(data, filepath.Dir(check.LastPath(data)), check.LastPath(data))
	}
	if f := rep.FirstFailure(); f != nil {
		return &exitError{code: exitFailure, err: fmt.Errorf("%s failed: %s", f.Part, f.Fix)}
	}
	return nil
}

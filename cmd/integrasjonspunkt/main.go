// Command integrasjonspunkt is the eFormidling integration point daemon. main
// parses the subcommand and is the only caller of os.Exit; the work is in the
// integrasjonspunkt package.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

// processStart is as close to the process start as Go lets us get: the
// start-up time the daemon logs is measured from here.
var processStart = time.Now()

// Exit statuses. status follows the LSB convention (operations.md §1.2).
const (
	exitOK           = 0
	exitFailure      = 1
	exitUsage        = 2
	exitStopped      = 3
	exitNotInstalled = 4
	// exitRestart asks the service manager to start the binary again: the
	// self-update's swap (operations.md §4.4 step 9). Both systemd
	// (Restart=always) and the Windows SCM (OnFailure=restart) restart on it.
	exitRestart = 75
)

// exitError carries an exit status other than 1 up to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

type command struct {
	name, usage string
	run         func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands is the list of subcommands; each lives in a file of its own.
var commands []command

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	code := exitOK
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
	case err != nil:
		code = exitFailure
	}
	if err != nil && err.Error() != "" {
		fmt.Fprintln(os.Stderr, "integrasjonspunkt:", err)
	}
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return &exitError{code: exitUsage}
		}
		return nil
	}
	// --version is what a newcomer types first; it is the version command.
	if args[0] == "--version" || args[0] == "-version" || args[0] == "-v" {
		args = append([]string{"version"}, args[1:]...)
	}
	name, rest := args[0], args[1:]
	if name == "config" && len(rest) > 0 && rest[0] == "check" {
		name, rest = "config check", rest[1:]
	}
	if name == "store" && len(rest) > 0 && rest[0] == "migrate" {
		name, rest = "store migrate", rest[1:]
	}
	for _, c := range commands {
		if c.name == name {
			err := c.run(ctx, rest, stdout, stderr)
			if errors.Is(err, errHelp) {
				return nil
			}
			return err
		}
	}
	usage(stderr)
	return &exitError{code: exitUsage, err: fmt.Errorf("unknown command %q", name)}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: integrasjonspunkt <command> [flags]")
	fmt.Fprintln(w)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.usage)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'integrasjonspunkt <command> -h' for a command's flags.")
}

// newFlags makes a flag set that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// errHelp ends a command after its flags' help was printed: `run -h` or
// `install -h` must show the flags and do nothing else. run turns it into
// exit status 0.
var errHelp = errors.New("help printed")

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return &exitError{code: exitUsage, err: err}
	}
	if fs.NArg() > 0 {
		return &exitError{code: exitUsage, err: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

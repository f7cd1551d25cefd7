package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/efm-go/efm/integrasjonspunkt/events"
)

func init() {
	commands = append(commands, command{"pseudonym", "read one national identity number on stdin, print its central-log pseudonym", pseudonymCmd})
}

func pseudonymKeyPath(data string) string { return filepath.Join(data, "secrets", "pseudonym.key") }

// pseudonymCmd lets support follow one citizen's messages in the central log:
// the agency computes the pseudonym locally and hands over only that.
func pseudonymCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	loc := serviceLocations()
	if _, err := os.Stat(loc.data); err != nil {
		loc = devLocations()
	}
	fs := newFlags("pseudonym", stderr)
	loc.flags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	key := pseudonymKeyPath(loc.data)
	// A new key would give pseudonyms that match nothing in the central log,
	// so a missing key is an error here, never created.
	if _, err := os.Stat(key); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no pseudonym key at %s: give the daemon's --data dir, or restore secrets/pseudonym.key from a backup", key)
	}
	return events.PseudonymCommand(os.Stdin, stdout, key)
}

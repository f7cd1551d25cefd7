// Command efm-release builds and signs the self-update release tree of
// operations.md §4.3. It runs in the signing environment (CI); the private
// key never leaves it.
//
//	efm-release keygen  -pub efm.pub -key efm.key [-password-env VAR]
//	efm-release add     -dir releases -key efm.key -version 1.4.2 [-channel stable] [-env production] ... ARTIFACT...
//	efm-release resign  -dir releases -key efm.key        # new serial and expiry, run on a schedule
//	efm-release channel -dir releases -key efm.key -env production -channel stable -version 1.4.2
//	efm-release revoke  -dir releases -key efm.key -version 1.4.0
//	efm-release verify  -dir releases -pub efm.pub
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"aead.dev/minisign"
	"github.com/efm-go/efm/update/manifest"
	"github.com/efm-go/efm/update/release"
)

const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

var errUsage = errors.New("usage")

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, time.Now)
	switch {
	case err == nil:
		os.Exit(exitOK)
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "efm-release:", err)
		os.Exit(exitUsage)
	default:
		fmt.Fprintln(os.Stderr, "efm-release:", err)
		os.Exit(exitFail)
	}
}

func run(_ context.Context, args []string, stdout, stderr io.Writer, now func() time.Time) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: efm-release keygen|add|resign|channel|revoke|verify [flags]")
		return fmt.Errorf("%w: no command", errUsage)
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "releases", "the release `folder` holding manifest.json")
	keyFile := fs.String("key", "", "minisign private key `file`")
	pubFile := fs.String("pub", "", "minisign public key `file`")
	pwEnv := fs.String("password-env", "", "environment `variable` holding the private key's password")
	validity := fs.Duration("validity", manifest.MaxValidity, "manifest validity (at most 14 days)")
	ver := fs.String("version", "", "release `version` (strict semver)")
	env := fs.String("env", "production", "environment: production or staging")
	channels := fs.String("channel", "", "comma-separated channels to point at the version: stable, earlybird")
	urgency := fs.String("urgency", manifest.UrgencyNormal, "normal or security")
	minFrom := fs.String("min-upgrade-from", "", "oldest version that may upgrade straight to this one")
	safeTo := fs.String("rollback-safe-to", "", "oldest version that runs on this release's store schema")
	schemaVer := fs.Int("schema-version", 0, "store schema version of this release")
	apiMajors := fs.String("api-majors", "", "comma-separated API majors served, e.g. 1,2")
	notes := fs.String("notes-url", "", "release notes URL")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	password := ""
	if *pwEnv != "" {
		password = os.Getenv(*pwEnv)
	}
	loadKey := func() (minisign.PrivateKey, error) {
		if *keyFile == "" {
			return minisign.PrivateKey{}, fmt.Errorf("%w: -key is required", errUsage)
		}
		return release.LoadKey(*keyFile, password)
	}

	switch args[0] {
	case "keygen":
		if *keyFile == "" || *pubFile == "" {
			return fmt.Errorf("%w: keygen needs -key and -pub", errUsage)
		}
		pub, priv, err := minisign.GenerateKey(rand.Reader)
		if err != nil {
			return fmt.Errorf("generating key: %w", err)
		}
		var privText []byte
		if password != "" {
			privText, err = minisign.EncryptKey(password, priv)
		} else {
			privText, err = priv.MarshalText()
		}
		if err != nil {
			return fmt.Errorf("encoding private key: %w", err)
		}
		pubText, _ := pub.MarshalText()
		if err := writeNew(*keyFile, privText, 0o600); err != nil {
			return err
		}
		if err := writeNew(*pubFile, append(pubText, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "key id %X\npublic key %s\n", pub.ID(), pub.String())
		return nil

	case "add":
		key, err := loadKey()
		if err != nil {
			return err
		}
		if *ver == "" || fs.NArg() == 0 {
			return fmt.Errorf("%w: add needs -version and at least one artifact", errUsage)
		}
		majors, err := parseInts(*apiMajors)
		if err != nil {
			return fmt.Errorf("%w: -api-majors: %w", errUsage, err)
		}
		m, err := release.Load(*dir)
		if err != nil {
			return err
		}
		rel := manifest.Release{
			Version: *ver, ReleasedAt: now().UTC().Truncate(time.Second), Urgency: *urgency,
			MinUpgradeFrom: *minFrom, RollbackSafeTo: *safeTo, SchemaVersion: *schemaVer, APIMajors: majors, NotesURL: *notes,
		}
		if err := release.Add(m, *dir, rel, fs.Args(), key); err != nil {
			return err
		}
		if err := setChannels(m, *env, *channels, *ver); err != nil {
			return err
		}
		return seal(stdout, m, *dir, key, now(), *validity)

	case "resign":
		key, err := loadKey()
		if err != nil {
			return err
		}
		m, err := release.Load(*dir)
		if err != nil {
			return err
		}
		return seal(stdout, m, *dir, key, now(), *validity)

	case "channel":
		key, err := loadKey()
		if err != nil {
			return err
		}
		m, err := release.Load(*dir)
		if err != nil {
			return err
		}
		if err := setChannels(m, *env, *channels, *ver); err != nil {
			return err
		}
		return seal(stdout, m, *dir, key, now(), *validity)

	case "revoke":
		key, err := loadKey()
		if err != nil {
			return err
		}
		m, err := release.Load(*dir)
		if err != nil {
			return err
		}
		if *ver == "" {
			return fmt.Errorf("%w: revoke needs -version", errUsage)
		}
		if !slices.Contains(m.Revoked, *ver) {
			m.Revoked = append(m.Revoked, *ver)
		}
		return seal(stdout, m, *dir, key, now(), *validity)

	case "verify":
		if *pubFile == "" {
			return fmt.Errorf("%w: verify needs -pub", errUsage)
		}
		b, err := os.ReadFile(*pubFile)
		if err != nil {
			return fmt.Errorf("reading public key: %w", err)
		}
		pub, err := manifest.ParsePublicKey(string(b))
		if err != nil {
			return err
		}
		m, err := release.Verify(*dir, []minisign.PublicKey{pub}, now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ok: serial %d, %d releases, expires %s\n", m.Serial, len(m.Releases), m.ExpiresAt.Format(time.RFC3339))
		return nil
	}
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}

func seal(stdout io.Writer, m *manifest.Manifest, dir string, key minisign.PrivateKey, now time.Time, validity time.Duration) error {
	if err := release.Seal(m, dir, key, now, validity); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "manifest serial %d, expires %s\n", m.Serial, m.ExpiresAt.Format(time.RFC3339))
	return nil
}

func setChannels(m *manifest.Manifest, env, channels, ver string) error {
	if channels == "" {
		return nil
	}
	if _, ok := m.Release(ver); !ok {
		return fmt.Errorf("%w: version %q is not in the manifest", errUsage, ver)
	}
	c := m.Environments[env]
	for _, ch := range strings.Split(channels, ",") {
		switch strings.TrimSpace(ch) {
		case manifest.ChannelStable:
			c.Stable = ver
		case manifest.ChannelEarlybird:
			c.Earlybird = ver
		default:
			return fmt.Errorf("%w: channel %q is not stable or earlybird", errUsage, ch)
		}
	}
	m.Environments[env] = c
	return nil
}

func parseInts(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// writeNew refuses to overwrite: a keygen that silently replaced the
// signing key would lock every installation out.
func writeNew(name string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return f.Close()
}

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/efm-go/efm/integrasjonspunkt/config"
	"github.com/efm-go/efm/integrasjonspunkt/store"
)

func init() {
	commands = append(commands, command{"store migrate", "copy the SQLite store into PostgreSQL (--to jdbc:postgresql://...), resumable, verified by counts", storeMigrateCmd})
}

// storeMigrateCmd moves a stopped daemon's SQLite store into the PostgreSQL
// database a group of daemons will share. Run it again after an
// interruption: it continues where it stopped.
func storeMigrateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	loc := serviceLocations()
	if _, err := os.Stat(loc.data); err != nil {
		loc = devLocations()
	}
	fs := newFlags("store migrate", stderr)
	loc.flags(fs)
	to := fs.String("to", "", "the PostgreSQL database, as spring.datasource.url takes it: jdbc:postgresql://host:5432/database")
	user := fs.String("username", "", "the database user (default: spring.datasource.username of --config; the password comes from spring.datasource.password or PGPASSWORD)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *to == "" {
		return &exitError{code: exitUsage, err: fmt.Errorf("give --to jdbc:postgresql://host:5432/database")}
	}
	password := ""
	if loc.config != "" {
		// The credentials the daemon will use; the rest of the file need
		// not be valid for a copy.
		if cfg, _, _ := config.Load(config.Source{File: loc.config, Env: os.Environ(), DataDir: loc.data}); cfg != nil {
			if *user == "" {
				*user = cfg.Value("spring.datasource.username")
			}
			password = cfg.Value("spring.datasource.password")
		}
	}
	pg, err := config.PostgresURL(*to, *user, password)
	if err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("--to: %w", err)}
	}
	path := storePath(loc.data)
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no SQLite store to copy: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	src, err := store.Open(ctx, store.Config{Path: path, Logger: log})
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	defer src.Close()
	dst, err := store.Open(ctx, store.Config{Postgres: pg, Logger: log})
	if err != nil {
		return fmt.Errorf("opening %s: %w", *to, err)
	}
	defer dst.Close()
	abs, _ := filepath.Abs(path)
	fmt.Fprintf(stdout, "copying %s into %s\n", abs, *to)
	counts, err := src.CopyTo(ctx, dst, func(table string, n int64) {
		fmt.Fprintf(stdout, "  %s: %d rows\n", table, n)
	})
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "table\tSQLite\tPostgreSQL")
	for _, c := range counts {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", c.Table, c.Source, c.Copied)
	}
	tw.Flush()
	if err != nil {
		return fmt.Errorf("store migrate: %w (run it again to continue an interrupted copy)", err)
	}
	fmt.Fprintln(stdout, "store migrated: every table's rows counted alike; set spring.datasource.url and start the daemons")
	return nil
}

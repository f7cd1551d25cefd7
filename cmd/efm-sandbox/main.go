// Command efm-sandbox runs every simulated external service on loopback, alone,
// so that several daemons (several agencies) can share one set of simulators.
// It writes a properties file per seeded organisation that points a daemon at
// the simulators with that organisation's test certificate.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/efm-go/efm/internal/sandbox"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "efm-sandbox:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("efm-sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "./sandbox", "`dir` for the test PKI and the generated properties files")
	seedFile := fs.String("sandbox-seed", "", "seed `file` for the simulated registers (default: the built-in seed)")
	daemons := fs.String("daemons", "", "comma-separated `orgnrs` that real daemons play besides 910077473; the simulators do not answer for them")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	var others []string
	for _, o := range strings.Split(*daemons, ",") {
		if o = strings.TrimSpace(o); o != "" {
			others = append(others, o)
		}
	}
	sb, err := sandbox.Start(ctx, sandbox.Options{Dir: *dir, SeedFile: *seedFile, Logger: log, Daemons: others})
	if err != nil {
		return err
	}
	defer sb.Close()
	for _, s := range sb.Services {
		fmt.Fprintf(stdout, "%-24s %s\n", s.Name, s.BaseURL)
	}
	for org, id := range sb.PKI.Orgs {
		p := filepath.Join(*dir, org+".properties")
		over := map[string]string{
			"difi.move.org.number":            org,
			"difi.move.org.keystore.path":     id.KeystorePath,
			"difi.move.org.keystore.alias":    id.Alias,
			"difi.move.org.keystore.password": id.KeystorePassword,
			"difi.move.oidc.clientId":         "MOVE_IP_" + org,
		}
		maps.Copy(over, sb.DPFKeys(org))
		if err := os.WriteFile(p, []byte(properties(sb.Overrides, over)), 0o600); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "\nrun a daemon as one of the seeded organisations with\n  integrasjonspunkt run --config %s --data DIR\n", filepath.Join(*dir, "<orgnr>.properties"))
	<-ctx.Done()
	return nil
}

func properties(base, over map[string]string) string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for k, v := range over {
		m[k] = v
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString("# written by efm-sandbox: simulated services on loopback, test certificates\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, strings.ReplaceAll(m[k], `\`, `\\`))
	}
	return b.String()
}

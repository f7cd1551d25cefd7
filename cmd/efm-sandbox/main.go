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
	"strconv"
	"strings"
	"syscall"

	"github.com/efm-go/efm/internal/cpuprofile"
	"github.com/efm-go/efm/internal/logattr"
	"github.com/efm-go/efm/internal/sandbox"
	"github.com/efm-go/efm/packaging/testpki"
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
	basePort := fs.Int("base-port", 9093, "API `port` of "+sandbox.OwnOrg+"'s daemon; the other organisations' files get the next ports in number order")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The properties files name the keystores under dir, and a daemon reads
	// a relative path against its own data dir: write absolute ones.
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	*dir = abs
	// The sandbox's own CPU counts in the end-to-end figures: it shares the
	// cores with the daemon it serves.
	stopProfile, err := cpuprofile.Start("EFM_SANDBOX_CPUPROFILE")
	if err != nil {
		return err
	}
	defer stopProfile()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(logattr.OneComponent(slog.NewJSONHandler(stderr, nil)))
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
	if err := writeProperties(*dir, sb.Overrides, sb.PKI.Orgs, sb.DPFKeys, *basePort); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nrun a daemon as one of the seeded organisations with\n  integrasjonspunkt run --config %s --data DIR\n", filepath.Join(*dir, "<orgnr>.properties"))
	<-ctx.Done()
	return nil
}

// writeProperties writes DIR/<orgnr>.properties for every organisation. Each
// file names its own Maskinporten client and its own API port: with the base
// file's client id a second daemon is refused every token, and with one port
// the second daemon cannot start beside the first.
// dpf gives an organisation's own SvarUt/SvarInn keys.
func writeProperties(dir string, base map[string]string, orgs map[string]*testpki.Identity, dpf func(org string) map[string]string, basePort int) error {
	numbers := make([]string, 0, len(orgs))
	for org := range orgs {
		if org != sandbox.OwnOrg {
			numbers = append(numbers, org)
		}
	}
	slices.Sort(numbers)
	if _, ok := orgs[sandbox.OwnOrg]; ok {
		numbers = append([]string{sandbox.OwnOrg}, numbers...)
	}
	for i, org := range numbers {
		id := orgs[org]
		p := filepath.Join(dir, org+".properties")
		over := map[string]string{
			"difi.move.org.number":            org,
			"difi.move.org.keystore.path":     id.KeystorePath,
			"difi.move.org.keystore.alias":    id.Alias,
			"difi.move.org.keystore.password": id.KeystorePassword,
			"difi.move.oidc.clientId":         sandbox.ClientID(org),
			"server.port":                     strconv.Itoa(basePort + i),
		}
		maps.Copy(over, dpf(org))
		if err := os.WriteFile(p, []byte(properties(base, over)), 0o600); err != nil {
			return err
		}
	}
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

package sandbox

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/efm-go/efm/pakkesporing"
)

// startCentral runs the package-tracking service in process, trusting the
// test CA's business certificates, and points the daemon's shipper at it.
func (sb *Sandbox) startCentral(ctx context.Context, dir string, log *slog.Logger) error {
	l, err := pakkesporing.StartLoopback(ctx, pakkesporing.Config{
		DBPath:    filepath.Join(dir, "pakkesporing.db"),
		ClientCAs: sb.PKI.Pool(),
		Logger:    log, // pakkesporing names its own component
	})
	if err != nil {
		return fmt.Errorf("starting pakkesporing: %w", err)
	}
	sb.closers = append(sb.closers, l.Close)
	ca := filepath.Join(dir, "pakkesporing-ca.pem")
	if err := os.WriteFile(ca, l.RootPEM, 0o644); err != nil {
		return fmt.Errorf("writing pakkesporing's certificate: %w", err)
	}
	sb.Overrides["efm.events.url"] = l.BaseURL
	sb.Overrides["efm.events.trusted-ca"] = ca
	sb.Services = append(sb.Services, Service{
		Name:        "pakkesporing",
		BaseURL:     l.BaseURL,
		Description: "central package-tracking log: ingest (mutual TLS), query API and the operations page at /",
		Credentials: map[string]string{"queryToken": l.QueryToken, "web": "any user name, the query token as password",
			"caFile": ca}, // its certificate is self-signed: curl --cacert, or trust it in the browser

	})
	return nil
}

// Package sandbox assembles every simulated external service on loopback: the
// newcomer's `integrasjonspunkt run --sandbox` embeds it, and cmd/efm-sandbox
// runs it alone so several daemons (several agencies) can share one set of
// simulators. It only assembles: each simulator lives beside its client.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/efm-go/efm/addressing/seed"
	"github.com/efm-go/efm/packaging/testpki"
)

// OwnOrg is the sandbox daemon's own organisation, the sender of the README's
// examples (addressing.md §10).
const OwnOrg = "910077473"

// Options say where the sandbox keeps its files and what it is seeded with.
type Options struct {
	Dir      string       // the test PKI lives in Dir/pki; must not be empty
	SeedFile string       // "" for the embedded default seed
	Logger   *slog.Logger // must not be nil
	// Daemons are further organisations a real daemon plays besides OwnOrg
	// (several daemons sharing the simulators): the simulators do not
	// answer as their integration points.
	Daemons []string
}

// Service is one running simulator.
type Service struct {
	Name        string
	BaseURL     string
	Description string
	Credentials map[string]string
}

// Sandbox is the running set of simulators.
type Sandbox struct {
	PKI      *testpki.PKI
	Seed     *seed.Seed
	Services []Service
	// Overrides point a daemon of organisation OwnOrg at the simulators and
	// its test certificate: configuration keys and values.
	Overrides map[string]string

	closers []func() error
	daemons []string
}

// Start makes (or reuses) the test PKI, loads the seed and starts every
// simulator on a free loopback port.
func Start(ctx context.Context, o Options) (*Sandbox, error) {
	sd, err := loadSeed(o.SeedFile)
	if err != nil {
		return nil, err
	}
	pki, err := testpki.Ensure(filepath.Join(o.Dir, "pki"), append(append(sd.Organisations(), OwnOrg), svarInnOrgs(sd)...))
	if err != nil {
		return nil, fmt.Errorf("making the sandbox test pki: %w", err)
	}
	own := pki.Orgs[OwnOrg]
	sb := &Sandbox{
		PKI:  pki,
		Seed: sd,
		Overrides: map[string]string{
			"difi.move.org.number":                 OwnOrg,
			"difi.move.org.keystore.path":          own.KeystorePath,
			"difi.move.org.keystore.alias":         own.Alias,
			"difi.move.org.keystore.password":      own.KeystorePassword,
			"difi.move.org.keystore.type":          "PKCS12",
			"environment":                          "staging",
			"difi.move.identifier.synthetic.allow": "true",
			// The channels with simulators, on short schedules so that a
			// message reaches LEVERT within seconds.
			"difi.move.feature.enableDPO": "true",
			"difi.move.feature.enableDPV": "true",
			"difi.move.feature.enableDPE": "true",
			"difi.move.feature.enableDPI": "true",
			"efm.pipeline.poll-interval":  "1s",
			"efm.pipeline.reply-interval": "1s",
			"efm.pipeline.backoff":        "2s,5s,10s,30s",
			"efm.pipeline.trust-anchors":  pki.CAPath(),
		},
		daemons: o.Daemons,
	}
	if err := sb.startSimulators(o.Logger); err != nil {
		sb.Close()
		return nil, err
	}
	if err := sb.startCentral(ctx, o.Dir, o.Logger); err != nil {
		sb.Close()
		return nil, err
	}
	return sb, nil
}

func loadSeed(path string) (*seed.Seed, error) {
	if path == "" {
		return seed.Default()
	}
	sd, err := seed.Load(path)
	if err != nil {
		return nil, fmt.Errorf("loading sandbox seed: %w", err)
	}
	return sd, nil
}

// simulator is one service to mount: its handler and what configuration keys
// point a daemon at it (the value gets the base URL put in front).
type simulator struct {
	name, description string
	handler           http.Handler
	keys              map[string]string // key → path below the base URL
	credentials       map[string]string
}

// serve starts one simulator on a free loopback port and returns its base URL.
func (sb *Sandbox) serve(sim simulator, log *slog.Logger) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("starting simulator %s: %w", sim.name, err)
	}
	base := "http://" + ln.Addr().String()
	srv := &http.Server{Handler: sim.handler, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("simulator stopped", slog.String("simulator", sim.name), slog.Any("error", err))
		}
	}()
	sb.closers = append(sb.closers, srv.Close)
	sb.add(sim, base)
	return base, nil
}

// add lists a running simulator and points the daemon's keys at it.
func (sb *Sandbox) add(sim simulator, base string) {
	for k, p := range sim.keys {
		sb.Overrides[k] = base + p
	}
	sb.Services = append(sb.Services, Service{Name: sim.name, BaseURL: base, Description: sim.description, Credentials: sim.credentials})
}

// Close stops every simulator.
func (sb *Sandbox) Close() error {
	var errs []error
	for i := len(sb.closers) - 1; i >= 0; i-- {
		errs = append(errs, sb.closers[i]())
	}
	return errors.Join(errs...)
}

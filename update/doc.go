// Package update keeps the daemon current from a signed release manifest
// (operations.md §4): it verifies the manifest, picks a version by strict semver
// ordering and the operator's policy, stages and verifies the artifact, runs
// the new binary's self-test, swaps the executable with
// github.com/minio/selfupdate keeping the old one, and after the restart holds
// the new version on probation, rolling back to the old one if it does not
// come up healthy.
//
// The daemon runs it as a library: New, then Boot first thing in `run`
// (crash-loop detection must happen before anything that could crash), then
// Run beside the rest of the daemon. Run returns ErrRestart when the process
// must exit with the restart status so the service manager starts the swapped
// binary.
//
// Wiring in the daemon (cmd/integrasjonspunkt, after the configuration is
// loaded and before anything that opens the store):
//
//	upd, err := newUpdater(cfg, configFile, withSandbox, log, daemonHealth(cfg), onEvent) // cmd/integrasjonspunkt/update.go
//	if err != nil { ... }
//	if err := upd.Boot(ctx); err != nil { return asRestart(err) } // crash-loop rollback → exit ExitRestart
//	... then inside the errgroup of integrasjonspunkt.Run:
//	g.Go(func() error { return upd.Run(gctx) })  // ErrRestart ends the group; the API drains as for any stop
//	... and when Run returns errors.Is(err, update.ErrRestart): exit with ExitRestart (75).
//
// HealthComponent is the `update` component of /manage/health.
//
// It must not import the core (integrasjonspunkt/...): health, configuration
// and events come in through Config as plain values and functions.
package update

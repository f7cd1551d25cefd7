package update

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// HTTPHealth builds a Config.Health that asks one of the daemon's own
// health endpoints on loopback (operations.md §4.4 step 10). The daemon
// should give /manage/health/readiness: store, queue and API, and nothing
// outside the daemon. For /manage/health, 200 (UP or DEGRADED) is up too:
// DEGRADED means an outside service such as Altinn or Maskinporten is
// failing, which is not the new version's fault. 503 (DOWN) or no answer
// within 5 s is down.
func HTTPHealth(url string, client *http.Client) func(ctx context.Context) (bool, error) {
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	return func(ctx context.Context) (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, fmt.Errorf("building health request: %w", err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, fmt.Errorf("asking health: %w", err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		switch resp.StatusCode {
		case http.StatusOK:
			return true, nil
		case http.StatusServiceUnavailable:
			return false, nil
		default:
			return false, fmt.Errorf("health answered HTTP %d", resp.StatusCode)
		}
	}
}

// Component is the `update` health component (operations.md §2.2). It is
// never DOWN: a failed update leaves a working old version.
type Component struct {
	Status string `json:"status"` // "UP" or "DEGRADED"
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// quietRefusal are refusals that are the policy working, not a problem: an
// older version offered (the channel was pulled back), the operator's pin, a
// prerelease on the stable channel.
var quietRefusal = map[string]bool{ReasonUpToDate: true, ReasonDowngrade: true, ReasonPinned: true, ReasonPrerelease: true}

// HealthComponent reports DEGRADED when the last update failed or rolled
// back, the manifest could not be verified or has expired, or an update is
// available in notify mode or waiting for a decision.
func (u *Updater) HealthComponent() Component {
	s, err := readState(u.statePath)
	if err != nil {
		return Component{Status: "DEGRADED", Reason: ReasonInternal, Detail: err.Error()}
	}
	now := u.cfg.Now()
	switch {
	case s.Phase == PhaseRolledBack:
		return Component{Status: "DEGRADED", Reason: s.Reason, Detail: fmt.Sprintf("version %s was rolled back to %s", s.To, s.From)}
	case s.Phase == PhaseRollbackFailed:
		return Component{Status: "DEGRADED", Reason: s.LastReason, Detail: fmt.Sprintf("version %s failed (%s) and %s could not be put back: %s", s.To, s.Reason, s.From, s.LastError)}
	case s.LastResult == ResultFailed:
		return Component{Status: "DEGRADED", Reason: s.LastReason, Detail: s.LastError}
	case s.LastResult == ResultRefused && !quietRefusal[s.LastReason]:
		return Component{Status: "DEGRADED", Reason: s.LastReason, Detail: s.LastError}
	case s.RevokedRunning != "" && s.RevokedRunning == u.cfg.CurrentVersion:
		return Component{Status: "DEGRADED", Reason: ReasonRevoked, Detail: "the running version " + s.RevokedRunning + " is revoked; install a newer one"}
	case !s.ManifestExpiresAt.IsZero() && now.After(s.ManifestExpiresAt):
		return Component{Status: "DEGRADED", Reason: ReasonManifestExpired, Detail: "the last verified manifest has expired"}
	case s.Waiting != "":
		return Component{Status: "DEGRADED", Reason: s.LastReason, Detail: "1 update waiting for your decision: " + s.Waiting}
	case u.cfg.Mode == ModeNotify && s.Available != "":
		return Component{Status: "DEGRADED", Reason: ReasonModeNotify, Detail: "update available: " + s.Available}
	}
	return Component{Status: "UP"}
}

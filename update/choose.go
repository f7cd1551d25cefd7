package update

import (
	"errors"
	"fmt"
	"slices"

	"github.com/efm-go/efm/update/manifest"
	"github.com/hashicorp/go-version"
)

// Reasons a candidate is not applied (operations.md §4.4 step 3). Choose wraps
// exactly one of them; Status and events carry the matching Reason code.
var (
	ErrUpToDate       = errors.New("already running the offered version")
	ErrDowngrade      = errors.New("offered version is lower than the running one; downgrades are refused")
	ErrNoCandidate    = errors.New("manifest offers no version for this environment and channel")
	ErrRevoked        = errors.New("offered version is revoked")
	ErrBlocked        = errors.New("offered version is blocked here after a failed update")
	ErrNoArtifact     = errors.New("offered version has no artifact for this OS/arch")
	ErrPinned         = errors.New("offered version is outside efm.update.pin")
	ErrMajor          = errors.New("offered version is a new major above efm.update.max-major")
	ErrPrerelease     = errors.New("offered version is a prerelease, only installed on the earlybird channel")
	ErrNotSemver      = errors.New("offered version is not semver")
	ErrAPIMajorInUse  = errors.New("offered version drops an API major a client system still calls")
	ErrNeedsOperator  = errors.New("offered version cannot be rolled back automatically (rollback_safe_to is itself)")
	ErrNoUpgradePath  = errors.New("no release allows upgrading from the running version")
	ErrBadCurrent     = errors.New("running version is not semver")
	ErrBadPinSyntax   = errors.New("efm.update.pin is not a version constraint")
	ErrUnknownChannel = errors.New("update channel must be stable or earlybird")
)

// Policy is what the operator and the platform decide about which version
// may be installed.
type Policy struct {
	Environment string // "production" or "staging"; must not be empty
	Channel     string // manifest.ChannelStable or manifest.ChannelEarlybird
	// Pin is a go-version constraint ("~> 1.4", ">= 1.4, < 2.0"); empty allows all.
	Pin string
	// MaxMajor is the highest major installed automatically; 0 means the
	// running major, so a new major always needs the operator.
	MaxMajor int
	OS, Arch string
	// Blocked reports versions that failed here before; may be nil.
	Blocked func(version string) bool
	// APIMajorsInUse lists API majors a client called in the last 30 days
	// (efm_api_requests_total); nil means unknown and blocks nothing.
	APIMajorsInUse []int
	// AllowDowngrade is set only by `update apply --version X --allow-downgrade`.
	AllowDowngrade bool
	// Operator is set when a person asked for this update (`update apply`): it
	// lifts the checks that exist to wait for a decision (new major, API
	// majors in use, rollback_safe_to = itself).
	Operator bool
}

// Choice is a release picked for installation.
type Choice struct {
	Release  manifest.Release
	Artifact manifest.Artifact
	Version  *version.Version
}

// RefusedError says why the manifest's offer is not installed. Waiting is
// true when an operator's decision would allow it ("1 update waiting for your
// decision" on the status page), false when it is simply not wanted.
type RefusedError struct {
	Version string
	Err     error
	Waiting bool
}

func (e *RefusedError) Error() string {
	if e.Version == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("version %s: %v", e.Version, e.Err)
}

func (e *RefusedError) Unwrap() error { return e.Err }

// Choose picks the release to install from a verified manifest, or returns a
// *RefusedError naming why nothing is installed. An explicit version (from
// `update apply --version`) replaces the channel's candidate.
func Choose(m *manifest.Manifest, current string, explicit string, p Policy) (Choice, error) {
	cur, err := version.NewSemver(current)
	if err != nil {
		return Choice{}, fmt.Errorf("%w: %q", ErrBadCurrent, current)
	}
	var pin version.Constraints
	if p.Pin != "" {
		if pin, err = version.NewConstraint(p.Pin); err != nil {
			return Choice{}, fmt.Errorf("%w: %q: %w", ErrBadPinSyntax, p.Pin, err)
		}
	}
	if p.Channel != manifest.ChannelStable && p.Channel != manifest.ChannelEarlybird {
		return Choice{}, fmt.Errorf("%w: %q", ErrUnknownChannel, p.Channel)
	}
	name := explicit
	if name == "" {
		name = m.Environments[p.Environment].Get(p.Channel)
	}
	if name == "" {
		return Choice{}, &RefusedError{Err: fmt.Errorf("%w (%s/%s)", ErrNoCandidate, p.Environment, p.Channel)}
	}
	rel, ok := m.Release(name)
	if !ok {
		return Choice{}, &RefusedError{Version: name, Err: ErrNoCandidate}
	}
	c, err := consider(m, cur, rel, pin, p)
	if err == nil || !errors.Is(err, errTooOld) {
		return c, err
	}
	// The running version is older than min_upgrade_from: step through the
	// newest release that accepts it instead.
	var best *Choice
	for _, r := range m.Releases {
		c, err := consider(m, cur, r, pin, p)
		if err != nil {
			continue
		}
		if best == nil || c.Version.GreaterThan(best.Version) {
			best = &c
		}
	}
	if best == nil {
		return Choice{}, &RefusedError{Version: name, Err: ErrNoUpgradePath}
	}
	return *best, nil
}

var errTooOld = errors.New("running version is below min_upgrade_from")

func consider(m *manifest.Manifest, cur *version.Version, r manifest.Release, pin version.Constraints, p Policy) (Choice, error) {
	refuse := func(err error, waiting bool) (Choice, error) {
		return Choice{}, &RefusedError{Version: r.Version, Err: err, Waiting: waiting}
	}
	v, err := version.NewSemver(r.Version)
	if err != nil {
		return refuse(ErrNotSemver, false)
	}
	switch cmp := v.Compare(cur); {
	case cmp == 0:
		return refuse(ErrUpToDate, false)
	case cmp < 0 && !p.AllowDowngrade:
		return refuse(ErrDowngrade, false)
	}
	if m.IsRevoked(r.Version) {
		return refuse(ErrRevoked, false)
	}
	if p.Blocked != nil && p.Blocked(r.Version) && !p.Operator {
		return refuse(ErrBlocked, false)
	}
	if v.Prerelease() != "" && p.Channel != manifest.ChannelEarlybird && !p.Operator {
		return refuse(ErrPrerelease, false)
	}
	if pin != nil && !pin.Check(v) {
		return refuse(ErrPinned, false)
	}
	art, ok := r.Artifact(p.OS, p.Arch)
	if !ok {
		return refuse(fmt.Errorf("%w (%s/%s)", ErrNoArtifact, p.OS, p.Arch), false)
	}
	if r.MinUpgradeFrom != "" {
		min, err := version.NewSemver(r.MinUpgradeFrom)
		if err != nil {
			return refuse(fmt.Errorf("%w: min_upgrade_from %q", ErrNotSemver, r.MinUpgradeFrom), false)
		}
		if cur.LessThan(min) {
			return refuse(errTooOld, false)
		}
	}
	if !p.Operator {
		maxMajor := p.MaxMajor
		if maxMajor == 0 {
			maxMajor = cur.Segments()[0]
		}
		if v.Segments()[0] > maxMajor {
			return refuse(ErrMajor, true)
		}
		if r.RollbackSafeTo == r.Version {
			return refuse(ErrNeedsOperator, true)
		}
		if len(r.APIMajors) > 0 {
			for _, used := range p.APIMajorsInUse {
				if !slices.Contains(r.APIMajors, used) {
					return refuse(fmt.Errorf("%w (v%d)", ErrAPIMajorInUse, used), true)
				}
			}
		}
	}
	return Choice{Release: r, Artifact: art, Version: v}, nil
}

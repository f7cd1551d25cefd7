package update

import (
	"errors"
	"time"

	"github.com/efm-go/efm/update/manifest"
)

// Event types. The four of operations.md §5.3 go to the central log; staged
// and waiting are local notices (mail, log, status page).
const (
	EventStaged     = "update.staged"
	EventApplied    = "update.applied"
	EventCommitted  = "update.committed"
	EventRolledBack = "update.rolled_back"
	EventFailed     = "update.failed"
	EventWaiting    = "update.waiting"
)

// Result values of the last check (efm_update_last_result{result}).
const (
	ResultUpToDate   = "up_to_date"
	ResultRefused    = "refused"
	ResultAvailable  = "available" // notify mode: staged, not applied
	ResultStaged     = "staged"
	ResultWaiting    = "waiting"
	ResultApplied    = "applied"
	ResultCommitted  = "committed"
	ResultRolledBack = "rolled_back"
	ResultFailed     = "failed"
)

// Event is one update outcome. Reason is a code from the fixed list below,
// never free text, so the central log can carry it; Detail is for the local
// log and e-mail only and must not be shipped.
type Event struct {
	Type   string
	At     time.Time
	From   string
	To     string
	Reason string
	Detail string
}

// Reason codes (operations.md §5.3: a fixed list, never free text).
const (
	ReasonManifestUnavailable = "manifest_unavailable"
	ReasonBadSignature        = "bad_signature"
	ReasonManifestInvalid     = "manifest_invalid"
	ReasonManifestExpired     = "manifest_expired"
	// ReasonClockBehind: the manifest was issued in this machine's future,
	// so its clock is behind; no update can pass until it is set right.
	ReasonClockBehind        = "clock_behind"
	ReasonSerialReplay       = "serial_replay"
	ReasonUpToDate           = "up_to_date"
	ReasonDowngrade          = "downgrade_refused"
	ReasonRevoked            = "revoked"
	ReasonBlocked            = "blocked"
	ReasonNoArtifact         = "no_artifact"
	ReasonPinned             = "pinned"
	ReasonPrerelease         = "prerelease"
	ReasonMajor              = "major_needs_decision"
	ReasonAPIMajorInUse      = "api_major_in_use"
	ReasonNeedsOperator      = "needs_operator"
	ReasonNoUpgradePath      = "no_upgrade_path"
	ReasonNoCandidate        = "no_candidate"
	ReasonNotSemver          = "not_semver"
	ReasonDownloadFailed     = "download_failed"
	ReasonSizeMismatch       = "size_mismatch"
	ReasonChecksumMismatch   = "checksum_mismatch"
	ReasonArtifactSignature  = "artifact_signature"
	ReasonDiskFull           = "disk_full"
	ReasonPreflightFailed    = "preflight_failed"
	ReasonSwapFailed         = "swap_failed"
	ReasonSwapRollbackFailed = "swap_rollback_failed"
	ReasonProbationTimeout   = "probation_timeout"
	ReasonUnhealthy          = "unhealthy"
	ReasonCrashLoop          = "crash_loop"
	ReasonOperator           = "operator"
	ReasonModeNotify         = "mode_notify"
	ReasonInternal           = "internal"
)

var reasons = []struct {
	err    error
	reason string
}{
	{ErrManifestUnavailable, ReasonManifestUnavailable},
	{manifest.ErrSignature, ReasonBadSignature},
	{manifest.ErrNoTrustedKeys, ReasonBadSignature},
	{manifest.ErrExpired, ReasonManifestExpired},
	{manifest.ErrNotYetValid, ReasonClockBehind},
	{manifest.ErrSerialReplay, ReasonSerialReplay},
	{manifest.ErrMalformed, ReasonManifestInvalid},
	{manifest.ErrSchema, ReasonManifestInvalid},
	{manifest.ErrProduct, ReasonManifestInvalid},
	{manifest.ErrTooLarge, ReasonManifestInvalid},
	{ErrUpToDate, ReasonUpToDate},
	{ErrDowngrade, ReasonDowngrade},
	{ErrRevoked, ReasonRevoked},
	{ErrBlocked, ReasonBlocked},
	{ErrNoArtifact, ReasonNoArtifact},
	{ErrPinned, ReasonPinned},
	{ErrPrerelease, ReasonPrerelease},
	{ErrMajor, ReasonMajor},
	{ErrAPIMajorInUse, ReasonAPIMajorInUse},
	{ErrNeedsOperator, ReasonNeedsOperator},
	{ErrNoUpgradePath, ReasonNoUpgradePath},
	{ErrNoCandidate, ReasonNoCandidate},
	{ErrNotSemver, ReasonNotSemver},
	{ErrBadCurrent, ReasonNotSemver},
	{ErrSizeMismatch, ReasonSizeMismatch},
	{ErrChecksumMismatch, ReasonChecksumMismatch},
	{ErrArtifactSignature, ReasonArtifactSignature},
	{ErrDiskFull, ReasonDiskFull},
	{ErrDownload, ReasonDownloadFailed},
	{ErrPreflight, ReasonPreflightFailed},
	{ErrSwapRollback, ReasonSwapRollbackFailed},
	{ErrSwap, ReasonSwapFailed},
}

// ReasonOf maps an error from this package to its reason code.
func ReasonOf(err error) string {
	if err == nil {
		return ""
	}
	// The artifact's own signature failing wraps manifest.ErrSignature too;
	// the artifact sentinel is checked first so it is not reported as the
	// manifest's.
	if errors.Is(err, ErrArtifactSignature) {
		return ReasonArtifactSignature
	}
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return ReasonInternal
}

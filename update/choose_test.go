package update

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/efm-go/efm/update/manifest"
	"github.com/hashicorp/go-version"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func rel(v string, mods ...func(*manifest.Release)) manifest.Release {
	r := manifest.Release{Version: v, Artifacts: []manifest.Artifact{{
		OS: "linux", Arch: "amd64", URL: v + "/bin", Size: 1, SHA256: strings.Repeat("0", 64), Minisig: v + "/bin.minisig",
	}}}
	for _, m := range mods {
		m(&r)
	}
	return r
}

func offer(stable, earlybird string, rels ...manifest.Release) *manifest.Manifest {
	return &manifest.Manifest{
		Schema: 1, Product: manifest.Product, Serial: 1,
		IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour),
		Environments: map[string]manifest.Channels{"production": {Stable: stable, Earlybird: earlybird}},
		Releases:     rels,
	}
}

func TestChoose(t *testing.T) {
	base := Policy{Environment: "production", Channel: manifest.ChannelStable, OS: "linux", Arch: "amd64"}
	tests := []struct {
		name     string
		m        *manifest.Manifest
		current  string
		explicit string
		policy   func(*Policy)
		want     string
		wantErr  error
		waiting  bool
	}{
		{name: "newer patch", m: offer("1.4.2", "", rel("1.4.2")), current: "1.4.1", want: "1.4.2"},
		{name: "semver not lexical", m: offer("1.10.0", "", rel("1.10.0")), current: "1.9.0", want: "1.10.0"},
		{name: "same version", m: offer("1.4.2", "", rel("1.4.2")), current: "1.4.2", wantErr: ErrUpToDate},
		{name: "lower version refused", m: offer("1.4.1", "", rel("1.4.1")), current: "1.4.2", wantErr: ErrDowngrade},
		{name: "release candidate is lower than release", m: offer("1.5.0-rc.1", "", rel("1.5.0-rc.1")), current: "1.5.0", wantErr: ErrDowngrade},
		{name: "operator downgrade", m: offer("1.4.2", "", rel("1.4.1"), rel("1.4.2")), current: "1.4.2", explicit: "1.4.1",
			policy: func(p *Policy) { p.AllowDowngrade, p.Operator = true, true }, want: "1.4.1"},
		{name: "explicit lower without allow-downgrade", m: offer("1.4.2", "", rel("1.4.1"), rel("1.4.2")), current: "1.4.2", explicit: "1.4.1",
			policy: func(p *Policy) { p.Operator = true }, wantErr: ErrDowngrade},
		{name: "revoked", m: func() *manifest.Manifest {
			m := offer("1.4.2", "", rel("1.4.2"))
			m.Revoked = []string{"1.4.2"}
			return m
		}(), current: "1.4.1", wantErr: ErrRevoked},
		{name: "blocked after failure", m: offer("1.4.2", "", rel("1.4.2")), current: "1.4.1",
			policy: func(p *Policy) { p.Blocked = func(v string) bool { return v == "1.4.2" } }, wantErr: ErrBlocked},
		{name: "no artifact for arch", m: offer("1.4.2", "", rel("1.4.2")), current: "1.4.1", policy: func(p *Policy) { p.Arch = "arm64" }, wantErr: ErrNoArtifact},
		{name: "pin allows", m: offer("1.4.2", "", rel("1.4.2")), current: "1.4.1", policy: func(p *Policy) { p.Pin = "~> 1.4" }, want: "1.4.2"},
		{name: "pin refuses", m: offer("1.5.0", "", rel("1.5.0")), current: "1.4.1", policy: func(p *Policy) { p.Pin = "~> 1.4.0" }, wantErr: ErrPinned},
		{name: "pin range", m: offer("2.0.0", "", rel("2.0.0")), current: "1.4.1", policy: func(p *Policy) { p.Pin = ">= 1.4, < 2.0"; p.MaxMajor = 2 }, wantErr: ErrPinned},
		{name: "new major waits", m: offer("2.0.0", "", rel("2.0.0")), current: "1.9.0", wantErr: ErrMajor, waiting: true},
		{name: "new major allowed by max-major", m: offer("2.0.0", "", rel("2.0.0")), current: "1.9.0", policy: func(p *Policy) { p.MaxMajor = 2 }, want: "2.0.0"},
		{name: "prerelease on stable", m: offer("1.5.0-rc.1", "", rel("1.5.0-rc.1")), current: "1.4.2", wantErr: ErrPrerelease},
		{name: "prerelease on earlybird", m: offer("1.4.2", "1.5.0-rc.1", rel("1.4.2"), rel("1.5.0-rc.1")), current: "1.4.2",
			policy: func(p *Policy) { p.Channel = manifest.ChannelEarlybird }, want: "1.5.0-rc.1"},
		{name: "no candidate for environment", m: offer("1.4.2", "", rel("1.4.2")), current: "1.4.1", policy: func(p *Policy) { p.Environment = "staging" }, wantErr: ErrNoCandidate},
		{name: "not semver", m: offer("latest", "", rel("latest")), current: "1.4.1", wantErr: ErrNotSemver},
		{name: "min_upgrade_from steps through", current: "1.1.0",
			m:    offer("1.4.2", "", rel("1.2.5"), rel("1.3.0", func(r *manifest.Release) { r.MinUpgradeFrom = "1.1.0" }), rel("1.4.2", func(r *manifest.Release) { r.MinUpgradeFrom = "1.2.0" })),
			want: "1.3.0"},
		{name: "min_upgrade_from no path", current: "1.0.0",
			m:       offer("1.4.2", "", rel("1.4.2", func(r *manifest.Release) { r.MinUpgradeFrom = "1.2.0" })),
			wantErr: ErrNoUpgradePath},
		{name: "API major in use waits", m: offer("2.0.0", "", rel("2.0.0", func(r *manifest.Release) { r.APIMajors = []int{2} })), current: "1.9.0",
			policy: func(p *Policy) { p.MaxMajor = 2; p.APIMajorsInUse = []int{1} }, wantErr: ErrAPIMajorInUse, waiting: true},
		{name: "rollback_safe_to itself waits", m: offer("1.5.0", "", rel("1.5.0", func(r *manifest.Release) { r.RollbackSafeTo = "1.5.0" })), current: "1.4.2",
			wantErr: ErrNeedsOperator, waiting: true},
		{name: "operator lifts the wait", m: offer("1.5.0", "", rel("1.5.0", func(r *manifest.Release) { r.RollbackSafeTo = "1.5.0" })), current: "1.4.2",
			policy: func(p *Policy) { p.Operator = true }, want: "1.5.0"},
		{name: "bad current", m: offer("1.4.2", "", rel("1.4.2")), current: "dev", wantErr: ErrBadCurrent},
		{name: "bad pin", m: offer("1.4.2", "", rel("1.4.2")), current: "1.4.1", policy: func(p *Policy) { p.Pin = "about 1.4" }, wantErr: ErrBadPinSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base
			if tt.policy != nil {
				tt.policy(&p)
			}
			c, err := Choose(tt.m, tt.current, tt.explicit, p)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				var re *RefusedError
				if errors.As(err, &re) {
					assert.Equal(t, tt.waiting, re.Waiting)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, c.Release.Version)
			assert.Equal(t, "amd64", c.Artifact.Arch)
		})
	}
}

// FuzzVersionOrder checks that Choose never installs a version that is not
// strictly greater than the running one when no downgrade is allowed.
func FuzzVersionOrder(f *testing.F) {
	f.Add("1.4.1", "1.4.2")
	f.Add("1.5.0", "1.5.0-rc.1")
	f.Add("1.10.0", "1.9.9")
	f.Add("1.0.0+build", "1.0.0")
	f.Fuzz(func(t *testing.T, current, offered string) {
		m := offer(offered, "", rel(offered))
		for _, ch := range []string{manifest.ChannelStable, manifest.ChannelEarlybird} {
			c, err := Choose(m, current, "", Policy{Environment: "production", Channel: ch, OS: "linux", Arch: "amd64", MaxMajor: 1 << 30})
			if err != nil {
				continue
			}
			cur, _ := version.NewSemver(current)
			if !c.Version.GreaterThan(cur) {
				t.Fatalf("chose %s while running %s", c.Version, current)
			}
		}
	})
}

package update

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func oslo(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Oslo")
	require.NoError(t, err, "tzdata for Europe/Oslo is needed (Debian package tzdata)")
	return loc
}

func TestWindows_Next_AcrossDST(t *testing.T) {
	loc := oslo(t)
	w, err := ParseWindows(DefaultWindows, loc, DefaultWindowLength, 0)
	require.NoError(t, err)

	tests := []struct {
		name string
		from time.Time // any zone; Next must not depend on it
		want time.Time // UTC
	}{
		// 2026-03-29 (Sunday) 02:00 CET → 03:00 CEST.
		{"friday evening before spring change", time.Date(2026, 3, 27, 22, 5, 0, 0, loc), time.Date(2026, 3, 30, 3, 30, 0, 0, time.UTC)},
		{"friday morning before spring change is CET", time.Date(2026, 3, 27, 5, 0, 0, 0, loc), time.Date(2026, 3, 27, 4, 30, 0, 0, time.UTC)},
		{"from UTC instant in the skipped hour", time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC), time.Date(2026, 3, 30, 3, 30, 0, 0, time.UTC)},
		{"monday after spring change is CEST", time.Date(2026, 3, 30, 6, 0, 0, 0, loc), time.Date(2026, 3, 30, 17, 30, 0, 0, time.UTC)},
		// 2026-10-25 (Sunday) 03:00 CEST → 02:00 CET.
		{"friday before autumn change is CEST", time.Date(2026, 10, 23, 20, 0, 0, 0, loc), time.Date(2026, 10, 23, 19, 30, 0, 0, time.UTC)},
		{"weekend across autumn change", time.Date(2026, 10, 23, 22, 0, 0, 0, loc), time.Date(2026, 10, 26, 4, 30, 0, 0, time.UTC)},
		{"from the repeated hour", time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC), time.Date(2026, 10, 26, 4, 30, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := w.Next(tt.from)
			assert.True(t, got.Equal(tt.want), "got %s (%s), want %s", got.UTC(), got.In(loc), tt.want)
			assert.Equal(t, 30, got.In(loc).Minute())
		})
	}
}

func TestWindows_Open(t *testing.T) {
	loc := oslo(t)
	w, err := ParseWindows(DefaultWindows, loc, 30*time.Minute, 7*time.Minute)
	require.NoError(t, err)
	day := func(h, m int) time.Time { return time.Date(2026, 11, 23, h, m, 0, 0, loc) } // a Monday

	tests := []struct {
		name    string
		at      time.Time
		open    bool
		closing time.Time
	}{
		{"before window", day(5, 29), false, time.Time{}},
		{"window start, still in spread delay", day(5, 30), false, time.Time{}},
		{"after spread delay", day(5, 37), true, day(6, 0)},
		{"last second", day(5, 59).Add(59 * time.Second), true, day(6, 0)},
		{"closed", day(6, 0), false, time.Time{}},
		{"evening window", day(21, 45), true, day(22, 0)},
		{"saturday", time.Date(2026, 11, 28, 5, 45, 0, 0, loc), false, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			open, closing := w.Open(tt.at)
			assert.Equal(t, tt.open, open)
			assert.True(t, closing.Equal(tt.closing), "closes %s, want %s", closing, tt.closing)
		})
	}
	assert.True(t, w.Next(day(5, 31)).Equal(day(5, 37)), "inside the delay, the window opens at start+delay")
	assert.True(t, w.Next(day(5, 40)).Equal(day(5, 40)), "inside the window, now")
	assert.True(t, w.Next(day(6, 10)).Equal(day(19, 37)))
}

// A window in the hour that DST skips or repeats is neither lost nor doubled.
func TestWindows_NightlyWindowOnDSTDays(t *testing.T) {
	loc := oslo(t)
	w, err := ParseWindows("0 30 2 * * *", loc, 30*time.Minute, 0)
	require.NoError(t, err)

	// Spring: 02:30 does not exist on 2026-03-29. The window must still happen
	// that day (ISC cron behaviour: at the first instant after the gap).
	got := w.Next(time.Date(2026, 3, 29, 0, 0, 0, 0, loc))
	assert.Equal(t, 29, got.In(loc).Day(), "spring-forward window skipped: %s", got.In(loc))
	assert.True(t, got.Before(time.Date(2026, 3, 29, 4, 0, 0, 0, loc)), "window too late: %s", got.In(loc))

	// Autumn: 02:30 happens twice on 2026-10-25; one window, not two.
	first := w.Next(time.Date(2026, 10, 25, 0, 0, 0, 0, loc))
	second := w.Next(first.Add(w.length))
	assert.Equal(t, 25, first.In(loc).Day())
	assert.Equal(t, 26, second.In(loc).Day(), "window repeated in the autumn hour: %s then %s", first.UTC(), second.UTC())
}

func TestParseWindows_Errors(t *testing.T) {
	loc := oslo(t)
	for _, tt := range []struct {
		name, spec    string
		length, delay time.Duration
	}{
		{"five fields", "30 5 * * MON-FRI", time.Hour, 0},
		{"garbage", "every morning", time.Hour, 0},
		{"zero length", DefaultWindows, 0, 0},
		{"delay past window", DefaultWindows, 10 * time.Minute, 10 * time.Minute},
		{"never matches", "0 0 0 30 2 *", time.Hour, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseWindows(tt.spec, loc, tt.length, tt.delay)
			require.ErrorIs(t, err, ErrWindowSpec)
		})
	}
}

func TestSpreadDelay(t *testing.T) {
	a := SpreadDelay("installation-a", MaxSpreadDelay)
	assert.Equal(t, a, SpreadDelay("installation-a", MaxSpreadDelay), "stable across restarts")
	assert.Less(t, a, MaxSpreadDelay)
	seen := map[time.Duration]bool{}
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		seen[SpreadDelay(id, MaxSpreadDelay)] = true
	}
	assert.Greater(t, len(seen), 4, "delays should spread")
	assert.Zero(t, SpreadDelay("x", 0))
}

// FuzzParseWindows: any accepted expression yields a Next strictly later and
// Open agreeing with Next.
func FuzzParseWindows(f *testing.F) {
	for _, s := range []string{DefaultWindows, "0 0 * * * *", "0 30 2 * * *", "@daily", "0 */5 * * * ?", "x"} {
		f.Add(s)
	}
	loc, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		f.Fatal(err)
	}
	base := time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec string) {
		w, err := ParseWindows(spec, loc, 30*time.Minute, 5*time.Minute)
		if err != nil {
			return
		}
		n := w.Next(base)
		if n.IsZero() {
			return
		}
		if n.Before(base) {
			t.Fatalf("Next %s before %s", n, base)
		}
		if open, _ := w.Open(n); !open {
			t.Fatalf("window not open at its own Next %s", n)
		}
	})
}

// FuzzSettings: whatever the properties say, Settings either reports an
// error naming a key or leaves values New accepts for their own part.
func FuzzSettings(f *testing.F) {
	f.Add("auto", "stable", "1h", "0 30 5,19,21 * * MON-FRI", "2", "25")
	f.Add("notify", "earlybird", "90s", "x", "-1", "99999")
	f.Add("off", "", "0", "", "", "")
	f.Fuzz(func(t *testing.T, mode, channel, interval, windows, maxMajor, port string) {
		props := map[string]string{
			"efm.update.mode": mode, "efm.update.channel": channel, "efm.update.check-interval": interval,
			"efm.update.windows": windows, "efm.update.max-major": maxMajor, "spring.mail.port": port,
		}
		var cfg Config
		err := Settings(&cfg, func(k string) (string, bool) { v, ok := props[k]; return v, ok })
		if err != nil {
			return
		}
		switch cfg.Mode {
		case ModeAuto, ModeNotify, ModeOff:
		default:
			t.Fatalf("mode %q accepted", cfg.Mode)
		}
		if cfg.Channel != "stable" && cfg.Channel != "earlybird" {
			t.Fatalf("channel %q accepted", cfg.Channel)
		}
		if cfg.CheckInterval <= 0 || cfg.MaxMajor < 0 || cfg.Mail.Port < 0 || cfg.Mail.Port > 65535 {
			t.Fatalf("bad values accepted: %+v", cfg)
		}
	})
}

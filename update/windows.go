package update

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"
	// Windows machines have no zoneinfo database and a Linux one may lack
	// tzdata: the windows are read in Europe/Oslo whatever the host has.
	_ "time/tzdata"

	cron "github.com/netresearch/go-cron"
)

// Defaults of operations.md §4.4 step 1 and §4.5.
const (
	DefaultWindows      = "0 30 5,19,21 * * MON-FRI" // KOSMOS' schedulerCronExpression, Spring six-field syntax
	DefaultWindowLength = 30 * time.Minute
	DefaultTimezone     = "Europe/Oslo"
	// MaxSpreadDelay is the upper bound of the per-installation delay into a
	// window, so thousands of agencies do not restart in the same second.
	MaxSpreadDelay = 10 * time.Minute
)

// ErrWindowSpec is returned for a window expression or length that cannot work.
var ErrWindowSpec = errors.New("update window specification invalid")

// cronParser reads Spring's six-field cron (second minute hour dom month dow),
// the syntax of kosmos.schedulerCronExpression, so the KOSMOS key can be used
// as an alias unchanged.
var cronParser = cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Windows are the times an update may be applied: each cron activation opens
// a window of Length, entered Delay after its start.
type Windows struct {
	schedule cron.Schedule
	loc      *time.Location
	length   time.Duration
	delay    time.Duration
}

// ParseWindows parses a Spring cron expression evaluated in loc. delay is
// this installation's spread into each window and must be shorter than length.
func ParseWindows(spec string, loc *time.Location, length, delay time.Duration) (*Windows, error) {
	if loc == nil {
		return nil, fmt.Errorf("%w: no time zone", ErrWindowSpec)
	}
	if length <= 0 {
		return nil, fmt.Errorf("%w: window length %s must be positive", ErrWindowSpec, length)
	}
	if delay < 0 || delay >= length {
		return nil, fmt.Errorf("%w: spread delay %s must be within the window length %s", ErrWindowSpec, delay, length)
	}
	spec = strings.TrimSpace(spec)
	if !strings.HasPrefix(spec, "CRON_TZ=") && !strings.HasPrefix(spec, "TZ=") {
		spec = "CRON_TZ=" + loc.String() + " " + spec
	}
	s, err := cronParser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrWindowSpec, spec, err)
	}
	if s.Next(time.Now()).IsZero() {
		return nil, fmt.Errorf("%w: %q never matches", ErrWindowSpec, spec)
	}
	return &Windows{schedule: s, loc: loc, length: length, delay: delay}, nil
}

// SpreadDelay derives this installation's fixed delay into each window from
// a stable identifier (the installation id or data dir), so it stays the
// same across restarts without being stored.
func SpreadDelay(id string, max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	return time.Duration(h.Sum64() % uint64(max))
}

// Open reports whether t lies inside a window and, if so, when it closes.
func (w *Windows) Open(t time.Time) (bool, time.Time) {
	start := w.firstStartAfter(t.Add(-w.length))
	if start.IsZero() || t.Before(start.Add(w.delay)) {
		return false, time.Time{}
	}
	return true, start.Add(w.length)
}

// firstStartAfter returns the first window start strictly after t. It walks
// forward from well before t rather than asking Next(t) once, because a start
// moved by a DST gap (02:30 on the spring day becomes 03:30) is only found from
// a time before the gap; and it skips the second run of a wall-clock time that
// the autumn change repeats, so a window opens once, not twice.
func (w *Windows) firstStartAfter(t time.Time) time.Time {
	const dstSlack = 2 * time.Hour
	s := w.next(t.Add(-dstSlack))
	for i := 0; i < 100_000 && !s.IsZero() && !s.After(t); i++ {
		s = w.next(s)
	}
	return s
}

func (w *Windows) next(t time.Time) time.Time {
	s := w.schedule.Next(t)
	if !s.IsZero() && w.repeated(s) {
		s = w.schedule.Next(s)
	}
	return s
}

// repeated reports whether s is the second occurrence of its local wall-clock
// time (the hour the autumn change repeats).
func (w *Windows) repeated(s time.Time) bool {
	a, b := s.In(w.loc), s.Add(-time.Hour).In(w.loc)
	return a.Day() == b.Day() && a.Hour() == b.Hour() && a.Minute() == b.Minute() && a.Second() == b.Second()
}

// Next returns when the next window opens for this installation (start plus
// delay) at or after t. If t is inside a window, it returns t.
func (w *Windows) Next(t time.Time) time.Time {
	if ok, _ := w.Open(t); ok {
		return t
	}
	start := w.firstStartAfter(t.Add(-w.delay))
	if start.IsZero() {
		return time.Time{}
	}
	return start.Add(w.delay)
}

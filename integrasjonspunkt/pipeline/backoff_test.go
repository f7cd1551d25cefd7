package pipeline

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// polls runs pollDue every base for span from a message's age start and
// counts the polls, as the tracker's loop would.
func polls(start, span, base, maxInterval, threshold time.Duration) int {
	n := 0
	var last time.Duration = -1
	for age := start; age < start+span; age += base {
		var since time.Duration
		if last >= 0 {
			since = age - last
		}
		if pollDue(age, since, base, maxInterval, threshold) {
			n++
			last = age
		}
	}
	return n
}

// TestPollDue_Backoff runs the back-off of channels.md §1.6 with one-minute
// runs at three ages: just changed, half the threshold and past it. The
// interval grows linearly from 1 min to 60 min over 30 days.
func TestPollDue_Backoff(t *testing.T) {
	const base, maxInterval, threshold = time.Minute, time.Hour, 30 * 24 * time.Hour
	assert.Equal(t, 30, polls(time.Second, 30*time.Minute, base, maxInterval, threshold), "a fresh message is polled at every run")
	// Half way the interval is 1m + 59m/2 = 30.5 min, so every 31st run.
	assert.Equal(t, 20, polls(15*24*time.Hour, 10*time.Hour, base, maxInterval, threshold))
	assert.Equal(t, 10, polls(40*24*time.Hour, 10*time.Hour, base, maxInterval, threshold), "hourly past the threshold")
	assert.Equal(t, 600, polls(40*24*time.Hour, 10*time.Hour, base, base, threshold), "max equal to base: no back-off")
}

// TestPollDue_Edges: a message not polled yet in this run of the daemon,
// and one changed since it was last polled, is polled.
func TestPollDue_Edges(t *testing.T) {
	const day = 24 * time.Hour
	assert.True(t, pollDue(40*day, 0, time.Minute, time.Hour, 30*day), "never polled")
	assert.True(t, pollDue(10*time.Second, time.Minute, time.Minute, time.Hour, 30*day), "changed since the last poll")
	assert.False(t, pollDue(40*day, 30*time.Minute, time.Minute, time.Hour, 30*day), "old and polled half an hour ago")
	assert.True(t, pollDue(40*day, 59*time.Minute+40*time.Second, time.Minute, time.Hour, 30*day), "within half a run of the hour")
}

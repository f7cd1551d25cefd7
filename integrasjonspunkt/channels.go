package integrasjonspunkt

import (
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/api"
	"github.com/efm-go/efm/integrasjonspunkt/pipeline"
)

// channelFailuresDegraded is how many failed calls in a row make a channel
// DEGRADED: one failure is a blip the retry absorbs, three are an outage.
const channelFailuresDegraded = 3

// channelStates lists the pipeline's channels; none without a pipeline.
func channelStates(pl *pipeline.Pipeline) func() []pipeline.ChannelState {
	return func() []pipeline.ChannelState {
		if pl == nil {
			return nil
		}
		return pl.Channels()
	}
}

// channelHealth is the channel.<service> component (operations.md §2.2):
// never DOWN, since the daemon itself still works and retries, but DEGRADED
// when the service keeps failing or refuses our credentials.
func channelHealth(c pipeline.ChannelState) api.Component {
	d := map[string]any{"consecutiveFailures": c.ConsecutiveFailures}
	if !c.LastSuccess.IsZero() {
		d["lastSuccess"] = c.LastSuccess.UTC().Format(time.RFC3339)
	}
	if !c.LastFailure.IsZero() {
		d["lastFailure"] = c.LastFailure.UTC().Format(time.RFC3339)
		d["lastErrorKind"] = c.LastErrorKind
	}
	status := api.Up
	switch {
	case c.ConsecutiveFailures > 0 && c.LastErrorKind == pipeline.KindAuth:
		d["reason"] = "the service refuses our credentials or token"
		status = api.Degraded
	case c.ConsecutiveFailures >= channelFailuresDegraded:
		d["reason"] = "the last calls to the service failed"
		status = api.Degraded
	}
	return api.Component{Status: status, Details: d}
}

package api

import (
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/store"
)

// RetentionReport is the status page's retention section (operations.md
// §3.2): the policy, the last run of the daily job, and the unfinished
// conversations old enough that someone should look at them.
type RetentionReport struct {
	History, IncomingUnfetched, StaleAfter time.Duration
	Last                                   *store.RetentionRun // nil before the first run
	StaleCount                             int                 // unfinished and created before StaleAfter ago (capped)
	Stale                                  []store.Stale       // the oldest of them
}

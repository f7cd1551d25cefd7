// Package transport holds what every channel client shares: the error
// classification the pipeline branches on, and the few facts about an SBD a
// channel needs to route a message and to answer it (Header, status and
// receipt replies).
//
// One subpackage per channel speaks that channel's wire protocol (dpo, dpv,
// dpe, ...), each with its simulator beside it (dpo/dposim, ...). The
// subpackages and this one are leaves: they never import the core
// (integrasjonspunkt/...), and they take authentication through a small
// TokenSource interface of their own, so they do not depend on how tokens are
// obtained.
//
// # Retry classification (spec channels.md §1.3)
//
// The pipeline retries a failed send on the queue's backoff schedule
// (20s, 60s, 3m, 9m, 27m, then hourly; MaxDeliver 105) and marks the message
// FEIL at once when the failure is final. The clients report which is which:
//
//   - *StatusError with 5xx, 408, 425 or 429: retryable.
//   - *StatusError with any other 4xx: final (errors.Is(err, ErrRejected)).
//     This is the project rule of §1.3 for DPV (409 is handled inside the DPV
//     client as "already sent") and applied to DPO and DPE too: a broker that
//     refuses a request for its content will refuse it again in an hour.
//     401 and 403 are final only after the client has fetched a fresh token
//     (or SAS key) and tried once more, since a stale credential is the
//     common cause.
//   - Network errors, timeouts of a single call, truncated bodies: retryable.
//   - ErrMalformed on incoming data: the item is confirmed and discarded
//     (§2.4 step 5), never retried.
//
// Use Retryable(err) rather than inspecting errors by hand.
//
// # Idempotency
//
// A retried send must never produce a second delivery. Each channel documents
// how it guarantees this: DPO checkpoints the broker's fileTransferId before
// uploading and, on a retry, asks the broker where that transfer stands
// before uploading again; DPV sends the message id as idempotentKey and
// treats 409 as success; DPE sets the Service Bus MessageId so the queue's
// duplicate detection drops a repeated send.
package transport

// Package pipeline is the message pipeline worker: the part of the daemon that
// drives an outgoing message from the queue to its channel and follows it to
// the end, and that fetches what the channels hold for us (DESIGN.md, "the road
// a message takes"; spec channels.md §1).
//
// For each queue entry (a message id) the worker reads the message from the
// message core, checks its lifetime, resolves the receiver, packs the files
// (ASiC-E with a CAdES signature, CMS-encrypted to the receiver's certificate)
// when the channel wants a package, and sends over the channel. SENDT, FEIL and
// LEVETID_UTLOPT are recorded through message.Service.SetStatus; the core owns
// the store, the pipeline never writes it.
//
// Beside the worker run the pollers: each Inbox (DPO, DPE; for DPO the own
// system user's and each reportee's) is drained on its schedule and every
// delivery is decrypted, verified and handed to message.Service.Receive
// (status and receipt messages update our outgoing messages, others go to the
// incoming queue; a package that does not decrypt or verify is recorded as an
// incoming message that is FEIL and confirmed at the service); each Tracker
// (DPV) is asked for the statuses of messages it carries, less often the
// longer they stay unchanged (channels.md §1.6), and the first LEVERT of an
// arkivmelding puts a generated arkivmelding_kvittering on our incoming
// queue (§3.5); and the status replies the core owes other integration
// points (MOTTATT, LEVERT) are sent over their channel.
//
// # Idempotency and crashes
//
// The queue redelivers an entry whose handler did not finish, and the daemon
// re-enqueues every unfinished message at start. A send is therefore written
// to survive being run twice: the channel gets a durable checkpoint (a small
// file per message under <data>/pipeline, written before anything leaves the
// machine) and the previous attempt's checkpoint, from which it decides
// whether the earlier attempt already delivered (DPO: the broker transfer id;
// DPV and DPE carry the message id as the service's idempotency key). Once
// SENDT is recorded the core drops the message from the outgoing store and a
// late redelivery finds nothing to do.
//
// # Retries and dead letters (channels.md §1.3)
//
// A retryable failure (transport.Retryable) returns the entry to the queue
// after the next delay of the backoff schedule (20s, 60s, 3m, 9m, 27m, then
// hourly). After MaxAttempts the message goes to the "dead-letter queue": it
// becomes FEIL with the reference's text. A final failure (a 4xx other than the
// channel's own idempotency answers) is FEIL at once.
//
// The pipeline imports the core's message service, addressing, packaging and
// transport; nothing imports the pipeline but the daemon's Run.
package pipeline

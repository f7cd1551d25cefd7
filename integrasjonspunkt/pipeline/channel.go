package pipeline

import (
	"context"
	"io"
	"time"

	"github.com/efm-go/efm/addressing"
	"github.com/efm-go/efm/packaging/cms"
)

// Resolver is what the pipeline needs from addressing; *addressing.Resolver
// satisfies it.
type Resolver interface {
	ParseID(s string) (addressing.ID, error)
	ResolveMessage(ctx context.Context, req addressing.Request) (addressing.Route, error)
}

// Outgoing is one message handed to a channel.
type Outgoing struct {
	MessageID string
	// SBD is the message's SBD as JSON (local-api.md §11).
	SBD []byte
	// Route is the receiver's resolution; zero for status replies, which
	// answer the sender the message came from.
	Route addressing.Route
	// Files are the documents in container order (DPV sends them as they
	// are); empty for messages without files.
	Files []File
	// Package opens the encrypted package for channels that carry one
	// (Channel.Package true); nil when the message has no files. It returns
	// the same bytes each time it is called within one attempt.
	Package func() (io.ReadCloser, error)
	// Checkpoint is what an earlier attempt saved with Save; "" on the first.
	Checkpoint string
	// Save durably records a checkpoint before the channel lets anything
	// leave the machine; an error must stop the send.
	Save func(ctx context.Context, checkpoint string) error
}

// Channel sends messages over one service (DPO, DPV, DPE, ...). A transport
// client is wrapped in a few lines to become one (see dpo.go); the client
// itself knows nothing of the core.
type Channel interface {
	// Send delivers out and returns the service's reference for it. Send
	// must be idempotent across attempts of the same message: with the
	// earlier attempt's Checkpoint, or the message id as the service's
	// idempotency key, a retried send never delivers twice. Errors are
	// classified with transport.Retryable.
	Send(ctx context.Context, out Outgoing) (reference string, err error)
}

// Packaging says what a channel carries and how it is encrypted.
type Packaging struct {
	// Encrypt: the channel carries the CMS-encrypted ASiC-E (DPO, DPE);
	// false: the documents travel as they are (DPV).
	Encrypt      bool
	KeyTransport cms.KeyTransport
	// SizeLimit caps an incoming package (channels.md §1.5); 0: 1 GiB.
	SizeLimit int64
}

// Delivery is one message a channel holds for us.
type Delivery struct {
	// SBD is the message's SBD as JSON.
	SBD []byte
	// Package is the encrypted package; nil for status and receipt messages.
	Package io.Reader
}

// Inbox is a channel's incoming side (DPO, DPE): Fetch hands every waiting
// message to deliver, in order, and confirms (or deletes) each one for which
// deliver returns nil or an error wrapping transport.ErrMalformed. A delivery
// deliver fails otherwise stays at the service for the next run.
type Inbox interface {
	Fetch(ctx context.Context, deliver func(ctx context.Context, d Delivery) error) error
}

// BatchInbox is an Inbox that may hold the deliveries without a package
// (statuses and receipts, most of the traffic) and hand them to deliverAll
// a page at a time, which answers one error per delivery: the core then
// records a page of receipts in one transaction (issue 18). Each is
// confirmed or left as one handed to deliver would be; those with a package
// still go to deliver.
type BatchInbox interface {
	FetchBatched(ctx context.Context, deliver func(context.Context, Delivery) error,
		deliverAll func(context.Context, []Delivery) []error) error
}

// Status is a status a Tracker observed.
type Status struct {
	Status string // LEVERT, LEST, ANNET
	At     time.Time
	// Description explains an ANNET.
	Description string
}

// Tracker polls the statuses of messages a channel carries (DPV, §3.5).
type Tracker interface {
	// Track returns the statuses seen so far for reference, oldest first;
	// done says polling can stop (read, purged, deleted).
	Track(ctx context.Context, reference string) (statuses []Status, done bool, err error)
}

// Registration is one channel as the pipeline runs it.
type Registration struct {
	Channel   Channel // must not be nil
	Packaging Packaging
	Inbox     Inbox   // nil: the channel receives nothing
	Tracker   Tracker // nil: statuses come as messages (DPO, DPE)
	// Receipts is polled every ReceiptInterval (default PollInterval); nil
	// for channels without a receipt stream.
	Receipts        ReceiptSource
	ReceiptInterval time.Duration
	// PollInterval is the Inbox's and Tracker's schedule (§1.6); 0: 15 s.
	PollInterval time.Duration
	// InboxInterval is the Inbox's schedule when it differs from the
	// Tracker's (DPF: difi.move.fiks.pollingrate); 0: PollInterval.
	InboxInterval time.Duration
	// DeliveredOnSend records LEVERT right after SENDT: the service
	// guarantees delivery once it accepted the message (DPF, §5.1).
	DeliveredOnSend bool
	// ReceiptOn is the polled status that triggers the generated
	// arkivmelding_kvittering; "" means LEVERT (DPV), DPF uses LEST.
	ReceiptOn string
	// Checks are the round trips `integrasjonspunkt check` makes for the
	// channel, in order. A channel adds its own in one small function beside
	// its wiring (dpoChecks, dpvChecks, ...); none means the check says so.
	Checks []Probe
}

// Probe is one real round trip of `integrasjonspunkt check`: Part is what
// the operator knows the remote end as ("altinn broker"), Run reaches it
// with the configured credentials and changes nothing there.
type Probe struct {
	Part string
	Run  func(ctx context.Context) error
}

// Receipt is a status a channel's receipt stream reports about one of our
// messages, named by its conversation (DPI, channels.md §4.6).
type Receipt struct {
	ConversationID string
	Status         string // LEVERT, LEST, FEIL, ANNET
	At             time.Time
	Description    string
}

// ReceiptSource is a channel's stream of receipts (DPI): Receipts hands
// each waiting receipt to handle and marks it read at the service when
// handle returns nil; one handle fails stays for the next run.
type ReceiptSource interface {
	Receipts(ctx context.Context, handle func(ctx context.Context, r Receipt) error) error
}

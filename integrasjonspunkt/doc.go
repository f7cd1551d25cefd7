// Package integrasjonspunkt is the core of the daemon: configuration, the local
// API, the store, the queue, the message pipeline and its state machine,
// receipts, webhooks and the central event log shipper.
//
// It may import the leaf packages (addressing, packaging, transport, update)
// and never the other way round; cmd/integrasjonspunkt is its only importer
// outside the core.
//
// Glossary (one Go name per concept):
//
//	MessageID       the SBD instanceIdentifier, a UUID chosen by the client or by us
//	ConversationID  the SBD conversation scope identifier
//	ServiceID       channel: DPO, DPV, DPI, DPF, DPFIO, DPE, DPH
//	Status          a message status value, spelled as the contract spells it (LEVERT)
//	Store           the SQLite database, the source of truth
//	Queue           the embedded NATS JetStream work queue; it only says "work on X now"
package integrasjonspunkt

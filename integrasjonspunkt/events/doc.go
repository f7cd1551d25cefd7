// Package events is the daemon's side of the central package-tracking log
// (operations.md §5.3–5.4): the allow-list event schema, the builder that turns
// typed values into events, the keyed pseudonym for person receivers, the
// defence-in-depth scan for national identity numbers, and the shipper that
// drains the transactional outbox to pakkesporing over mutual TLS.
//
// The schema is a set of typed structs, never a map: a field that is not in a
// struct cannot be sent, and a person can only appear as the keyed pseudonym.
// The same structs are the central service's schema (pakkesporing decodes with
// Decode), so both sides agree on one definition per schema version.
//
// This package must not import the store, the pipeline or any channel: the
// store owns the outbox table and satisfies Outbox; the pipeline calls Builder.
package events

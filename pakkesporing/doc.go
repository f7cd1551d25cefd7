// Package pakkesporing is the central package-tracking log (operations.md
// §5.4): it ingests the de-identified events every integration point ships
// over mutual TLS, keeps them 24 months after each message is handled,
// answers the query API of central operations, serves their web page, and
// e-mails the alerts Digdir's central operations send today.
//
// It is embeddable: New gives a *Server whose Handler a sandbox mounts on its
// own listener and whose Run serves TLS and runs the daily jobs. The event
// schema is integrasjonspunkt/events', so both sides share one definition.
//
// It must not import the daemon's store, pipeline or channels.
package pakkesporing

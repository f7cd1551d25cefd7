// Package check is what `integrasjonspunkt config check` and
// `integrasjonspunkt check` do beyond parsing: open the files the
// configuration names, and make one real round trip per enabled part
// (Maskinporten, the Service Registry, KRR, each channel), each answered with
// OK or the failing step and the fix in one sentence (operations.md §1.2).
//
// It is part of the core and may import addressing, packaging and transport;
// nothing below the core imports it.
package check

package events

import "github.com/efm-go/efm/addressing/ident"

// looksLikePersonNumber is the scan's checksum test; it is addressing's, so
// the daemon, its tests and pakkesporing recognise the same numbers.
func looksLikePersonNumber(s string) bool { return ident.LooksLikePersonNumber(s) }

func validOrgNr(s string) bool { return ident.ValidOrgNumber(s) }

package ident

import "strings"

// MaskDigitRuns hides every run of eleven or more digits in free text (a
// title, a channel's error description), where a person number may sit
// untyped. It masks more than it must, without checking the control
// digits: pages and mails would rather lose an odd reference number than
// show a fødselsnummer. The length is kept.
func MaskDigitRuns(s string) string {
	var b strings.Builder
	run := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] >= '0' && s[i] <= '9' {
			run++
			continue
		}
		if run >= 11 {
			b.WriteString(strings.Repeat("*", run))
		} else {
			b.WriteString(s[i-run : i])
		}
		run = 0
		if i < len(s) {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

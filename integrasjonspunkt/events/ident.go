package events

// The identity checks below are the scan's and the schema's view of Norwegian
// identifiers. TODO(central-log): use addressing/ident once it is committed #7.

var (
	fnrWeights1 = [9]int{3, 7, 6, 1, 8, 9, 4, 5, 2}
	fnrWeights2 = [10]int{5, 4, 3, 2, 7, 6, 5, 4, 3, 2}
	orgWeights  = [8]int{3, 2, 7, 6, 5, 4, 3, 2}
)

// looksLikePersonNumber reports whether s is 11 digits whose two control
// digits pass the fødselsnummer/D-number mod-11 check. Dates are not checked:
// synthetic test numbers shift the month, and the scan must err towards a hit.
func looksLikePersonNumber(s string) bool {
	if len(s) != 11 {
		return false
	}
	var d [11]int
	for i := range 11 {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		d[i] = int(s[i] - '0')
	}
	sum := 0
	for i, w := range fnrWeights1 {
		sum += w * d[i]
	}
	k1 := (11 - sum%11) % 11
	if k1 == 10 || k1 != d[9] {
		return false
	}
	sum = 0
	for i, w := range fnrWeights2 {
		sum += w * d[i]
	}
	k2 := (11 - sum%11) % 11
	return k2 != 10 && k2 == d[10]
}

// validOrgNr reports whether s is a 9-digit organisation number with a valid
// mod-11 control digit.
func validOrgNr(s string) bool {
	if len(s) != 9 {
		return false
	}
	sum := 0
	for i := range 9 {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		if i < 8 {
			sum += orgWeights[i] * int(s[i]-'0')
		}
	}
	k := (11 - sum%11) % 11
	return k != 10 && k == int(s[8]-'0')
}

// Package fuzzedit keeps fuzz inputs small. A target whose valid inputs are
// kilobytes (a signed container, a keystore, an SBD) fuzzes one edit to one
// of a few valid inputs instead of the whole input.
//
// The reason is Go's fuzzer: every input that finds new coverage is
// minimised first, and minimising n bytes tries on the order of n² smaller
// inputs, up to -fuzzminimizetime (60 s by default). With multi-kilobyte
// inputs each find cost the full minute, and a 20 s run managed 6 to 18
// executions. An edit is a few bytes and an offset, which minimise at once,
// while the base keeps the fuzzer deep inside the parser: a corrupted valid
// container reaches the signature and digest checks, random bytes rarely
// pass the ZIP header.
package fuzzedit

// Apply builds one input. which 0 is no base: the input is insert alone, for
// short arbitrary inputs and crashers found that way. which n ≥ 1 takes
// bases[(n-1) mod len(bases)] and replaces cut bytes at offset at (both
// reduced to fit) with insert.
func Apply(bases [][]byte, which uint8, at uint32, cut uint16, insert []byte) []byte {
	if which == 0 || len(bases) == 0 {
		return insert
	}
	base := bases[int(which-1)%len(bases)]
	pos := int(at % uint32(len(base)+1))
	end := min(pos+int(cut), len(base))
	out := make([]byte, 0, len(base)-(end-pos)+len(insert))
	out = append(out, base[:pos]...)
	out = append(out, insert...)
	return append(out, base[end:]...)
}

package update

import (
	"testing"
	"time"
)

// BenchmarkWindowsNext is the loop's "when does the next window open".
func BenchmarkWindowsNext(b *testing.B) {
	w, err := ParseWindows(DefaultWindows, oslo(b), DefaultWindowLength, 7*time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	t := time.Date(2026, 10, 23, 22, 0, 0, 0, time.UTC) // a Friday night before the autumn change
	b.ReportAllocs()
	for b.Loop() {
		if w.Next(t).IsZero() {
			b.Fatal("no window")
		}
	}
}

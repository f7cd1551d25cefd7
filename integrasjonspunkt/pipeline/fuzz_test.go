package pipeline

import (
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzArkivTitles reads the client's arkivmelding.xml for DPV's texts. The
// file is the client's, so anything may be in it: the reader must not panic,
// must answer the same twice, and must not make text out of nothing.
func FuzzArkivTitles(f *testing.F) {
	f.Add(`<arkivmelding><mappe><registrering><tittel>T</tittel><offentligTittel>O</offentligTittel></registrering></mappe></arkivmelding>`)
	f.Add(`<arkivmelding><registrering><tittel>&amp;</tittel></registrering></arkivmelding>`)
	f.Add(`<arkivmelding><mappe>`)
	f.Add(``)
	f.Fuzz(func(t *testing.T, doc string) {
		files := []File{{Name: "arkivmelding.xml", Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(doc)), nil }}}
		title, public := arkivTitles(files)
		t2, p2 := arkivTitles(files)
		if title != t2 || public != p2 {
			t.Fatalf("not deterministic: %q %q vs %q %q", title, public, t2, p2)
		}
		if (title != "" || public != "") && !strings.Contains(doc, "registrering") {
			t.Fatalf("titles %q %q without a registrering", title, public)
		}
		if utf8.RuneCountInString(title)+utf8.RuneCountInString(public) > len(doc) {
			t.Fatalf("more text out than in")
		}
	})
}

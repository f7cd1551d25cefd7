package api

import (
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
)

func TestParseDisposition(t *testing.T) {
	tests := []struct {
		name, in       string
		title, fileOut string
	}{
		{"unquoted with spaces", "attachment; name=Vedtak om tilskudd; filename=vedtak.pdf", "Vedtak om tilskudd", "vedtak.pdf"},
		{"quoted with semicolon", `attachment; name="a; b"; filename="x.pdf"`, "a; b", "x.pdf"},
		{"escaped quote", `attachment; name="say \"hi\""; filename=x.pdf`, `say "hi"`, "x.pdf"},
		{"rfc5987 wins", `attachment; filename="soknad.pdf"; filename*=UTF-8''s%C3%B8knad.pdf`, "", "søknad.pdf"},
		{"rfc5987 before plain still wins", `attachment; filename*=UTF-8''s%C3%B8knad.pdf; filename=soknad.pdf`, "", "søknad.pdf"},
		{"latin-1", `attachment; name*=ISO-8859-1''s%F8knad; filename=a.pdf`, "søknad", "a.pdf"},
		{"bad ext value ignored", `attachment; filename*=UTF-8''%ZZ; filename=a.pdf`, "", "a.pdf"},
		{"path stripped", `attachment; filename="C:\\Users\\ola\\vedtak.pdf"`, "", "vedtak.pdf"},
		{"dot dot", `attachment; filename=..`, "", ""},
		{"case-insensitive keys", `Attachment; NAME=T; FileName=f.pdf`, "T", "f.pdf"},
		{"missing", ``, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := ParseDisposition(tt.in)
			assert.Equal(t, tt.title, d.Name)
			assert.Equal(t, tt.fileOut, d.Filename)
		})
	}
}

// FuzzParseDisposition: the parser never panics, never returns a file name
// that is a path, and gives back any UTF-8 name sent as RFC 5987 and any
// title sent unquoted (spaces included) unchanged.
func FuzzParseDisposition(f *testing.F) {
	f.Add("attachment; name=Vedtak om tilskudd; filename=vedtak.pdf", "søknad.pdf", "Vedtak om tilskudd")
	f.Add(`form-data; name="sbd"; filename="sbd.json"`, "a b.pdf", "x")
	f.Add(`attachment; filename*=UTF-8''%E2%82%AC.pdf`, "€.pdf", "€")
	f.Add(`attachment; name="unterminated; filename=x`, "../../etc/passwd", "a=b")
	f.Fuzz(func(t *testing.T, header, file, title string) {
		d := ParseDisposition(header)
		if strings.ContainsAny(d.Filename, `/\`) || d.Filename == ".." || d.Filename == "." {
			t.Fatalf("file name %q is a path", d.Filename)
		}
		if utf8.ValidString(file) && !strings.ContainsAny(file, `/\`) && file != "." && file != ".." && file != "" {
			h := "attachment; filename=\"x\"; filename*=UTF-8''" + url.PathEscape(file)
			if got := ParseDisposition(h).Filename; got != file {
				t.Fatalf("rfc 5987 round trip: %q became %q (header %q)", file, got, h)
			}
		}
		if ok := title != "" && utf8.ValidString(title) && !strings.ContainsAny(title, `;"`) &&
			strings.TrimSpace(title) == title && !strings.ContainsFunc(title, unicode.IsControl); ok {
			if got := ParseDisposition("attachment; name=" + title + "; filename=a.pdf").Name; got != title {
				t.Fatalf("unquoted title %q became %q", title, got)
			}
		}
	})
}

package message

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
)

// arkivmelding is what the daemon reads from a Noark 5 arkivmelding.xml:
// the journal entry's public title and number, the case file's system id,
// and the file names it references (local-api.md §5.2, §5.3).
type arkivmelding struct {
	Title        string
	CaseSystemID string
	JournalNo    string
	Files        []string
}

// Reference is <saksmappe systemID>-<journalpostnummer>, or "" without a
// journal number.
func (a *arkivmelding) Reference() string {
	if a.JournalNo == "" {
		return ""
	}
	return a.CaseSystemID + "-" + a.JournalNo
}

// parseArkivmelding walks the XML by element names only, so the schema's
// namespace versions and xsi:type spellings all read the same.
func parseArkivmelding(b []byte) (*arkivmelding, error) {
	dec := xml.NewDecoder(bytes.NewReader(b))
	var a arkivmelding
	var stack []string
	var text strings.Builder
	root := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) == 0 {
				if t.Name.Local != "arkivmelding" {
					return nil, errors.New("root element is not arkivmelding")
				}
				root = true
			}
			stack = append(stack, t.Name.Local)
			text.Reset()
		case xml.CharData:
			text.Write(t)
		case xml.EndElement:
			if len(stack) == 0 {
				return nil, errors.New("unbalanced elements")
			}
			name := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			parent := ""
			if len(stack) > 0 {
				parent = stack[len(stack)-1]
			}
			v := strings.TrimSpace(text.String())
			switch {
			case name == "offentligTittel" && parent == "registrering" && a.Title == "":
				a.Title = v
			case name == "journalpostnummer" && a.JournalNo == "":
				a.JournalNo = v
			case name == "systemID" && parent == "mappe" && a.CaseSystemID == "":
				a.CaseSystemID = v
			case name == "referanseDokumentfil" && v != "":
				a.Files = append(a.Files, v)
			}
			text.Reset()
		}
	}
	if !root {
		return nil, errors.New("no arkivmelding element")
	}
	return &a, nil
}

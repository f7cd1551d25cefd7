package api

import (
	"net/url"
	"path"
	"strings"
	"unicode/utf8"
)

// Disposition is a parsed Content-Disposition header.
type Disposition struct {
	Type     string // "attachment", "form-data", ... lower case; "" when absent
	Name     string // name or name*, the attachment title
	Filename string // filename or filename*
}

// ParseDisposition reads a Content-Disposition header leniently, as the
// reference does (local-api.md §5.2, D15): parameters split on ";" outside
// double quotes, values quoted or not and possibly holding spaces when not,
// and RFC 5987 name*= / filename*= in UTF-8 or ISO-8859-1 winning over the
// plain forms. mime.ParseMediaType rejects the unquoted-space form clients
// send, so it is not used.
func ParseDisposition(h string) Disposition {
	var d Disposition
	var extName, extFile string
	var haveExtName, haveExtFile bool
	for i, seg := range splitOutsideQuotes(h) {
		seg = strings.TrimSpace(seg)
		key, val, ok := strings.Cut(seg, "=")
		if !ok {
			if i == 0 {
				d.Type = strings.ToLower(seg)
			}
			continue
		}
		key = strings.ToLower(strings.TrimSpace(key))
		val = strings.TrimSpace(val)
		switch key {
		case "name":
			d.Name = unquote(val)
		case "filename":
			d.Filename = unquote(val)
		case "name*":
			if v, ok := decodeExt(val); ok {
				extName, haveExtName = v, true
			}
		case "filename*":
			if v, ok := decodeExt(val); ok {
				extFile, haveExtFile = v, true
			}
		}
	}
	if haveExtName {
		d.Name = extName
	}
	if haveExtFile {
		d.Filename = extFile
	}
	// A path in a file name would leak the client's directories into the
	// package and could climb out of it when unpacked.
	if d.Filename != "" {
		d.Filename = path.Base(strings.ReplaceAll(d.Filename, `\`, "/"))
		if d.Filename == "." || d.Filename == "/" || d.Filename == ".." {
			d.Filename = ""
		}
	}
	return d
}

func splitOutsideQuotes(s string) []string {
	var parts []string
	inQuote, escaped := false, false
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
		case c == '\\' && inQuote:
			escaped = true
		case c == '"':
			inQuote = !inQuote
		case c == ';' && !inQuote:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

func unquote(v string) string {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return v
	}
	v = v[1 : len(v)-1]
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// decodeExt decodes an RFC 5987 ext-value: charset'language'pct-encoded.
func decodeExt(v string) (string, bool) {
	v = unquote(v)
	charset, rest, ok := strings.Cut(v, "'")
	if !ok {
		return "", false
	}
	_, enc, ok := strings.Cut(rest, "'")
	if !ok {
		return "", false
	}
	raw, err := url.PathUnescape(enc)
	if err != nil {
		return "", false
	}
	switch strings.ToUpper(charset) {
	case "UTF-8", "":
		if !utf8.ValidString(raw) {
			return "", false
		}
		return raw, true
	case "ISO-8859-1":
		// Latin-1 bytes are the first 256 code points.
		rs := make([]rune, len(raw))
		for i := 0; i < len(raw); i++ {
			rs[i] = rune(raw[i])
		}
		return string(rs), true
	}
	return "", false
}

// mimeByExtension derives the MIME type from a file name when the client
// sent none or application/octet-stream (local-api.md §5.2).
func mimeByExtension(filename string) string {
	ext := strings.ToLower(strings.TrimPrefix(path.Ext(filename), "."))
	switch ext {
	case "pdf":
		return "application/pdf"
	case "html":
		return "text/html"
	case "txt":
		return "text/plain"
	case "xml":
		return "text/xml"
	case "doc":
		return "application/msword"
	case "docx":
		return "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	case "xls":
		return "application/vnd.ms-excel"
	case "xlsx":
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	case "xltx":
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.template"
	case "ppt":
		return "application/vnd.ms-powerpoint"
	case "pptx":
		return "application/vnd.openxmlformats-officedocument.presentationml.presentation"
	case "odf":
		return "application/vnd.oasis.opendocument.formula"
	case "odt":
		return "application/vnd.oasis.opendocument.text"
	case "fods":
		return "application/vnd.oasis.opendocument.spreadsheet"
	case "fodp":
		return "application/vnd.oasis.opendocument.presentation"
	case "fodg":
		return "application/vnd.oasis.opendocument.graphics"
	case "gif":
		return "image/gif"
	case "jpeg", "jpg":
		return "image/jpeg"
	case "png":
		return "image/png"
	case "zip":
		return "application/octet-stream"
	}
	return "application/pdf"
}

func effectiveMIME(contentType, filename string) string {
	ct := strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0])
	if ct == "" || strings.EqualFold(ct, "application/octet-stream") {
		return mimeByExtension(filename)
	}
	return ct
}

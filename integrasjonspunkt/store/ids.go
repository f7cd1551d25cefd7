package store

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// The message and conversation ids of the conversation table (migration
// 0008): on SQLite a canonical lowercase UUID, what nearly every id is, is
// kept as its 16 bytes instead of 36 characters of text, in the row and in
// the indexes on both. Any other id stays text, so every id reads back as
// written. PostgreSQL keeps them as text. Every encoding and decoding of
// them is here.

// idArg is v as the conversation table holds it: the argument of a
// comparison with message_id or conversation_id.
func idArg(pg bool, v string) any {
	if pg {
		return v
	}
	if b, ok := uuidBytes(v); ok {
		return b
	}
	return v
}

// IDValue is idArg for the store's backend: how a message or conversation
// id is written to the conversation table (storegen writes rows itself).
func (s *Store) IDValue(v string) any { return idArg(s.pg, v) }

// uuidBytes is v's 16 bytes when v is a UUID as formatUUID writes it.
func uuidBytes(v string) ([]byte, bool) {
	if len(v) != 36 || v[8] != '-' || v[13] != '-' || v[18] != '-' || v[23] != '-' {
		return nil, false
	}
	h := v[:8] + v[9:13] + v[14:18] + v[19:23] + v[24:]
	if strings.ToLower(h) != h {
		return nil, false // upper case would not read back as written
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, false
	}
	return b, true
}

func formatUUID(b []byte) string {
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// idText scans a message or conversation id of the conversation table.
type idText struct{ s *string }

func (d idText) Scan(src any) error {
	switch v := src.(type) {
	case []byte:
		if len(v) != 16 {
			return fmt.Errorf("an id of %d bytes", len(v))
		}
		*d.s = formatUUID(v)
	case string:
		*d.s = v
	case nil:
		*d.s = ""
	default:
		return fmt.Errorf("an id of type %T", src)
	}
	return nil
}

// uuidGlob matches what uuidBytes takes, in SQL.
var uuidGlob = func() string {
	x := func(n int) string { return strings.Repeat("[0-9a-f]", n) }
	return x(8) + "-" + x(4) + "-" + x(4) + "-" + x(4) + "-" + x(12)
}()

// idSQL is the SQL of text expression e as the conversation table holds
// it, for a comparison with a text column of another table.
func idSQL(pg bool, e string) string {
	if pg {
		return e
	}
	return "(CASE WHEN " + e + " GLOB '" + uuidGlob + "' THEN unhex(replace(" + e + ", '-', '')) ELSE " + e + " END)"
}

// eqID adds the condition that id column col is v, if v is set.
func (w *where) eqID(pg bool, col, v string) {
	if v != "" {
		w.add(col+" = ?", idArg(pg, v))
	}
}

// textSQL is the SQL of id column e as text, for a comparison with a text
// column of another table.
func textSQL(pg bool, e string) string {
	if pg {
		return e
	}
	h := "hex(" + e + ")"
	return "(CASE WHEN typeof(" + e + ") = 'blob' THEN lower(substr(" + h + ", 1, 8) || '-' || substr(" + h + ", 9, 4) || '-' || substr(" +
		h + ", 13, 4) || '-' || substr(" + h + ", 17, 4) || '-' || substr(" + h + ", 21)) ELSE " + e + " END)"
}

package message

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/integrasjonspunkt/payload"
	"github.com/efm-go/efm/integrasjonspunkt/queue"
	"github.com/efm-go/efm/integrasjonspunkt/store"
)

type core struct {
	*Service
	st  *store.Store
	got []StatusEvent
}

func (c *core) Notify(ev StatusEvent) { c.got = append(c.got, ev) }

func newCore(t *testing.T) *core {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Path: filepath.Join(dir, "store.db"), Logger: log})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	q, err := queue.Open(ctx, queue.Config{Dir: filepath.Join(dir, "js"), Logger: log})
	require.NoError(t, err)
	t.Cleanup(func() { q.Close() })
	ps, err := payload.Open(filepath.Join(dir, "payload"), filepath.Join(dir, "secrets", "payload.key"))
	require.NoError(t, err)
	key, err := events.LoadOrCreateKey(filepath.Join(dir, "secrets", "pseudonym.key"))
	require.NoError(t, err)
	b, err := events.NewBuilder(events.BuilderConfig{InstallationID: "0f6c9a3e-1d2b-4b8e-9f31-6a5d2c7e8b40", OrgNr: "910077473", Version: "1.0.0", Key: key})
	require.NoError(t, err)
	c := &core{st: st}
	s, err := New(Config{Store: st, Payloads: ps, Queue: q, Events: b, Registry: NoRegistry{}, Notifier: c, Logger: log,
		OrgNumber: "910077473", StatusQueueIncludes: []string{"DPV"}})
	require.NoError(t, err)
	c.Service = s
	return c
}

func (c *core) conversation(t *testing.T, id, service string) {
	require.NoError(t, c.st.Update(context.Background(), func(tx *store.Tx) error {
		return tx.InsertConversation(&store.Conversation{MessageID: id, ConversationID: "c-" + id, Direction: Outgoing,
			Sender: "0192:910077473", Receiver: "0192:910076787", ServiceIdentifier: service, Status: "", LastUpdate: time.Now()})
	}))
}

func (c *core) history(t *testing.T, id string) (*store.Conversation, []string) {
	conv, err := c.st.ConversationByMessageID(context.Background(), id, Outgoing)
	require.NoError(t, err)
	var sts []string
	for _, s := range conv.Statuses {
		sts = append(sts, s.Status)
	}
	return conv, sts
}

// TestSetStatus_StateMachine applies local-api.md §14.2 and §14.4 per channel.
func TestSetStatus_StateMachine(t *testing.T) {
	tests := []struct {
		name, service string
		report        []string
		want          []string
		finished      bool
		pollableAfter []bool // after each report
	}{
		{"DPO happy path", "DPO", []string{"OPPRETTET", "SENDT", "MOTTATT", "LEVERT", "LEST"},
			[]string{"OPPRETTET", "SENDT", "MOTTATT", "LEVERT", "LEST"}, true, []bool{false, false, false, false, false}},
		{"DPV polled until read", "DPV", []string{"OPPRETTET", "SENDT", "LEVERT", "LEST"},
			[]string{"OPPRETTET", "SENDT", "LEVERT", "LEST"}, true, []bool{false, true, true, false}},
		{"DPI delivery before receipt", "DPI", []string{"OPPRETTET", "SENDT", "LEVERT", "MOTTATT"},
			[]string{"OPPRETTET", "SENDT", "MOTTATT", "LEVERT"}, true, []bool{false, false, false, false}},
		{"repeats ignored", "DPO", []string{"OPPRETTET", "SENDT", "SENDT", "OPPRETTET"},
			[]string{"OPPRETTET", "SENDT"}, false, []bool{false, false, false, false}},
		{"late receipt after expiry", "DPF", []string{"OPPRETTET", "SENDT", "LEVETID_UTLOPT", "LEVERT"},
			[]string{"OPPRETTET", "SENDT", "LEVETID_UTLOPT", "LEVERT"}, true, []bool{false, true, false, false}},
		{"DPH stops polling at delivery", "DPH", []string{"OPPRETTET", "SENDT", "LEVERT"},
			[]string{"OPPRETTET", "SENDT", "LEVERT"}, true, []bool{false, true, false}},
	}
	c := newCore(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprint("m", i)
			c.conversation(t, id, tt.service)
			for j, st := range tt.report {
				require.NoError(t, c.SetStatus(context.Background(), Change{MessageID: id, Status: st}))
				conv, _ := c.history(t, id)
				assert.Equal(t, tt.pollableAfter[j], conv.Pollable, "pollable after %s", st)
			}
			conv, got := c.history(t, id)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.finished, conv.Finished)
		})
	}
	assert.ErrorIs(t, c.SetStatus(context.Background(), Change{MessageID: "nope", Status: "SENDT"}), ErrUnknownMessage)
}

// TestSetStatus_WritesEventAndQueue: every recorded status has its outbox
// row; a channel in statusQueueIncludes queues it; webhooks hear of it once.
func TestSetStatus_WritesEventAndQueue(t *testing.T) {
	c := newCore(t)
	ctx := context.Background()
	c.conversation(t, "v", "DPV")
	c.conversation(t, "o", "DPO")
	for _, id := range []string{"v", "o"} {
		require.NoError(t, c.SetStatus(ctx, Change{MessageID: id, Status: "OPPRETTET"}))
		require.NoError(t, c.SetStatus(ctx, Change{MessageID: id, Status: "FEIL", Description: "avvist"}))
		require.NoError(t, c.SetStatus(ctx, Change{MessageID: id, Status: "FEIL"}))
	}
	rows, err := c.st.Pending(ctx, 100, 1<<20)
	require.NoError(t, err)
	assert.Len(t, rows, 4, "one event per recorded status, none for the repeat")
	for _, r := range rows {
		ev, err := events.Decode(r.Body)
		require.NoError(t, err)
		if ms := ev.(*events.MessageStatus); ms.Status == events.Feil {
			assert.Equal(t, events.ReasonChannelRejected, ms.ReasonCode)
		}
	}
	st, err := c.st.PeekStatusQueue(ctx)
	require.NoError(t, err)
	assert.Equal(t, "v", st.MessageID)
	require.NoError(t, c.st.DeleteFromStatusQueue(ctx, st.ID))
	st, err = c.st.PeekStatusQueue(ctx)
	require.NoError(t, err)
	assert.Equal(t, "FEIL", st.Status)
	assert.Equal(t, "v", st.MessageID, "DPO is not in statusQueueIncludes")
	assert.Len(t, c.got, 4)
	assert.Equal(t, "avvist", c.got[1].Description)
}

func TestParseArkivmelding(t *testing.T) {
	am, err := parseArkivmelding(amXML("Tilskudd til leirskole", "2024/118", "7", "vedtak.pdf", "bilag 1.pdf"))
	require.NoError(t, err)
	assert.Equal(t, "Tilskudd til leirskole", am.Title)
	assert.Equal(t, "2024/118-7", am.Reference())
	assert.Equal(t, []string{"vedtak.pdf", "bilag 1.pdf"}, am.Files)
	for _, bad := range []string{"", "<arkivmelding><mappe>", "<annet/>", "not xml"} {
		_, err := parseArkivmelding([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}

func amXML(title, caseID, journalNo string, files ...string) []byte {
	esc := func(s string) string {
		var b bytes.Buffer
		xml.EscapeText(&b, []byte(s))
		return b.String()
	}
	var refs strings.Builder
	for _, f := range files {
		fmt.Fprintf(&refs, "<dokumentbeskrivelse><dokumentobjekt><referanseDokumentfil>%s</referanseDokumentfil></dokumentobjekt></dokumentbeskrivelse>", esc(f))
	}
	return fmt.Appendf(nil, `<?xml version="1.0"?><arkivmelding xmlns="http://www.arkivverket.no/standarder/noark5/arkivmelding" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><mappe xsi:type="saksmappe"><systemID>%s</systemID><registrering xsi:type="journalpost"><offentligTittel>%s</offentligTittel>%s<journalpostnummer>%s</journalpostnummer></registrering></mappe></arkivmelding>`,
		esc(caseID), esc(title), refs.String(), esc(journalNo))
}

// FuzzParseArkivmelding: arbitrary bytes never panic, and what the daemon
// reads back from a well-formed arkivmelding is what was written into it.
func FuzzParseArkivmelding(f *testing.F) {
	f.Add([]byte("<arkivmelding/>"), "Tittel", "2024/1", "7", "a.pdf")
	f.Add([]byte("<arkivmelding><mappe><systemID>x</systemID>"), "Æ & <ø>", "", "", "")
	f.Add([]byte("\xef\xbb\xbf<arkivmelding><registrering><offentligTittel>t</offentligTittel></registrering></arkivmelding>"), "", "1", "", "b c.pdf")
	f.Fuzz(func(t *testing.T, raw []byte, title, caseID, journalNo, file string) {
		parseArkivmelding(raw)
		valid := func(s string) bool {
			return strings.TrimSpace(s) == s && !strings.ContainsFunc(s, func(r rune) bool {
				return r == 0xFFFD || (r < 0x20 && r != '\t') || r == '\r' || r == '\n' || (r >= 0xD800 && r <= 0xDFFF) || r > 0x10FFFF || r == 0xFFFE || r == 0xFFFF
			})
		}
		if !valid(title) || !valid(caseID) || !valid(journalNo) || !valid(file) {
			return
		}
		var files []string
		if file != "" {
			files = []string{file}
		}
		am, err := parseArkivmelding(amXML(title, caseID, journalNo, files...))
		if err != nil {
			t.Fatalf("well-formed arkivmelding refused: %v", err)
		}
		if am.Title != title || am.CaseSystemID != caseID || am.JournalNo != journalNo {
			t.Fatalf("read %q %q %q, wrote %q %q %q", am.Title, am.CaseSystemID, am.JournalNo, title, caseID, journalNo)
		}
		if len(am.Files) != len(files) || (len(files) == 1 && am.Files[0] != file) {
			t.Fatalf("files %q, wrote %q", am.Files, files)
		}
	})
}

// TestSetStatus_ReceiptsOutOfOrder: receipts travel separately and arrive
// in any order, but a history reads in the state machine's order, by id
// and by time (local-api.md §14.2; issue 14, point 8).
func TestSetStatus_ReceiptsOutOfOrder(t *testing.T) {
	tests := []struct {
		name, service string
		report        []string
		want          []string
	}{
		{"DPO delivery before receipt", "DPO", []string{"OPPRETTET", "SENDT", "LEVERT", "LEST", "MOTTATT"},
			[]string{"OPPRETTET", "SENDT", "MOTTATT", "LEVERT", "LEST"}},
		{"DPO read before delivered", "DPO", []string{"OPPRETTET", "SENDT", "LEST", "MOTTATT", "LEVERT"},
			[]string{"OPPRETTET", "SENDT", "MOTTATT", "LEVERT", "LEST"}},
		{"DPO receipt before the send is recorded", "DPO", []string{"OPPRETTET", "MOTTATT", "SENDT", "LEVERT"},
			[]string{"OPPRETTET", "SENDT", "MOTTATT", "LEVERT"}},
		{"DPE delivery before receipt", "DPE", []string{"OPPRETTET", "SENDT", "LEVERT", "MOTTATT"},
			[]string{"OPPRETTET", "SENDT", "MOTTATT", "LEVERT"}},
		{"DPV read before published", "DPV", []string{"OPPRETTET", "SENDT", "LEST", "LEVERT"},
			[]string{"OPPRETTET", "SENDT", "LEVERT", "LEST"}},
		{"DPO failure stays where it happened", "DPO", []string{"OPPRETTET", "SENDT", "FEIL", "MOTTATT"},
			[]string{"OPPRETTET", "SENDT", "FEIL", "MOTTATT"}},
	}
	c := newCore(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprint("o", i)
			c.conversation(t, id, tt.service)
			for _, st := range tt.report {
				require.NoError(t, c.SetStatus(context.Background(), Change{MessageID: id, Status: st}))
			}
			conv, got := c.history(t, id)
			assert.Equal(t, tt.want, got)
			for j := 1; j < len(conv.Statuses); j++ {
				assert.Greater(t, conv.Statuses[j].ID, conv.Statuses[j-1].ID)
			}
		})
	}
	t.Run("a channel time before the last status", func(t *testing.T) {
		c.conversation(t, "early", "DPV")
		now := time.Now()
		require.NoError(t, c.SetStatus(context.Background(), Change{MessageID: "early", Status: "OPPRETTET", At: now}))
		require.NoError(t, c.SetStatus(context.Background(), Change{MessageID: "early", Status: "SENDT", At: now.Add(time.Second)}))
		require.NoError(t, c.SetStatus(context.Background(), Change{MessageID: "early", Status: "LEVERT", At: now.Add(500 * time.Millisecond)}))
		conv, got := c.history(t, "early")
		assert.Equal(t, []string{"OPPRETTET", "SENDT", "LEVERT"}, got)
		assert.False(t, conv.Statuses[2].LastUpdate.Before(conv.Statuses[1].LastUpdate))
	})
}

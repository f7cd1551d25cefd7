package failmail_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt/config"
	"github.com/efm-go/efm/integrasjonspunkt/failmail"
	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/internal/apitest"
)

var t0 = time.Now().UTC().Truncate(time.Second)

const citizen = "05050910077"

type fixture struct {
	st  *store.Store
	cfg failmail.Config
	at  time.Time
}

func newFixture(t *testing.T, sink *apitest.SMTPSink) *fixture {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(context.Background(), store.Config{Path: filepath.Join(dir, "store.db"), Logger: log})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	c, _, err := config.Load(config.Source{DataDir: dir, Overrides: map[string]string{
		"difi.move.org.number": "910077473", "difi.move.org.keystore.path": "k.p12", "difi.move.org.keystore.alias": "a",
		"difi.move.org.keystore.password": "p",
		"difi.move.mail.smtpHost":         "127.0.0.1", "difi.move.mail.smtpPort": strconv.Itoa(sink.Port),
		"difi.move.mail.receiverAddress": "arkiv@agency.example, drift@agency.example",
		"difi.move.mail.senderAddress":   "integrasjonspunkt@agency.example",
	}})
	require.NoError(t, err)
	cfg, ok := failmail.FromConfig(c, st, log)
	require.True(t, ok)
	f := &fixture{st: st, cfg: cfg, at: t0}
	f.cfg.Now = func() time.Time { return f.at }
	return f
}

// record stores a conversation with the statuses given, as the message
// service would have.
func (f *fixture) record(t *testing.T, id, direction, receiver, title string, statuses ...[2]string) {
	t.Helper()
	require.NoError(t, f.st.Update(context.Background(), func(tx *store.Tx) error {
		c := &store.Conversation{MessageID: id, ConversationID: "conv-" + id, Direction: direction, Sender: "910077473",
			SenderIdentifier: "910077473", Receiver: receiver, ReceiverIdentifier: receiver, ServiceIdentifier: "DPV",
			MessageTitle: title, Status: statuses[len(statuses)-1][0], LastUpdate: f.at}
		if err := tx.InsertConversation(c); err != nil {
			return err
		}
		for _, s := range statuses {
			f.at = f.at.Add(time.Second)
			if err := tx.InsertStatus(&store.Status{ConvID: c.ID, MessageID: id, ConversationID: c.ConversationID,
				Status: s[0], Description: s[1], LastUpdate: f.at}); err != nil {
				return err
			}
		}
		return nil
	}))
}

func TestFlush_BatchesFailuresWithoutPersonalData(t *testing.T) {
	sink := apitest.NewSMTPSink(t)
	f := newFixture(t, sink)
	m := failmail.New(f.cfg)
	ctx := context.Background()

	// History before the first flush is not mailed.
	f.record(t, "old-1", "OUTGOING", "910075918", "old", [2]string{"OPPRETTET", ""}, [2]string{"FEIL", "old failure"})
	n, err := m.Flush(ctx)
	require.NoError(t, err)
	assert.Zero(t, n)
	sink.None(t)

	f.record(t, "ok-1", "OUTGOING", "910075918", "fine", [2]string{"OPPRETTET", ""}, [2]string{"LEVERT", ""})
	f.record(t, "feil-1", "OUTGOING", citizen, "Vedtak for "+citizen,
		[2]string{"OPPRETTET", ""}, [2]string{"FEIL", "mottaker " + citizen + " er reservert (403)"})
	f.record(t, "ttl-1", "OUTGOING", "910075918", "Svar", [2]string{"OPPRETTET", ""}, [2]string{"SENDT", ""}, [2]string{"LEVETID_UTLOPT", ""})
	f.record(t, "in-1", "INCOMING", "910077473", "inn", [2]string{"INNKOMMENDE_MOTTATT", ""}, [2]string{"FEIL", "incoming, not ours to mail"})

	n, err = m.Flush(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n, "one mail for both failures")
	mail := sink.Next(t)
	sink.None(t)
	assert.Contains(t, mail, "To: arkiv@agency.example, drift@agency.example")
	assert.Contains(t, mail, "Subject: eFormidling: 2 message(s) failed at 910077473")
	assert.Contains(t, mail, "FEIL            message feil-1  conversation conv-feil-1")
	assert.Contains(t, mail, "reason: mottaker *********** er reservert (403)")
	assert.Contains(t, mail, "LEVETID_UTLOPT  message ttl-1")
	assert.Contains(t, mail, "lifetime ran out")
	assert.NotContains(t, mail, citizen, "no person number in the mail")
	assert.NotContains(t, mail, "Vedtak", "no title: it may name a person")
	assert.NotContains(t, mail, "ok-1")
	assert.NotContains(t, mail, "in-1")
	assert.NotContains(t, mail, "old-1")

	// Nothing new: no mail.
	n, err = m.Flush(ctx)
	require.NoError(t, err)
	assert.Zero(t, n)
	sink.None(t)
}

// A relay that refuses the mail gets it again at the next flush, and a
// restart (a new Mailer on the same cursor) neither repeats nor loses one.
func TestFlush_RetriesAndSurvivesRestart(t *testing.T) {
	sink := apitest.NewSMTPSink(t)
	f := newFixture(t, sink)
	ctx := context.Background()
	_, err := failmail.New(f.cfg).Flush(ctx)
	require.NoError(t, err)

	f.record(t, "feil-1", "OUTGOING", "910075918", "x", [2]string{"OPPRETTET", ""}, [2]string{"FEIL", "broker said 500"})
	sink.RejectNext(1)
	_, err = failmail.New(f.cfg).Flush(ctx)
	require.Error(t, err)
	sink.None(t)

	n, err := failmail.New(f.cfg).Flush(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Contains(t, sink.Next(t), "message feil-1")

	f.record(t, "feil-2", "OUTGOING", "910075918", "y", [2]string{"OPPRETTET", ""}, [2]string{"FEIL", "again"})
	n, err = failmail.New(f.cfg).Flush(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	mail := sink.Next(t)
	assert.Contains(t, mail, "message feil-2")
	assert.NotContains(t, mail, "message feil-1", "a mailed failure is not mailed again")
}

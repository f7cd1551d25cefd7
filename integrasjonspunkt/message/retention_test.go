package message

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt/sbd"
	"github.com/efm-go/efm/integrasjonspunkt/store"
)

// clock is the test's time, moved by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time           { return c.t }
func (c *clock) add(d time.Duration)      { c.t = c.t.Add(d) }
func (c *clock) days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

// outgoingWithFile puts a queued message with one payload file and one
// inline attachment into the outgoing store, as accepting it does.
func (c *core) outgoingWithFile(t *testing.T, id, service string) string {
	t.Helper()
	w, err := c.cfg.Payloads.Create()
	require.NoError(t, err)
	_, err = w.Write(bytes.Repeat([]byte("x"), 10<<10))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	now := c.cfg.Now()
	require.NoError(t, c.st.Update(context.Background(), func(tx *store.Tx) error {
		if err := tx.InsertOutgoing(&store.Outgoing{MessageID: id, ConversationID: "c-" + id, ProcessIdentifier: "p",
			ServiceIdentifier: service, DocumentType: "arkivmelding", SBD: []byte(`{}`), State: store.StateQueued,
			Expiry: now.Add(time.Hour), LastUpdated: now}); err != nil {
			return err
		}
		if err := tx.InsertAttachment(&store.Attachment{MessageID: id, Filename: "big.pdf", MimeType: "application/pdf", File: w.Name()}); err != nil {
			return err
		}
		return tx.InsertAttachment(&store.Attachment{MessageID: id, Filename: "small.xml", MimeType: "application/xml", Data: []byte("sealed")})
	}))
	c.conversation(t, id, service)
	return w.Name()
}

func (c *core) fileExists(name string) bool {
	r, err := c.cfg.Payloads.Open(name)
	if err == nil {
		r.Close()
	}
	return err == nil
}

func incomingDoc(t *testing.T) *sbd.Document {
	t.Helper()
	id := fmt.Sprintf("%08x-0000-4000-8000-%012x", time.Now().UnixNano()&0xffffffff, time.Now().UnixNano())
	doc, err := sbd.Decode(fmt.Appendf(nil, `{"standardBusinessDocumentHeader": {"headerVersion": "1.0",
		"sender": [{"identifier": {"authority": "iso6523-actorid-upis", "value": "0192:910075918"}}],
		"receiver": [{"identifier": {"authority": "iso6523-actorid-upis", "value": "0192:910077473"}}],
		"documentIdentification": {"standard": "urn:no:difi:arkivmelding:xsd::arkivmelding", "typeVersion": "2.0",
			"instanceIdentifier": %q, "type": "arkivmelding", "creationDateAndTime": "2020-01-01T00:00:00+01:00"},
		"businessScope": {"scope": [{"type": "ConversationId", "identifier": "urn:no:difi:profile:arkivmelding:administrasjon:ver1.0",
			"instanceIdentifier": "0f6c9a3e-1d2b-4b8e-9f31-6a5d2c7e8b41"}]}},
		"arkivmelding": {"hoveddokument": "a.pdf"}}`, id))
	require.NoError(t, err)
	return doc
}

// TestPrune_Policy walks each rule of operations.md §3.2 through an
// injected clock: what goes when, and what never goes by itself.
func TestPrune_Policy(t *testing.T) {
	c := newCore(t)
	clk := &clock{t: time.Now()}
	c.cfg.Now = clk.now
	ctx := context.Background()
	policy := Retention{History: clk.days(730), IncomingUnfetched: clk.days(90), Events: clk.days(30)}

	// Outgoing: the payload goes when the channel took the message.
	sentFile := c.outgoingWithFile(t, "sent", "DPO")
	require.NoError(t, c.SetStatus(ctx, Change{MessageID: "sent", Status: "SENDT"}))
	assert.False(t, c.fileExists(sentFile), "payload file removed at SENDT")
	atts, err := c.st.Attachments(ctx, "sent")
	require.NoError(t, err)
	assert.Empty(t, atts, "inline attachment gone with the outgoing row")
	require.NoError(t, c.SetStatus(ctx, Change{MessageID: "sent", Status: "LEVERT"}))

	// Kept for a trial: the payload outlives SENDT by efm.retention.outgoing-payload.
	c.cfg.KeepPayload = 48 * time.Hour
	keptFile := c.outgoingWithFile(t, "kept", "DPO")
	require.NoError(t, c.SetStatus(ctx, Change{MessageID: "kept", Status: "SENDT"}))
	c.cfg.KeepPayload = 0
	require.NoError(t, c.SetStatus(ctx, Change{MessageID: "kept", Status: "LEVERT"}))
	_, err = c.st.GetOutgoing(ctx, "kept")
	assert.ErrorIs(t, err, store.ErrNotFound, "the outgoing store answers as without the key")
	assert.True(t, c.fileExists(keptFile))

	// Incoming: the client's delete (E12) after pop removes the package at once.
	fetched := incomingDoc(t)
	require.NoError(t, c.Receive(ctx, Received{Document: fetched, Service: "DPO", Package: bytes.NewReader([]byte("asic"))}))
	in, err := c.st.GetIncoming(ctx, fetched.MessageID())
	require.NoError(t, err)
	fetchedPkg := in.Package
	_, ok, err := c.Peek(ctx, store.MessageFilter{MessageID: fetched.MessageID()})
	require.NoError(t, err)
	require.True(t, ok)
	_, err = c.Acknowledge(ctx, fetched.MessageID())
	require.NoError(t, err)
	assert.False(t, c.fileExists(fetchedPkg), "package removed when the client deleted the message")

	unfetched := incomingDoc(t)
	require.NoError(t, c.Receive(ctx, Received{Document: unfetched, Service: "DPO", Package: bytes.NewReader([]byte("asic"))}))
	in, err = c.st.GetIncoming(ctx, unfetched.MessageID())
	require.NoError(t, err)
	unfetchedPkg := in.Package

	// A stray file: written, its record never committed (a crash).
	w, err := c.cfg.Payloads.Create()
	require.NoError(t, err)
	require.NoError(t, w.Close())
	stray := w.Name()

	// Unfinished and old: never purged.
	c.conversation(t, "stuck", "DPO")
	require.NoError(t, c.SetStatus(ctx, Change{MessageID: "stuck", Status: "OPPRETTET"}))

	p, err := c.Prune(ctx, policy)
	require.NoError(t, err)
	assert.Equal(t, Pruned{Events: 0}, p, "nothing is due yet")
	assert.True(t, c.fileExists(stray), "a file younger than the grace may be an upload in progress")

	clk.add(49 * time.Hour)
	p, err = c.Prune(ctx, policy)
	require.NoError(t, err)
	assert.Equal(t, 1, p.Payloads)
	assert.Equal(t, 1, p.Files, "the stray file")
	assert.False(t, c.fileExists(keptFile))
	assert.False(t, c.fileExists(stray))
	assert.True(t, c.fileExists(unfetchedPkg))
	assert.Zero(t, p.Events, "the outbox keeps 30 days when nothing ships it")

	clk.add(clk.days(89))
	p, err = c.Prune(ctx, policy)
	require.NoError(t, err)
	assert.Equal(t, 1, p.Incoming, "unfetched past 90 days")
	assert.False(t, c.fileExists(unfetchedPkg))
	_, err = c.st.GetIncoming(ctx, unfetched.MessageID())
	assert.ErrorIs(t, err, store.ErrNotFound)
	conv, err := c.st.ConversationByMessageID(ctx, unfetched.MessageID(), Incoming)
	require.NoError(t, err)
	assert.Equal(t, "LEVETID_UTLOPT", conv.Status)
	assert.True(t, conv.Finished)
	assert.Positive(t, p.Events, "events older than 30 days")

	clk.add(clk.days(730 - 90))
	p, err = c.Prune(ctx, policy)
	require.NoError(t, err)
	assert.Equal(t, 3, p.Conversations, "sent, kept and fetched finished 24 months ago")
	assert.Equal(t, 3+3+3, p.Statuses, "OPPRETTET, SENDT, LEVERT; OPPRETTET, INNKOMMENDE_MOTTATT, INNKOMMENDE_LEVERT")
	_, err = c.st.ConversationByMessageID(ctx, unfetched.MessageID(), Incoming)
	assert.NoError(t, err, "the unfetched one finished at day 91: not 24 months ago yet")
	clk.add(clk.days(91))
	p, err = c.Prune(ctx, policy)
	require.NoError(t, err)
	assert.Equal(t, 1, p.Conversations)
	for _, id := range []string{"sent", "kept"} {
		_, err := c.st.ConversationByMessageID(ctx, id, Outgoing)
		assert.ErrorIs(t, err, store.ErrNotFound, id)
	}
	_, err = c.st.ConversationByMessageID(ctx, "stuck", Outgoing)
	assert.NoError(t, err, "an unfinished conversation is never purged")
	n, _, err := c.st.StaleUnfinished(ctx, clk.now().Add(-clk.days(90)), 100, 10)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "reported instead")
}

// TestPrune_ZeroKeepsForEver: a zero duration turns a rule off.
func TestPrune_ZeroKeepsForEver(t *testing.T) {
	c := newCore(t)
	clk := &clock{t: time.Now()}
	c.cfg.Now = clk.now
	ctx := context.Background()
	doc := incomingDoc(t)
	require.NoError(t, c.Receive(ctx, Received{Document: doc, Service: "DPO", Package: bytes.NewReader([]byte("asic"))}))
	c.conversation(t, "done", "DPO")
	require.NoError(t, c.SetStatus(ctx, Change{MessageID: "done", Status: "LEVERT"}))
	clk.add(clk.days(3650))
	p, err := c.Prune(ctx, Retention{})
	require.NoError(t, err)
	assert.Equal(t, Pruned{}, p)
	_, err = c.st.GetIncoming(ctx, doc.MessageID())
	assert.NoError(t, err)
}

// TestPayload_GoneAtTheLatestWithTheFinalStatus: a channel whose receipt
// may overtake SENDT (DPH) still leaves no payload behind once final.
func TestPayload_GoneAtTheLatestWithTheFinalStatus(t *testing.T) {
	c := newCore(t)
	ctx := context.Background()
	file := c.outgoingWithFile(t, "dph", "DPH")
	require.NoError(t, c.SetStatus(ctx, Change{MessageID: "dph", Status: "MOTTATT"}))
	assert.True(t, c.fileExists(file), "not final yet: a retry may still need it")
	require.NoError(t, c.SetStatus(ctx, Change{MessageID: "dph", Status: "LEVERT"}))
	assert.False(t, c.fileExists(file))
	_, err := c.st.GetOutgoing(ctx, "dph")
	assert.ErrorIs(t, err, store.ErrNotFound)
}

// TestPrune_OutgoingWithoutConversation: a message whose conversation the
// client deleted (E15) is never sent or expired by anyone; retention
// removes it and its files once its expiry has passed.
func TestPrune_OutgoingWithoutConversation(t *testing.T) {
	c := newCore(t)
	clk := &clock{t: time.Now()}
	c.cfg.Now = clk.now
	ctx := context.Background()
	file := c.outgoingWithFile(t, "orphan", "DPO")
	conv, err := c.st.ConversationByMessageID(ctx, "orphan", Outgoing)
	require.NoError(t, err)
	require.NoError(t, c.st.DeleteConversation(ctx, conv.ID))
	p, err := c.Prune(ctx, Retention{})
	require.NoError(t, err)
	assert.Zero(t, p.Payloads, "before its expiry")
	clk.add(2 * time.Hour)
	p, err = c.Prune(ctx, Retention{})
	require.NoError(t, err)
	assert.Equal(t, 1, p.Payloads)
	assert.False(t, c.fileExists(file))
	_, err = c.st.GetOutgoing(ctx, "orphan")
	assert.ErrorIs(t, err, store.ErrNotFound)
}

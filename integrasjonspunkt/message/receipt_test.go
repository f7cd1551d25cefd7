package message

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt/sbd"
	"github.com/efm-go/efm/integrasjonspunkt/store"
)

// receiptDoc is a status message or an archive receipt from the receiver,
// answering outgoing message id.
func receiptDoc(t *testing.T, typ, id, business string) *sbd.Document {
	t.Helper()
	standard := map[string]string{"status": "urn:no:difi:eformidling:xsd::status",
		"arkivmelding_kvittering": "urn:no:difi:arkivmelding:xsd::arkivmelding_kvittering"}[typ]
	doc, err := sbd.Decode(fmt.Appendf(nil, `{"standardBusinessDocumentHeader": {"headerVersion": "1.0",
		"sender": [{"identifier": {"authority": "iso6523-actorid-upis", "value": "0192:910076787"}}],
		"receiver": [{"identifier": {"authority": "iso6523-actorid-upis", "value": "0192:910077473"}}],
		"documentIdentification": {"standard": %q, "typeVersion": "2.0",
			"instanceIdentifier": %q, "type": %q, "creationDateAndTime": "2020-01-01T00:00:00+01:00"},
		"businessScope": {"scope": [{"type": "ConversationId", "identifier": "urn:no:difi:profile:arkivmelding:response:ver1.0",
			"instanceIdentifier": "0f6c9a3e-1d2b-4b8e-9f31-6a5d2c7e8b41"}]}},
		%q: %s}`, standard, id, typ, typ, business))
	require.NoError(t, err)
	return doc
}

// TestReceive_ReceiptRecordsSentFirst: a receipt proves its message was
// sent though the send's own SENDT is not recorded (its answer was lost):
// SENDT comes first, in the receipt's transaction, the message leaves the
// outgoing store and its payload file goes (local-api.md §14.2).
func TestReceive_ReceiptRecordsSentFirst(t *testing.T) {
	ctx := context.Background()
	c := newCore(t)
	const id = "6a0e6f43-5b7c-4d7e-9b1a-0c2d3e4f5a61"
	file := c.outgoingWithFile(t, id, "DPO")
	c.got = nil

	require.NoError(t, c.Receive(ctx, Received{Document: receiptDoc(t, "status", id, `{"status": "MOTTATT"}`), Service: "DPO", Sent: id}))
	conv, got := c.history(t, id)
	assert.Equal(t, []string{"SENDT", "MOTTATT"}, got)
	assert.False(t, conv.Statuses[1].LastUpdate.Before(conv.Statuses[0].LastUpdate))
	var hooks []string
	for _, ev := range c.got {
		hooks = append(hooks, ev.Status)
	}
	assert.Equal(t, []string{"SENDT", "MOTTATT"}, hooks, "one webhook per status, in order")
	_, err := c.st.GetOutgoing(ctx, id)
	assert.ErrorIs(t, err, store.ErrNotFound, "SENDT takes the message out of the outgoing store")
	assert.False(t, c.fileExists(file), "and its payload")

	// The next receipt finds SENDT there and adds only itself.
	require.NoError(t, c.Receive(ctx, Received{Document: receiptDoc(t, "status", id, `{"status": "LEVERT"}`), Service: "DPO", Sent: id}))
	_, got = c.history(t, id)
	assert.Equal(t, []string{"SENDT", "MOTTATT", "LEVERT"}, got)

	// A status for a message we do not know is ignored, as before.
	const other = "6a0e6f43-5b7c-4d7e-9b1a-0c2d3e4f5a62"
	require.NoError(t, c.Receive(ctx, Received{Document: receiptDoc(t, "status", other, `{"status": "MOTTATT"}`), Service: "DPO", Sent: other}))
}

// TestReceive_DuplicateArchiveReceiptStillProvesTheSend: an archive receipt
// arriving twice is discarded the second time, but both times it records
// the SENDT of the message it answers, as a separate SENDT before it did.
func TestReceive_DuplicateArchiveReceiptStillProvesTheSend(t *testing.T) {
	ctx := context.Background()
	c := newCore(t)
	const first, second = "7b1f7054-6c8d-4e8f-8c2b-1d3e4f5a6b71", "7b1f7054-6c8d-4e8f-8c2b-1d3e4f5a6b72"
	c.outgoingWithFile(t, first, "DPO")
	c.outgoingWithFile(t, second, "DPO")
	const receiptID = "7b1f7054-6c8d-4e8f-8c2b-1d3e4f5a6b79"
	kv := func(related string) Received {
		return Received{Document: receiptDoc(t, "arkivmelding_kvittering", receiptID,
			fmt.Sprintf(`{"receiptType": "OK", "relatedToMessageId": %q, "messages": []}`, related)), Service: "DPO", Sent: related}
	}
	require.NoError(t, c.Receive(ctx, kv(first)))
	_, got := c.history(t, first)
	assert.Equal(t, []string{"SENDT", "MOTTATT", "LEVERT", "LEST"}, got)

	// Same receipt id again, now (wrongly) naming the second message: a
	// duplicate, yet the SENDT it proves is kept.
	require.ErrorIs(t, c.Receive(ctx, kv(second)), ErrDuplicate)
	_, got = c.history(t, second)
	assert.Equal(t, []string{"SENDT"}, got)
	_, err := c.st.GetOutgoing(ctx, second)
	assert.ErrorIs(t, err, store.ErrNotFound)
}

// TestReceiveStatuses_APageInOneTransaction: a page of status messages,
// two messages' receipts interleaved, LEVERT ahead of MOTTATT for one, and
// one for an unknown message, is recorded as the receipts one by one would
// be: each history in order, a webhook per status, nothing refused.
func TestReceiveStatuses_APageInOneTransaction(t *testing.T) {
	ctx := context.Background()
	c := newCore(t)
	const a, b, unknown = "8c2f8165-7d9e-4f90-9d3c-2e4f5a6b7c81", "8c2f8165-7d9e-4f90-9d3c-2e4f5a6b7c82", "8c2f8165-7d9e-4f90-9d3c-2e4f5a6b7c83"
	c.outgoingWithFile(t, a, "DPO")
	fileB := c.outgoingWithFile(t, b, "DPO")
	require.NoError(t, c.SetStatus(ctx, Change{MessageID: a, Status: "SENDT"}))
	c.got = nil
	st := func(id, status string) Received {
		return Received{Document: receiptDoc(t, "status", id, fmt.Sprintf(`{"status": %q}`, status)), Service: "DPO", Sent: id}
	}
	errs := c.ReceiveStatuses(ctx, []Received{st(a, "MOTTATT"), st(b, "LEVERT"), st(unknown, "MOTTATT"), st(a, "LEVERT"), st(b, "MOTTATT")})
	assert.Equal(t, []error{nil, nil, nil, nil, nil}, errs)
	_, got := c.history(t, a)
	assert.Equal(t, []string{"SENDT", "MOTTATT", "LEVERT"}, got)
	conv, got := c.history(t, b)
	assert.Equal(t, []string{"SENDT", "MOTTATT", "LEVERT"}, got, "LEVERT first brings the steps before it; the late MOTTATT is a repeat")
	assert.Equal(t, "LEVERT", conv.Status, "the conversation's summary is written")
	assert.True(t, conv.Finished)
	assert.False(t, c.fileExists(fileB), "SENDT still takes the payload")
	var hooks []string
	for _, ev := range c.got {
		hooks = append(hooks, ev.MessageID[len(ev.MessageID)-1:]+ev.Status)
	}
	assert.Equal(t, []string{"1MOTTATT", "1LEVERT", "2SENDT", "2MOTTATT", "2LEVERT"}, hooks)
}

// TestSetStatuses_KnownInTheOtherDirection: an id unknown as incoming and
// known as outgoing, changed in that order, is known: the look-up that
// counts is the id's last.
func TestSetStatuses_KnownInTheOtherDirection(t *testing.T) {
	ctx := context.Background()
	c := newCore(t)
	const id = "8c2f8165-7d9e-4f90-9d3c-2e4f5a6b7c84"
	c.outgoingWithFile(t, id, "DPO")
	require.NoError(t, c.setStatuses(ctx, []Change{
		{MessageID: id, Direction: Incoming, Status: "INNKOMMENDE_LEVERT"},
		{MessageID: id, Status: "SENDT"},
	}))
	_, got := c.history(t, id)
	assert.Equal(t, []string{"SENDT"}, got)
	err := c.setStatuses(ctx, []Change{{MessageID: id, Status: "MOTTATT"}, {MessageID: id, Direction: Incoming, Status: "INNKOMMENDE_LEVERT"}})
	assert.ErrorIs(t, err, ErrUnknownMessage, "the last change's message is unknown in its direction")
}

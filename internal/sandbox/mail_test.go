package sandbox_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/internal/apitest"
)

// A message the broker refuses ends in FEIL, and the agency's mailbox gets
// one mail naming it, with no personal data (operations.md §2.1).
func TestSandbox_MailOnFailure(t *testing.T) {
	sink := apitest.NewSMTPSink(t)
	d := startDaemon(t,
		"difi.move.mail.smtpHost", "127.0.0.1",
		"difi.move.mail.smtpPort", strconv.Itoa(sink.Port),
		"difi.move.mail.receiverAddress", "arkiv@agency.example",
		"efm.mail.batch-interval", "1s")
	broker := findService(t, d.sb, "altinn-broker").BaseURL
	resp, err := http.Post(broker+"/_sim/faults", "application/json",
		strings.NewReader(`{"path": "/broker/api/v1/filetransfer", "method": "POST", "status": 400}`))
	require.NoError(t, err)
	resp.Body.Close()

	id := send(t, d.base, sbd("0192:"+orgReceiver, "arkivmelding", "urn:no:difi:arkivmelding:xsd::arkivmelding",
		"urn:no:difi:profile:arkivmelding:administrasjon:ver1.0", map[string]any{"hoveddokument": "vedtak.pdf"}),
		part{"arkivmelding", "arkivmelding.xml", "text/xml", arkivmelding("vedtak.pdf")},
		part{"Vedtak", "vedtak.pdf", "application/pdf", []byte("%PDF-1.4 vedtak")})
	require.Eventually(t, func() bool { return apitest.HasStatus(d.base, id, "FEIL") }, 60*time.Second, 200*time.Millisecond,
		"message %s not FEIL; statuses %v", id, apitest.Statuses(d.base, id))

	mail := sink.Next(t)
	assert.Contains(t, mail, "To: arkiv@agency.example")
	assert.Contains(t, mail, "FEIL")
	assert.Contains(t, mail, "message "+id)
	assert.Contains(t, mail, "reason: ")
	assert.NotContains(t, mail, "vedtak", "no title or file name")
}

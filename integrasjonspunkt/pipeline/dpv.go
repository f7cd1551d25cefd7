package pipeline

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/sbd"
	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/altinn"
	"github.com/efm-go/efm/transport/dpv"
)

// DPV adapts the correspondence client to Channel and Tracker (channels.md
// §3). The files travel as they are; the messageId is the idempotency key.
type DPV struct {
	Client   *dpv.Client       // must not be nil
	exchange *altinn.Exchanger // for check
	// SenderName is messageSender: the sending organisation's name (the
	// reference takes it from the SR info record).
	SenderName string
	// Settings from difi.move.dpv.*.
	SensitiveResource string // default eformidling-dpv-taushetsbelagt
	EmailSubject      string
	NotificationText  string
	SensitiveText     string
	DaysToReply       int  // default 7
	EnableDueDate     bool // default true in the reference
	Now               func() time.Time
}

// DPVPackaging: DPV carries the documents in clear over TLS.
func DPVPackaging() Packaging { return Packaging{} }

// Send implements Channel.
func (d DPV) Send(ctx context.Context, out Outgoing) (string, error) {
	if out.Route.Service == "" {
		// Status replies never go to a DPV receiver (§3.4).
		return "", nil
	}
	doc, err := sbd.Decode(out.SBD)
	if err != nil {
		return "", fmt.Errorf("%w: reading sbd: %w", transport.ErrRejected, err)
	}
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	resource := out.Route.Record.Service.Resource
	if resource == "" {
		return "", fmt.Errorf("%w: the service registry gives no dpv resource", transport.ErrRejected)
	}
	sensitive := d.SensitiveResource
	if sensitive == "" {
		sensitive = "eformidling-dpv-taushetsbelagt"
	}
	senderOrg := transport.OrgNumber(doc.SenderValue())
	c := dpv.Correspondence{
		Recipient:            dpv.RecipientURN(out.Route.Receiver.RevealPrimary()),
		IdempotentKey:        out.MessageID,
		SendersReference:     out.MessageID,
		ResourceID:           resource,
		Sender:               "0192:" + senderOrg,
		MessageSender:        d.SenderName,
		RequestedPublishTime: now(),
		IsConfidential:       resource == sensitive,
		IgnoreReservation:    doc.Type == sbd.TypeDigitalDPV && doc.Process() == "urn:no:difi:profile:digitalpost:info:ver1.0",
		PropertyList:         map[string]string{"senderOrgNumber": senderOrg},
		Content:              content(doc, out.Files),
	}
	days := d.DaysToReply
	if v, ok := doc.Int("dpv.dagerTilSvarfrist"); ok && v > 0 {
		days = v
	} else if !d.EnableDueDate {
		days = 0
	}
	if days > 0 {
		c.DueDateTime = now().AddDate(0, 0, days)
	}
	text := d.NotificationText
	if c.IsConfidential && d.SensitiveText != "" {
		text = d.SensitiveText
	}
	if t := doc.String("dpv.varselTekst"); t != "" && !c.IsConfidential {
		text = t
	}
	if t := doc.String("dpv.taushetsbelagtVarselTekst"); t != "" && c.IsConfidential {
		text = t
	}
	if text == "" {
		text = "$reporterName$ har sendt deg en melding i Altinn."
	}
	text = strings.ReplaceAll(text, "$reporterName$", c.MessageSender)
	ch := "EmailAndSms"
	switch doc.String("dpv.varselTransportType") {
	case "EPOST", "Epost":
		ch = "Email"
	case "SMS":
		ch = "Sms"
	}
	c.Notification = &dpv.Notification{NotificationTemplate: "CustomMessage", EmailSubject: d.EmailSubject, EmailBody: text,
		SmsBody: truncate(text, 160), EmailContentType: "Plain", NotificationChannel: ch, RequestedSendTime: now().Add(5 * time.Minute),
		SendReminder: doc.String("dpv.varselType") != "VarselDPVUtenRevarsel"}
	if c.Notification.SendReminder {
		c.Notification.ReminderEmailSubject, c.Notification.ReminderEmailBody = c.Notification.EmailSubject, c.Notification.EmailBody
		c.Notification.ReminderSmsBody, c.Notification.ReminderChannel = c.Notification.SmsBody, ch
	}
	for _, f := range out.Files {
		if doc.Type == sbd.TypeArkivmelding && f.Name == "arkivmelding.xml" {
			continue // only the documents the arkivmelding names travel (§3.3)
		}
		c.Attachments = append(c.Attachments, dpv.Attachment{FileName: f.Name, DisplayName: f.Title, SendersReference: "AttachmentReference_as123452", Open: f.Open})
	}
	id, err := d.Client.Send(ctx, c)
	if errors.Is(err, dpv.ErrNoCorrespondence) {
		// Sent by an earlier attempt but not to be found: nothing to poll.
		return "", nil
	}
	return id, err
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// content maps the business message to the correspondence's texts (§3.3).
func content(doc *sbd.Document, files []File) dpv.Content {
	c := dpv.Content{Language: "nb"}
	switch doc.Type {
	case sbd.TypeDigitalDPV:
		c.MessageTitle, c.MessageSummary, c.MessageBody = doc.String("tittel"), doc.String("sammendrag"), doc.String("innhold")
	default:
		title, public := arkivTitles(files)
		if public == "" {
			public = title
		}
		c.MessageTitle, c.MessageSummary, c.MessageBody = public, public, title
	}
	if strings.TrimSpace(c.MessageBody) == "" {
		c.MessageBody = "Ingen innhold"
	}
	if c.MessageTitle == "" {
		c.MessageTitle = "Melding"
	}
	if c.MessageSummary == "" {
		c.MessageSummary = c.MessageTitle
	}
	return c
}

// arkivTitles reads the journal post's tittel and offentligTittel from
// arkivmelding.xml, the first registrering that has them.
func arkivTitles(files []File) (title, public string) {
	for _, f := range files {
		if f.Name != "arkivmelding.xml" {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return "", ""
		}
		defer rc.Close()
		var am struct {
			Mappe []struct {
				Registrering []struct {
					Tittel          string `xml:"tittel"`
					OffentligTittel string `xml:"offentligTittel"`
				} `xml:"registrering"`
			} `xml:"mappe"`
			Registrering []struct {
				Tittel          string `xml:"tittel"`
				OffentligTittel string `xml:"offentligTittel"`
			} `xml:"registrering"`
		}
		if err := xml.NewDecoder(io.LimitReader(rc, 16<<20)).Decode(&am); err != nil {
			return "", ""
		}
		regs := am.Registrering
		for _, m := range am.Mappe {
			regs = append(regs, m.Registrering...)
		}
		for _, r := range regs {
			if r.Tittel != "" || r.OffentligTittel != "" {
				return r.Tittel, r.OffentligTittel
			}
		}
	}
	return "", ""
}

// Track implements Tracker (§3.5).
func (d DPV) Track(ctx context.Context, reference string) ([]Status, bool, error) {
	res, err := d.Client.Poll(ctx, reference)
	if err != nil {
		return nil, false, err
	}
	out := make([]Status, 0, len(res.Updates))
	for _, u := range res.Updates {
		out = append(out, Status{Status: u.Status, At: u.At, Description: u.Description})
	}
	return out, res.Stop, nil
}

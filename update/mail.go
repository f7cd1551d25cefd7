package update

import (
	"bytes"
	"fmt"
	"mime"
	"net"
	"net/smtp"
	"strconv"
	"strings"
	"time"
)

func (m MailConfig) enabled() bool { return m.Host != "" && len(m.To) > 0 }

// subject keeps KOSMOS' shape ("Upgrade SUCCESS integrasjonspunkt 1.4.2",
// "Rollback SUCCESS integrasjonspunkt 1.4.1") so agencies' existing mail
// rules keep sorting the notices. It returns "" for events that send no mail.
func subject(e Event, suffix string) string {
	var s string
	switch e.Type {
	case EventCommitted:
		s = "Upgrade SUCCESS integrasjonspunkt " + e.To
	case EventFailed:
		s = "Upgrade FAILED integrasjonspunkt " + e.To
	case EventRolledBack:
		s = "Rollback SUCCESS integrasjonspunkt " + e.From
	case EventApplied:
		s = "Upgrade STARTED integrasjonspunkt " + e.To
	case EventStaged:
		s = "Upgrade STAGED integrasjonspunkt " + e.To
	case EventWaiting:
		s = "Upgrade WAITING integrasjonspunkt " + e.To
	default:
		return ""
	}
	if suffix != "" {
		s += " " + suffix
	}
	return s
}

// sendMail sends one notice. The body carries the detail and, for a
// rollback, the tail of the failed start's log, as KOSMOS mails the captured
// start-up log.
func sendMail(m MailConfig, e Event, logTail string) error {
	subj := subject(e, m.SubjectSuffix)
	if subj == "" || !m.enabled() {
		return nil
	}
	from := m.From
	if from == "" {
		from = "integrasjonspunkt@localhost"
	}
	var body bytes.Buffer
	fmt.Fprintf(&body, "From: %s\r\n", from)
	fmt.Fprintf(&body, "To: %s\r\n", strings.Join(m.To, ", "))
	fmt.Fprintf(&body, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", subj))
	fmt.Fprintf(&body, "Date: %s\r\n", e.At.Format(time.RFC1123Z))
	body.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	fmt.Fprintf(&body, "event: %s\r\nfrom: %s\r\nto: %s\r\nreason: %s\r\n", e.Type, e.From, e.To, e.Reason)
	if e.Detail != "" {
		fmt.Fprintf(&body, "detail: %s\r\n", e.Detail)
	}
	if logTail != "" {
		body.WriteString("\r\nlog tail:\r\n")
		for _, line := range strings.Split(strings.TrimRight(logTail, "\n"), "\n") {
			if strings.HasPrefix(line, ".") { // SMTP dot-stuffing is done by net/smtp; keep lines intact
				line = " " + line
			}
			body.WriteString(line + "\r\n")
		}
	}
	port := m.Port
	if port == 0 {
		port = 25
	}
	addr := net.JoinHostPort(m.Host, strconv.Itoa(port))
	var auth smtp.Auth
	if m.Username != "" {
		// PlainAuth refuses to send the password unless the connection is TLS
		// or to localhost, which is the protection we want.
		auth = smtp.PlainAuth("", m.Username, m.Password, m.Host)
	}
	if err := smtp.SendMail(addr, auth, from, m.To, body.Bytes()); err != nil {
		return fmt.Errorf("sending update notice to %s: %w", addr, err)
	}
	return nil
}

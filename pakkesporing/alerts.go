package pakkesporing

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/smtp"
	"sort"
	"strings"
	"time"

	"github.com/efm-go/efm/internal/logattr"
)

// Alert thresholds (operations.md §5.4, what Digdir's central e-mails do today).
const (
	CertificateWarning = 30 * 24 * time.Hour
	SilentAfter        = 48 * time.Hour
)

// AlertResult counts the e-mails one run sent, by kind.
type AlertResult struct {
	Failed       int // messages reaching FEIL or LEVETID_UTLOPT, in FailedMails e-mails
	FailedMails  int
	Certificates int
	Silent       int
	Pending      int // alerts with no recipient or no mail server; retried next run
}

// ErrNoMailServer means alerts are due but no SMTP server is configured.
var ErrNoMailServer = errors.New("no smtp server configured for alerts")

type failedMessage struct {
	orgnr, messageID, conversationID, service, status string
	at                                                time.Time
}

// RunAlerts sends what is due: outgoing messages that reached FEIL or
// LEVETID_UTLOPT (to the org's contact, one e-mail per org; no titles, only
// ids, service, status and times), certificates expiring within 30 days, and
// installations silent for 2 days (to the org and to operations). Each alert
// is sent once; one that cannot be sent stays due for the next run.
func (s *Server) RunAlerts(ctx context.Context) (AlertResult, error) {
	var res AlertResult
	now := s.cfg.Now().UTC()

	failed, err := s.dueFailures(ctx)
	if err != nil {
		return res, err
	}
	byOrg := map[string][]failedMessage{}
	for _, f := range failed {
		byOrg[f.orgnr] = append(byOrg[f.orgnr], f)
	}
	var errs []error
	for _, org := range sortedKeys(byOrg) {
		msgs := byOrg[org]
		to := s.recipients(org, false)
		if len(to) == 0 || s.cfg.SMTP.Addr == "" {
			res.Pending += len(msgs)
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%d outgoing message(s) from organisation %s did not reach the receiver.\n", len(msgs), org)
		b.WriteString("Resend them from the archive system after fixing the cause.\n\n")
		for _, m := range msgs {
			fmt.Fprintf(&b, "message id:      %s\nconversation id: %s\nservice:         %s\nstatus:          %s\ntime:            %s\n\n",
				m.messageID, m.conversationID, m.service, m.status, m.at.Format(time.RFC3339))
		}
		subject := fmt.Sprintf("eFormidling: %d message(s) failed for %s", len(msgs), org)
		if err := s.sendMail(to, subject, b.String()); err != nil {
			errs = append(errs, err)
			res.Pending += len(msgs)
			continue
		}
		if err := s.markFailuresAlerted(ctx, msgs, now); err != nil {
			return res, err
		}
		res.Failed += len(msgs)
		res.FailedMails++
	}

	ins, err := s.db.installations(ctx, `1=1`)
	if err != nil {
		return res, err
	}
	for _, in := range ins {
		if in.CertificateNotAfter != nil && in.CertificateNotAfter.Sub(now) < CertificateWarning {
			key := in.InstallationID + "/" + in.CertificateNotAfter.Format(time.RFC3339)
			subject := fmt.Sprintf("eFormidling: business certificate of %s expires %s", in.OrgNr, in.CertificateNotAfter.Format(time.DateOnly))
			body := fmt.Sprintf("The business certificate used by installation %s of organisation %s (version %s) is valid until %s.\n"+
				"Order a new one and install it before then, or sending and receiving stop.\n",
				in.InstallationID, in.OrgNr, in.Version, in.CertificateNotAfter.Format(time.RFC3339))
			sent, err := s.alertOnce(ctx, "certificate", key, s.recipients(in.OrgNr, false), subject, body, now)
			if err != nil {
				errs = append(errs, err)
			}
			switch {
			case sent:
				res.Certificates++
			case err != nil || s.cfg.SMTP.Addr == "":
				res.Pending++
			}
		}
		if now.Sub(in.LastSeen) > SilentAfter {
			key := in.InstallationID + "/" + in.LastSeen.Format(time.RFC3339Nano)
			subject := fmt.Sprintf("eFormidling: installation of %s silent since %s", in.OrgNr, in.LastSeen.Format(time.DateOnly))
			body := fmt.Sprintf("Installation %s of organisation %s (version %s) has sent no event since %s.\n"+
				"Check that the integration point runs and that the firewall lets it reach the central log.\n",
				in.InstallationID, in.OrgNr, in.Version, in.LastSeen.Format(time.RFC3339))
			sent, err := s.alertOnce(ctx, "silent", key, s.recipients(in.OrgNr, true), subject, body, now)
			if err != nil {
				errs = append(errs, err)
			}
			switch {
			case sent:
				res.Silent++
			case err != nil || s.cfg.SMTP.Addr == "":
				res.Pending++
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("sending alerts: %w", err)
	}
	return res, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// recipients is the org's contact, else operations; operations also gets a
// copy when withOps.
func (s *Server) recipients(org string, withOps bool) []string {
	var to []string
	if c := s.cfg.Contacts[org]; c != "" {
		to = append(to, c)
	}
	if s.cfg.OperationsEmail != "" && (withOps || len(to) == 0) {
		to = append(to, s.cfg.OperationsEmail)
	}
	return to
}

func (s *Server) dueFailures(ctx context.Context) ([]failedMessage, error) {
	rows, err := s.db.r.QueryContext(ctx, `SELECT orgnr, message_id, conversation_id, service, alert_status, latest_at
		FROM conversation WHERE alert_status IS NOT NULL AND alerted_at IS NULL ORDER BY orgnr, latest_at`)
	if err != nil {
		return nil, fmt.Errorf("finding failed messages: %w", err)
	}
	defer rows.Close()
	var out []failedMessage
	for rows.Next() {
		var f failedMessage
		var at int64
		if err := rows.Scan(&f.orgnr, &f.messageID, &f.conversationID, &f.service, &f.status, &at); err != nil {
			return nil, fmt.Errorf("reading failed messages: %w", err)
		}
		f.at = time.Unix(0, at).UTC()
		out = append(out, f)
	}
	return out, rows.Err()
}

func (s *Server) markFailuresAlerted(ctx context.Context, msgs []failedMessage, now time.Time) error {
	s.db.mu.Lock()
	defer s.db.mu.Unlock()
	tx, err := s.db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("recording sent alerts: %w", err)
	}
	defer tx.Rollback()
	for _, m := range msgs {
		if _, err := tx.ExecContext(ctx, `UPDATE conversation SET alerted_at = ? WHERE orgnr = ? AND message_id = ?`,
			now.UnixNano(), m.orgnr, m.messageID); err != nil {
			return fmt.Errorf("recording sent alerts: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("recording sent alerts: %w", err)
	}
	return nil
}

// alertOnce sends an alert unless (kind, key) was sent before. It reports
// whether it sent one now.
func (s *Server) alertOnce(ctx context.Context, kind, key string, to []string, subject, body string, now time.Time) (bool, error) {
	var one int
	err := s.db.r.QueryRowContext(ctx, `SELECT 1 FROM alert_sent WHERE kind = ? AND key = ?`, kind, key).Scan(&one)
	switch {
	case err == nil:
		return false, nil
	case !errors.Is(err, sql.ErrNoRows):
		return false, fmt.Errorf("checking sent alerts: %w", err)
	}
	if len(to) == 0 || s.cfg.SMTP.Addr == "" {
		return false, nil
	}
	if err := s.sendMail(to, subject, body); err != nil {
		return false, err
	}
	s.db.mu.Lock()
	defer s.db.mu.Unlock()
	if _, err := s.db.w.ExecContext(ctx, `INSERT OR IGNORE INTO alert_sent(kind, key, sent_at) VALUES (?,?,?)`,
		kind, key, now.UnixNano()); err != nil {
		return true, fmt.Errorf("recording sent alert: %w", err)
	}
	return true, nil
}

func (s *Server) sendMail(to []string, subject, body string) error {
	c := s.cfg.SMTP
	if c.Addr == "" {
		return ErrNoMailServer
	}
	var auth smtp.Auth
	if c.Username != "" {
		host, _, _ := strings.Cut(c.Addr, ":")
		auth = smtp.PlainAuth("", c.Username, c.Password, host)
	}
	var msg strings.Builder
	fmt.Fprintf(&msg, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
		c.From, strings.Join(to, ", "), mime.QEncoding.Encode("utf-8", subject), s.cfg.Now().UTC().Format(time.RFC1123Z))
	msg.WriteString(strings.ReplaceAll(body, "\n", "\r\n"))
	if err := smtp.SendMail(c.Addr, auth, c.From, to, []byte(msg.String())); err != nil {
		s.log.Warn("sending alert e-mail", logattr.Err(err), slog.Int("recipients", len(to)))
		return fmt.Errorf("sending alert e-mail: %w", err)
	}
	return nil
}

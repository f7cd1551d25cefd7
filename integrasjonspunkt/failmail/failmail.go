// Package failmail e-mails the agency when an outgoing message ends in FEIL
// or LEVETID_UTLOPT (operations.md §2.1: Digdir does this centrally within
// 24 hours for the reference; the daemon does it itself, at once). It uses
// the reference's difi.move.mail.* keys, sends one mail per batch interval
// however many messages failed, and keeps a cursor (the last status id
// mailed) in the data dir, so a restart neither loses nor repeats a failure.
//
// A mail carries the message id, conversation id, status, time and reason,
// never a receiver, title or anything else that may name a person; digit
// runs long enough to be a national identity number are masked in reasons.
package failmail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/smtp"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/integrasjonspunkt/config"
	"github.com/efm-go/efm/integrasjonspunkt/message"
	"github.com/efm-go/efm/integrasjonspunkt/store"
	"github.com/efm-go/efm/internal/logattr"
)

// Statuses are the ones mailed.
var Statuses = []string{"FEIL", "LEVETID_UTLOPT"}

// maxPerMail keeps one mail readable; the rest come in the next one.
const maxPerMail = 200

// Config is the mailer's settings and dependencies.
type Config struct {
	Store     *store.Store // must not be nil
	Host      string       // difi.move.mail.smtpHost
	Port      int          // difi.move.mail.smtpPort; 0: 25
	From      string       // difi.move.mail.senderAddress
	To        []string     // difi.move.mail.receiverAddress, comma separated
	Username  string       // with difi.move.mail.enableAuth
	Password  string
	OrgNumber string
	Interval  time.Duration // efm.mail.batch-interval
	Cursor    string        // file holding the last status id mailed
	Now       func() time.Time
	Logger    *slog.Logger // must not be nil
}

// FromConfig reads the difi.move.mail.* keys; ok is false when no SMTP host
// or receiver is set, and then nothing is mailed.
func FromConfig(cfg *config.Config, st *store.Store, log *slog.Logger) (Config, bool) {
	c := Config{Store: st, Host: cfg.Value("difi.move.mail.smtpHost"), From: cfg.Value("difi.move.mail.senderAddress"),
		OrgNumber: cfg.OrgNumber, Interval: cfg.Duration("efm.mail.batch-interval", 5*time.Minute),
		Cursor: filepath.Join(cfg.DataDir, "mail", "cursor"), Now: time.Now, Logger: log}
	c.Port, _ = strconv.Atoi(cfg.Value("difi.move.mail.smtpPort"))
	for _, to := range strings.Split(cfg.Value("difi.move.mail.receiverAddress"), ",") {
		if to = strings.TrimSpace(to); to != "" {
			c.To = append(c.To, to)
		}
	}
	if cfg.Value("difi.move.mail.enableAuth") == "true" {
		c.Username, c.Password = cfg.Value("difi.move.mail.username"), cfg.Value("difi.move.mail.password")
	}
	return c, c.Host != "" && len(c.To) > 0
}

// Mailer sends the batches.
type Mailer struct {
	cfg Config
	log *slog.Logger
}

// New makes a Mailer.
func New(cfg Config) *Mailer {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Minute
	}
	if cfg.From == "" {
		cfg.From = "integrasjonspunkt@localhost"
	}
	return &Mailer{cfg: cfg, log: cfg.Logger.With(logattr.Component("failmail"))}
}

// Run flushes every interval until ctx ends. A failed send is retried at
// the next tick: the cursor moves only after the SMTP server took the mail.
func (m *Mailer) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := m.Flush(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("failure mail not sent; retrying at the next interval", logattr.Err(err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Flush mails the failures recorded since the last mail, in one message,
// and returns how many it reported. The first flush of a new installation
// only sets the cursor: history is not mailed.
func (m *Mailer) Flush(ctx context.Context) (int, error) {
	cursor, ok, err := m.readCursor()
	if err != nil {
		return 0, err
	}
	if !ok {
		last, _, err := m.cfg.Store.ListStatuses(ctx, store.StatusFilter{}, store.Page{Size: 1, Sort: []store.Order{{Property: "id", Desc: true}}, NoTotal: true})
		if err != nil {
			return 0, fmt.Errorf("reading the newest status: %w", err)
		}
		var id int64
		if len(last) > 0 {
			id = last[0].ID
		}
		return 0, m.writeCursor(id)
	}
	var failed []store.Status
	for _, st := range Statuses {
		got, _, err := m.cfg.Store.ListStatuses(ctx, store.StatusFilter{AfterID: cursor, Status: st, Direction: message.Outgoing},
			store.Page{Size: maxPerMail, Sort: []store.Order{{Property: "id"}}, NoTotal: true})
		if err != nil {
			return 0, fmt.Errorf("listing %s statuses: %w", st, err)
		}
		failed = append(failed, got...)
	}
	if len(failed) == 0 {
		return 0, nil
	}
	slices.SortFunc(failed, func(a, b store.Status) int { return int(a.ID - b.ID) })
	if len(failed) > maxPerMail {
		failed = failed[:maxPerMail]
	}
	if err := m.send(failed); err != nil {
		return 0, err
	}
	m.log.Info("failure mail sent", slog.Int("messages", len(failed)))
	return len(failed), m.writeCursor(failed[len(failed)-1].ID)
}

func (m *Mailer) send(failed []store.Status) error {
	subj := fmt.Sprintf("eFormidling: %d message(s) failed at %s", len(failed), m.cfg.OrgNumber)
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n", m.cfg.From, strings.Join(m.cfg.To, ", "),
		mime.QEncoding.Encode("utf-8", subj), m.cfg.Now().Format(time.RFC1123Z))
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	fmt.Fprintf(&b, "These outgoing messages from organisation %s did not reach their receivers.\r\n", m.cfg.OrgNumber)
	b.WriteString("Send them again once the cause is fixed; the daemon's page /ui/messages/<message id> shows each road.\r\n\r\n")
	for _, st := range failed {
		fmt.Fprintf(&b, "%s  %-14s  message %s  conversation %s\r\n", st.LastUpdate.UTC().Format(time.RFC3339), st.Status, st.MessageID, st.ConversationID)
		reason := st.Description
		if reason == "" && st.Status == "LEVETID_UTLOPT" {
			reason = "the message's lifetime ran out before the receiver confirmed it"
		}
		if reason != "" {
			fmt.Fprintf(&b, "    reason: %s\r\n", clean(reason))
		}
	}
	port := m.cfg.Port
	if port == 0 {
		port = 25
	}
	addr := net.JoinHostPort(m.cfg.Host, strconv.Itoa(port))
	var auth smtp.Auth
	if m.cfg.Username != "" {
		// PlainAuth sends the password only over TLS or to localhost.
		auth = smtp.PlainAuth("", m.cfg.Username, m.cfg.Password, m.cfg.Host)
	}
	if err := smtp.SendMail(addr, auth, m.cfg.From, m.cfg.To, b.Bytes()); err != nil {
		return fmt.Errorf("sending failure mail to %s: %w", addr, err)
	}
	return nil
}

// clean makes a reason one short line with no person number in it.
func clean(s string) string {
	// Masked before it is cut: a cut could leave part of a number too short
	// to be recognised.
	s = ident.MaskDigitRuns(strings.Join(strings.Fields(s), " "))
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return s
}

func (m *Mailer) readCursor() (int64, bool, error) {
	b, err := os.ReadFile(m.cfg.Cursor)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("reading mail cursor: %w", err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("mail cursor %s: %w", m.cfg.Cursor, err)
	}
	return n, true, nil
}

func (m *Mailer) writeCursor(id int64) error {
	if err := os.MkdirAll(filepath.Dir(m.cfg.Cursor), 0o750); err != nil {
		return err
	}
	tmp := m.cfg.Cursor + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(id, 10)+"\n"), 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, m.cfg.Cursor)
}

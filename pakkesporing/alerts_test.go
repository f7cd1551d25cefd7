package pakkesporing_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/pakkesporing"
	"github.com/efm-go/efm/pakkesporing/pakkesporingtest"
)

// mail is one message the SMTP server accepted.
type mail struct {
	from string
	to   []string
	data string
}

// smtpServer speaks enough RFC 5321 for net/smtp: EHLO, MAIL, RCPT, DATA,
// RSET, NOOP, QUIT. It can refuse the next messages to test retries.
type smtpServer struct {
	ln       net.Listener
	mu       sync.Mutex
	mails    []mail
	failNext int
}

func newSMTPServer(t *testing.T) *smtpServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &smtpServer{ln: ln}
	go s.serve()
	t.Cleanup(func() { ln.Close() })
	return s
}

func (s *smtpServer) addr() string { return s.ln.Addr().String() }

func (s *smtpServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.session(c)
	}
}

func (s *smtpServer) session(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	say := func(line string) { c.Write([]byte(line + "\r\n")) }
	say("220 test ESMTP")
	var cur mail
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250-test greets you")
			say("250 8BITMIME")
		case strings.HasPrefix(cmd, "MAIL FROM:"):
			cur = mail{from: strings.Trim(strings.TrimSpace(line)[10:], "<> ")}
			say("250 ok")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			cur.to = append(cur.to, strings.Trim(strings.TrimSpace(line)[8:], "<> "))
			say("250 ok")
		case cmd == "DATA":
			say("354 go ahead")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, "."))
			}
			cur.data = b.String()
			s.mu.Lock()
			fail := s.failNext > 0
			if fail {
				s.failNext--
			} else {
				s.mails = append(s.mails, cur)
			}
			s.mu.Unlock()
			if fail {
				say("451 try again later")
			} else {
				say("250 queued")
			}
		case cmd == "RSET", cmd == "NOOP":
			say("250 ok")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("502 not implemented")
		}
	}
}

func (s *smtpServer) take() []mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.mails
	s.mails = nil
	return m
}

func TestAlerts(t *testing.T) {
	smtp := newSMTPServer(t)
	clk := &clock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	ps := pakkesporingtest.New(t, pakkesporingtest.Options{Config: pakkesporing.Config{
		Now:             clk.Now,
		SMTP:            pakkesporing.SMTPConfig{Addr: smtp.addr(), From: "pakkesporing@digdir.test"},
		Contacts:        map[string]string{senderOrg: "arkiv@sender.test"},
		OperationsEmail: "drift@digdir.test",
	}})
	now := clk.Now()
	sb := newBuilder(t, senderOrg, clk.Now)
	rb := newBuilder(t, receiverOrg, clk.Now)
	failed, expired, fine := newMessage(), newMessage(), newMessage()
	_, startedBody, err := sb.InstallationStarted("linux", "amd64", []events.ServiceID{events.DPO}, []string{"v1"})
	require.NoError(t, err)
	_, heartbeat, err := sb.InstallationHeartbeat(nil, now.Add(20*24*time.Hour)) // certificate expires in 20 days
	require.NoError(t, err)
	code, _ := post(t, ps.Client(t, senderOrg), ps.URL,
		startedBody, heartbeat,
		failed.sent(t, sb, events.Sendt, now.Add(-time.Hour)),
		failed.sent(t, sb, events.Feil, now.Add(-30*time.Minute)),
		expired.sent(t, sb, events.LevetidUtlopt, now.Add(-10*time.Minute)),
		fine.sent(t, sb, events.Levert, now.Add(-5*time.Minute)),
	)
	require.Equal(t, http.StatusOK, code)
	// The receiver's installation went quiet three days ago.
	code, _ = post(t, ps.Client(t, receiverOrg), ps.URL, fine.received(t, rb, events.InnkommendeLevert, now.Add(-72*time.Hour)))
	require.Equal(t, http.StatusOK, code)

	// The first attempt meets a mail server that says "later": all stays due.
	smtp.mu.Lock()
	smtp.failNext = 10
	smtp.mu.Unlock()
	_, err = ps.RunAlerts(context.Background())
	require.Error(t, err)
	smtp.mu.Lock()
	smtp.failNext = 0
	smtp.mu.Unlock()

	res, err := ps.RunAlerts(context.Background())
	require.NoError(t, err)
	assert.Equal(t, pakkesporing.AlertResult{Failed: 2, FailedMails: 1, Certificates: 1, Silent: 1}, res)
	mails := smtp.take()
	require.Len(t, mails, 3)
	bySubject := map[string]mail{}
	for _, m := range mails {
		subj := m.data[strings.Index(m.data, "Subject: ")+9:]
		subj = subj[:strings.Index(subj, "\r\n")]
		bySubject[subj] = m
	}
	m, ok := bySubject["eFormidling: 2 message(s) failed for "+senderOrg]
	require.True(t, ok, "failure alert: %v", bySubject)
	assert.Equal(t, []string{"arkiv@sender.test"}, m.to)
	assert.Contains(t, m.data, failed.id)
	assert.Contains(t, m.data, failed.conv)
	assert.Contains(t, m.data, expired.id)
	assert.Contains(t, m.data, "LEVETID_UTLOPT")
	assert.NotContains(t, m.data, fine.id)

	m, ok = bySubject["eFormidling: business certificate of "+senderOrg+" expires "+now.Add(20*24*time.Hour).Format(time.DateOnly)]
	require.True(t, ok, "certificate alert: %v", bySubject)
	assert.Equal(t, []string{"arkiv@sender.test"}, m.to)

	m, ok = bySubject["eFormidling: installation of "+receiverOrg+" silent since "+now.Add(-72*time.Hour).Format(time.DateOnly)]
	require.True(t, ok, "silent alert: %v", bySubject)
	assert.Equal(t, []string{"drift@digdir.test"}, m.to, "no contact for the receiver: operations")

	// Sent once: the next hourly run sends nothing new.
	res, err = ps.RunAlerts(context.Background())
	require.NoError(t, err)
	assert.Equal(t, pakkesporing.AlertResult{}, res)
	assert.Empty(t, smtp.take())

	// A new failure later is a new alert.
	later := newMessage()
	code, _ = post(t, ps.Client(t, senderOrg), ps.URL, later.sent(t, sb, events.Feil, now))
	require.Equal(t, http.StatusOK, code)
	res, err = ps.RunAlerts(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, res.Failed)
	require.Len(t, smtp.take(), 1)
}

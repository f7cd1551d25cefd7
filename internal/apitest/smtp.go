package apitest

import (
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// SMTPSink is a local SMTP server for mail tests: it speaks enough RFC 5321
// for net/smtp and keeps every message it accepts. RejectNext makes it refuse
// the next messages at DATA with a 451, as a busy relay does.
type SMTPSink struct {
	Port int

	mu     sync.Mutex
	reject int
	msgs   chan string
}

// NewSMTPSink listens on a free loopback port until the test ends.
func NewSMTPSink(t *testing.T) *SMTPSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	s := &SMTPSink{Port: ln.Addr().(*net.TCPAddr).Port, msgs: make(chan string, 100)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.session(c)
		}
	}()
	return s
}

// RejectNext refuses the next n messages.
func (s *SMTPSink) RejectNext(n int) {
	s.mu.Lock()
	s.reject = n
	s.mu.Unlock()
}

func (s *SMTPSink) rejecting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reject > 0 {
		s.reject--
		return true
	}
	return false
}

func (s *SMTPSink) session(c net.Conn) {
	defer c.Close()
	tp := textproto.NewConn(c)
	_ = tp.PrintfLine("220 sink ESMTP")
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		switch verb, _, _ := strings.Cut(strings.ToUpper(line), " "); verb {
		case "EHLO", "HELO":
			_ = tp.PrintfLine("250 sink")
		case "MAIL", "RCPT", "RSET", "NOOP":
			_ = tp.PrintfLine("250 ok")
		case "DATA":
			if s.rejecting() {
				_ = tp.PrintfLine("451 try again later")
				continue
			}
			_ = tp.PrintfLine("354 end with .")
			b, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			s.msgs <- string(b)
			_ = tp.PrintfLine("250 queued")
		case "QUIT":
			_ = tp.PrintfLine("221 bye")
			return
		default:
			_ = tp.PrintfLine("502 not implemented")
		}
	}
}

// Next waits for the next accepted message.
func (s *SMTPSink) Next(t *testing.T) string {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no mail reached the sink")
		return ""
	}
}

// None asserts that no message is waiting.
func (s *SMTPSink) None(t *testing.T) {
	t.Helper()
	select {
	case m := <-s.msgs:
		t.Fatalf("unexpected mail:\n%s", m)
	default:
	}
}

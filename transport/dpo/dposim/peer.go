package dposim

import (
	"bytes"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/efm-go/efm/internal/simfault"
	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/dpo"
	"github.com/google/uuid"
)

// peerReceiveLocked plays the receiving integration point of a peer org: it
// takes the transfer (download + confirm), and unless the message is itself
// a status or receipt, answers on the schedule. f is the transfer's file as
// publishLocked read it, and rd the handle it read it through: the peer
// opens the package from the same reading instead of parsing the file again,
// and takes a reference to rd, which outlives the purge below.
func (s *Sim) peerReceiveLocked(t *transfer, r *recipient, f *dpo.File, rd *sharedReader) {
	h := f.Header
	open := true
	switch h.Type {
	case transport.TypeStatus, transport.TypeArkivmeldingKvittering, transport.TypeEinnsynKvittering:
		open = false
	default:
		rd.hold()
	}
	s.setRecipientLocked(t, r, dpo.RecipientDownloadConfirmed)
	s.allConfirmedLocked(t)
	if !open {
		return
	}
	// Opening a package is slow (RSA, AES); do it off the lock, then
	// schedule the answers.
	s.timers.After(0, func() {
		defer rd.release()
		if err := s.peerOpen(r.org, f); err != nil {
			s.mu.Lock()
			s.peerErrors[h.MessageID] = err.Error()
			s.mu.Unlock()
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.peerAnswerLocked(t, r, f)
	})
}

// peerOpen streams the package to Options.Open: a 1 GiB package is never
// held in memory.
func (s *Sim) peerOpen(org string, f *dpo.File) error {
	if s.opts.Open == nil {
		return nil
	}
	if !f.HasPayload() {
		return s.opts.Open(transport.OrgNumber(org), f.SBD, nil)
	}
	rc, err := f.OpenPayload()
	if err != nil {
		return fmt.Errorf("reading asic.zip: %w", err)
	}
	defer rc.Close()
	if err := s.opts.Open(transport.OrgNumber(org), f.SBD, rc); err != nil {
		return err
	}
	// The zip reader checks the CRC only at the end of the entry.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return fmt.Errorf("reading asic.zip: %w", err)
	}
	return nil
}

// sharedReader is a blob's handle read by publishLocked and the peers that
// open its package after it returned; the last to release it closes it.
type sharedReader struct {
	readerAt
	refs atomic.Int32
}

func newSharedReader(rd readerAt) *sharedReader {
	r := &sharedReader{readerAt: rd}
	r.refs.Store(1)
	return r
}

func (r *sharedReader) hold() { r.refs.Add(1) }

func (r *sharedReader) release() {
	if r.refs.Add(-1) == 0 {
		r.Close()
	}
}

func (s *Sim) peerAnswerLocked(t *transfer, r *recipient, f *dpo.File) {
	h := f.Header
	// Answers to a message that came on a message channel carry the
	// channel's name as reference, so the channel-bound sender sees them.
	ref := h.MessageChannel
	peer, to := r.org, t.sender
	sbd := f.SBD
	// known is what the broker's bookkeeping reads from an answer, when
	// the peer knows it without reading the answer back.
	answer := func(what string, delay time.Duration, known *transport.Header, build func() ([]byte, error)) {
		if s.dropped(what) {
			return
		}
		s.timers.After(delay, func() {
			raw, err := build()
			if err != nil {
				s.mu.Lock()
				s.peerErrors[h.MessageID] = fmt.Sprintf("building %s: %v", what, err)
				s.mu.Unlock()
				return
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			_, _ = s.originateLocked(peer, to, ref, raw, nil, known)
		})
	}
	for _, st := range []struct {
		status string
		delay  simfault.Duration
	}{{"MOTTATT", s.sched.Mottatt}, {"LEVERT", s.sched.Levert}} {
		known := &transport.Header{MessageID: h.MessageID, ConversationID: h.ConversationID, Type: transport.TypeStatus, Status: st.status}
		answer(st.status, time.Duration(st.delay), known, func() ([]byte, error) {
			return transport.StatusReplyTo(sbd, h, st.status, s.opts.Now())
		})
	}
	kt := s.sched.KvitteringType
	if kt == "" {
		kt = "OK"
	}
	if h.Type == "arkivmelding" && kt != "none" {
		answer("kvittering", time.Duration(s.sched.Kvittering), nil, func() ([]byte, error) {
			return transport.ArkivmeldingReceipt(sbd, kt, s.opts.Now())
		})
	}
}

func (s *Sim) allConfirmedLocked(t *transfer) {
	for _, r := range t.recipients {
		if r.status != dpo.RecipientDownloadConfirmed {
			return
		}
	}
	s.setStatusLocked(t, dpo.StatusAllConfirmedDownloaded)
	// Every recipient has the file: free it, as the broker purges it, so
	// long sandbox runs and benchmarks do not grow without bound. The
	// transfer's metadata stays, so a sender's late retry still finds it.
	if t.file != nil {
		t.file.remove()
		t.file = nil
	}
}

// originateLocked creates, uploads and publishes a transfer from sender to
// recipient (both "0192:<orgnr>"), as a peer's integration point would
// through the broker API. A peer's own files skip the virus scan delay.
// known, when not nil, is the header of sbd as the caller built it.
func (s *Sim) originateLocked(sender, recipient, ref string, sbd, asic []byte, known *transport.Header) (*transfer, error) {
	var buf bytes.Buffer
	if err := dpo.WriteFile(&buf, sbd, asic); err != nil {
		return nil, fmt.Errorf("writing broker file: %w", err)
	}
	if ref == "" {
		ref = uuid.NewString()
	}
	t := s.newTransferLocked(dpo.InitializeRequest{FileName: dpo.FileName, ResourceID: s.opts.ResourceID,
		SendersFileTransferReference: ref, Sender: sender, Recipients: []string{recipient}})
	t.file, t.checksum = memBlob(buf.Bytes())
	t.size, t.known = t.file.size, known
	s.setStatusLocked(t, dpo.StatusUploadProcessing)
	s.publishLocked(t)
	return t, nil
}

package dposim

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/dpo"
	"github.com/google/uuid"
)

// peerReceiveLocked plays the receiving integration point of a peer org: it
// takes the transfer (download + confirm), and unless the message is itself
// a status or receipt, answers on the schedule.
func (s *Sim) peerReceiveLocked(t *transfer, r *recipient, f *dpo.File) {
	s.setRecipientLocked(t, r, dpo.RecipientDownloadConfirmed)
	s.allConfirmedLocked(t)
	h := f.Header
	switch h.Type {
	case transport.TypeStatus, transport.TypeArkivmeldingKvittering, transport.TypeEinnsynKvittering:
		return
	}
	// Opening a package is slow (RSA, AES); do it off the lock, then
	// schedule the answers.
	s.timers.After(0, func() {
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

func (s *Sim) peerOpen(org string, f *dpo.File) error {
	if s.opts.Open == nil {
		return nil
	}
	var asic []byte
	if f.HasPayload() {
		rc, err := f.OpenPayload()
		if err == nil {
			asic, err = io.ReadAll(rc)
			rc.Close()
		}
		if err != nil {
			return fmt.Errorf("reading asic.zip: %w", err)
		}
	}
	return s.opts.Open(transport.OrgNumber(org), f.SBD, asic)
}

func (s *Sim) peerAnswerLocked(t *transfer, r *recipient, f *dpo.File) {
	h := f.Header
	// Answers to a message that came on a message channel carry the
	// channel's name as reference, so the channel-bound sender sees them.
	ref := h.MessageChannel
	peer, to := r.org, t.sender
	sbd := f.SBD
	answer := func(what string, delay time.Duration, build func() ([]byte, error)) {
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
			_, _ = s.originateLocked(peer, to, ref, raw, nil)
		})
	}
	answer("MOTTATT", time.Duration(s.sched.Mottatt), func() ([]byte, error) {
		return transport.StatusReply(sbd, "MOTTATT", s.opts.Now())
	})
	answer("LEVERT", time.Duration(s.sched.Levert), func() ([]byte, error) {
		return transport.StatusReply(sbd, "LEVERT", s.opts.Now())
	})
	kt := s.sched.KvitteringType
	if kt == "" {
		kt = "OK"
	}
	if h.Type == "arkivmelding" && kt != "none" {
		answer("kvittering", time.Duration(s.sched.Kvittering), func() ([]byte, error) {
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
	t.data = nil
}

// originateLocked creates, uploads and publishes a transfer from sender to
// recipient (both "0192:<orgnr>"), as a peer's integration point would
// through the broker API. A peer's own files skip the virus scan delay.
func (s *Sim) originateLocked(sender, recipient, ref string, sbd, asic []byte) (*transfer, error) {
	var buf bytes.Buffer
	if err := dpo.WriteFile(&buf, sbd, asic); err != nil {
		return nil, fmt.Errorf("writing broker file: %w", err)
	}
	if ref == "" {
		ref = uuid.NewString()
	}
	t := s.newTransferLocked(dpo.InitializeRequest{FileName: dpo.FileName, ResourceID: s.opts.ResourceID,
		SendersFileTransferReference: ref, Sender: sender, Recipients: []string{recipient}})
	sum := md5.Sum(buf.Bytes())
	t.data, t.size, t.checksum = buf.Bytes(), int64(buf.Len()), hex.EncodeToString(sum[:])
	s.setStatusLocked(t, dpo.StatusUploadProcessing)
	s.publishLocked(t)
	return t, nil
}

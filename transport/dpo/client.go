// Package dpo is the client of eFormidling's message service over Altinn 3
// Broker (spec channels.md §2): it uploads a message as a broker file
// transfer, lists and downloads the transfers addressed to its system user,
// and confirms them. Receipts travel as ordinary messages (status and
// arkivmelding_kvittering SBDs), so receiving them is receiving messages.
//
// The package carried is opaque: Send takes the CMS-encrypted ASiC-E as a
// Payload and the SBD as JSON bytes. It imports neither the core nor
// packaging; authentication comes through TokenSource (an altinn.Exchanger).
//
// # Idempotency
//
// A broker transfer is created (POST /filetransfer) before its file is
// uploaded. Send reports the new fileTransferId through Outgoing.Checkpoint
// before uploading; the caller stores it and passes it back as
// Outgoing.TransferID on a retry. A retry then asks the broker where that
// transfer stands and uploads only if nothing was uploaded yet, so a lost
// answer or a crash never makes a second delivery. A crash between creation
// and checkpoint leaves an empty transfer behind, which is never published
// and so never delivered.
package dpo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/efm-go/efm/transport"
	"github.com/google/uuid"
)

// TokenSource hands out Altinn tokens for the broker scopes; *altinn.Exchanger
// satisfies it. When it also has Invalidate(scopes ...string), the client
// calls it after a 401 and tries once more with a fresh token.
type TokenSource interface {
	Token(ctx context.Context, scopes ...string) (string, error)
}

// Config configures a Client for one system user (the own one or a reportee).
type Config struct {
	// BaseURL is difi.move.dpo.brokerserviceUrl, e.g.
	// https://platform.tt02.altinn.no/broker/api/v1. Required.
	BaseURL string
	// Tokens supplies Altinn tokens for this system user. Required.
	Tokens TokenSource
	// ResourceID is difi.move.dpo.resource; default DefaultResourceID.
	ResourceID string
	// MessageChannel is difi.move.dpo.message-channel; "" when unset (§2.4 step 3).
	MessageChannel string
	// HTTPClient; default one with the reference's 3 s connect timeout and
	// no overall timeout (uploads may be large; RequestTimeout bounds the rest).
	HTTPClient *http.Client
	// RequestTimeout bounds every call except the upload and download
	// bodies; default 30 s as the reference.
	RequestTimeout time.Duration
	// TempDir is where downloads are spooled; default os.TempDir().
	TempDir string
	// MaxFileSize caps a download; default 1 GiB plus room for the SBD
	// (difi.move.dpo.upload-size-limit).
	MaxFileSize int64
}

// Client talks to the broker. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base *url.URL
}

var brokerParty = regexp.MustCompile(`^\d{4}:\d{9}$`)

// New returns a Client or every configuration problem at once.
func New(cfg Config) (*Client, error) {
	var errs []error
	base, err := transport.BaseURL("dpo", "difi.move.dpo.brokerserviceUrl", cfg.BaseURL)
	if err != nil {
		errs = append(errs, err)
	}
	if cfg.Tokens == nil {
		errs = append(errs, errors.New("dpo: Tokens is required"))
	}
	if len(cfg.MessageChannel) > 25 {
		errs = append(errs, fmt.Errorf("dpo: MessageChannel %q is longer than 25 characters", cfg.MessageChannel))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.ResourceID == "" {
		cfg.ResourceID = DefaultResourceID
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Transport: defaultTransport()}
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.TempDir == "" {
		cfg.TempDir = os.TempDir()
	}
	if cfg.MaxFileSize == 0 {
		cfg.MaxFileSize = 1<<30 + maxSBDSize
	}
	return &Client{cfg: cfg, base: base}, nil
}

func defaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&netDialer{timeout: 3 * time.Second}).DialContext
	// Every call goes to the one broker host, from as many goroutines as
	// the pipeline and the inbox run. With net/http's default of two idle
	// connections per host the rest were closed after each call and dialled
	// anew: 6 % of the daemon's CPU per delivered message went to dialling
	// (issue 18). Keep as many as the pool holds.
	t.MaxIdleConnsPerHost = t.MaxIdleConns
	return t
}

// Outgoing is one message to send.
type Outgoing struct {
	// SBD is the message's SBD as JSON (local-api.md §11); sender and
	// receiver of the transfer are taken from it. Required.
	SBD []byte
	// Payload is the CMS-encrypted ASiC-E; nil for status and receipt
	// messages, which carry no asic.zip.
	Payload Payload
	// Reference is sendersFileTransferReference. Leave it "": the client
	// uses the MessageChannel scope's name for a status or receipt that
	// carries one (§2.3), else a fresh UUID.
	Reference string
	// TransferID is the fileTransferId an earlier attempt checkpointed; ""
	// on the first attempt.
	TransferID string
	// Checkpoint, when not nil, is called with a new fileTransferId before
	// anything is uploaded; an error stops the send. Persist the id there.
	Checkpoint func(ctx context.Context, transferID string) error
}

// Send delivers out to the broker and returns its fileTransferId; on
// success the message is SENDT. With out.TransferID set it resumes that
// transfer instead of creating one (see the package doc).
func (c *Client) Send(ctx context.Context, out Outgoing) (string, error) {
	h, err := transport.ParseHeader(out.SBD)
	if err != nil {
		return "", fmt.Errorf("reading outgoing sbd: %w", err)
	}
	sender, receiver := transport.OrgNumber(h.Sender), transport.OrgNumber(h.Receiver)
	if sender == "" || receiver == "" {
		return "", fmt.Errorf("%w: dpo sender and receiver must be organisation numbers", transport.ErrRejected)
	}
	if strings.Count(h.Sender, ":") == 2 {
		// 0192:A:B: A operates for B, and the broker and the receiver see B.
		if out.SBD, err = transport.WithSender(out.SBD, "0192:"+sender); err != nil {
			return "", fmt.Errorf("rewriting on-behalf-of sender: %w", err)
		}
	}
	id := out.TransferID
	if id != "" {
		ov, err := c.Overview(ctx, id)
		switch {
		case errors.Is(err, transport.ErrNotFound):
			// Purged or never there: start over.
		case err != nil:
			return "", fmt.Errorf("checking earlier file transfer: %w", err)
		case uploaded(ov.FileTransferStatus):
			return id, nil
		case ov.FileTransferStatus == StatusInitialized:
			return id, c.upload(ctx, id, out)
		}
		// Failed or Cancelled: the file never reached anyone; start over.
	}
	ref := out.Reference
	if ref == "" && h.MessageChannel != "" &&
		(h.Type == transport.TypeStatus || h.Type == transport.TypeArkivmeldingKvittering) {
		// An answer to a message that came on a channel carries the
		// channel's name, so the channel-bound sender picks it up (§2.3).
		ref = h.MessageChannel
	}
	if ref == "" {
		ref = uuid.NewString()
	}
	req := InitializeRequest{FileName: FileName, ResourceID: c.cfg.ResourceID,
		SendersFileTransferReference: ref, Sender: "0192:" + sender,
		Recipients: []string{"0192:" + receiver}, PropertyList: map[string]string{}}
	if !brokerParty.MatchString(req.Sender) {
		return "", fmt.Errorf("%w: broker sender %q", transport.ErrRejected, req.Sender)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("encoding file transfer: %w", err)
	}
	var ir InitializeResponse
	if err := c.call(ctx, "initialising file transfer", http.MethodPost, "/filetransfer", nil,
		ScopeWrite, bytes.NewReader(body), "application/json", &ir); err != nil {
		return "", err
	}
	if ir.FileTransferID == "" {
		return "", fmt.Errorf("%w: broker answered no fileTransferId", transport.ErrMalformed)
	}
	if out.Checkpoint != nil {
		if err := out.Checkpoint(ctx, ir.FileTransferID); err != nil {
			return "", fmt.Errorf("checkpointing file transfer: %w", err)
		}
	}
	return ir.FileTransferID, c.upload(ctx, ir.FileTransferID, out)
}

// resume reports whether the transfer of an earlier attempt already carries
// the file, so the send is done.
func (c *Client) resume(ctx context.Context, id string) (bool, error) {
	ov, err := c.Overview(ctx, id)
	if errors.Is(err, transport.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checking earlier file transfer: %w", err)
	}
	return uploaded(ov.FileTransferStatus), nil
}

func uploaded(status string) bool {
	switch status {
	case StatusUploadStarted, StatusUploadProcessing, StatusPublished, StatusAllConfirmedDownloaded, StatusPurged:
		return true
	}
	return false
}

func (c *Client) upload(ctx context.Context, id string, out Outgoing) error {
	f, err := newBrokerFile(out.SBD, out.Payload)
	if err != nil {
		return fmt.Errorf("preparing broker file: %w", err)
	}
	err = c.callStream(ctx, "uploading file transfer", http.MethodPost, "/filetransfer/"+url.PathEscape(id)+"/upload",
		ScopeWrite, f)
	var se *transport.StatusError
	if errors.As(err, &se) && se.StatusCode == http.StatusConflict {
		// FileTransferAlreadyUploaded: an earlier upload got through but
		// its answer was lost, unless that upload failed at the broker.
		if done, rerr := c.resume(ctx, id); rerr == nil && done {
			return nil
		}
		// Retry later: the next attempt sees Failed and starts over.
		return fmt.Errorf("file transfer already uploaded and not published: %w", errRetry)
	}
	return err
}

var errRetry = errors.New("retry later")

// Overview fetches GET /filetransfer/{id}.
func (c *Client) Overview(ctx context.Context, id string) (Overview, error) {
	var ov Overview
	err := c.call(ctx, "getting file transfer overview", http.MethodGet, "/filetransfer/"+url.PathEscape(id), nil,
		ScopeWrite, nil, "", &ov)
	return ov, err
}

// Pending lists the transfers waiting for this system user (§2.4 steps 1–3):
// published, not yet confirmed, filtered by the message-channel rule and
// sorted by creation time, oldest first. Transfers in DownloadStarted are
// listed too: a crash between download and confirm leaves them there, and
// the broker lists them under no other filter. Handing one over twice is
// safe, the core discards a messageId it already has.
func (c *Client) Pending(ctx context.Context) ([]Overview, error) {
	var ids []string
	for _, rs := range []string{RecipientDownloadStarted, RecipientInitialized} {
		q := url.Values{"resourceId": {c.cfg.ResourceID}, "status": {StatusPublished}, "recipientStatus": {rs}}
		var page []string
		if err := c.call(ctx, "listing file transfers", http.MethodGet, "/filetransfer", q, ScopeRead, nil, "", &page); err != nil {
			return nil, err
		}
		for _, id := range page {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	out := make([]Overview, 0, len(ids))
	for _, id := range ids {
		var ov Overview
		if err := c.call(ctx, "getting file transfer overview", http.MethodGet, "/filetransfer/"+url.PathEscape(id), nil,
			ScopeRead, nil, "", &ov); err != nil {
			return nil, err
		}
		if c.wanted(ov.SendersFileTransferReference) {
			out = append(out, ov)
		}
	}
	slices.SortStableFunc(out, func(a, b Overview) int { return a.Created.Compare(b.Created) })
	return out, nil
}

var channelLike = regexp.MustCompile(`^[a-zA-Z0-9-_]{0,25}$`)

// wanted applies the message-channel filter of §2.4 step 3.
func (c *Client) wanted(ref string) bool {
	if c.cfg.MessageChannel != "" {
		return ref == c.cfg.MessageChannel
	}
	return !channelLike.MatchString(ref)
}

// Download fetches and opens a transfer's file. The caller must Close the
// File. transport.ErrMalformed means the file cannot be read: confirm and
// discard it (§2.4 step 5).
func (c *Client) Download(ctx context.Context, id string) (*File, error) {
	resp, cancel, err := c.do(ctx, "downloading file transfer", http.MethodGet, "/filetransfer/"+url.PathEscape(id)+"/download",
		nil, ScopeRead, nil, false)
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer resp.Body.Close()
	if resp.ContentLength > c.cfg.MaxFileSize {
		return nil, fmt.Errorf("%w: file transfer larger than %d bytes", transport.ErrMalformed, c.cfg.MaxFileSize)
	}
	// Receipts and small messages, the bulk of the traffic, are read in
	// memory; anything larger is spooled to disk so a 1 GB package never
	// sits in memory (spec channels.md §1.5).
	if resp.ContentLength >= 0 && resp.ContentLength <= memoryDownload {
		buf, err := io.ReadAll(io.LimitReader(resp.Body, resp.ContentLength+1))
		if err != nil {
			return nil, fmt.Errorf("downloading file transfer: %w", err)
		}
		f, err := ParseFile(bytes.NewReader(buf), int64(len(buf)))
		if err != nil {
			return nil, fmt.Errorf("reading file transfer: %w", err)
		}
		return f, nil
	}
	tmp, err := os.CreateTemp(c.cfg.TempDir, "dpo-download-*")
	if err != nil {
		return nil, fmt.Errorf("spooling download: %w", err)
	}
	cleanup := func() { tmp.Close(); os.Remove(tmp.Name()) }
	n, err := io.Copy(tmp, io.LimitReader(resp.Body, c.cfg.MaxFileSize+1))
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("downloading file transfer: %w", err)
	}
	if n > c.cfg.MaxFileSize {
		cleanup()
		return nil, fmt.Errorf("%w: file transfer larger than %d bytes", transport.ErrMalformed, c.cfg.MaxFileSize)
	}
	f, err := ParseFile(tmp, n)
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("reading file transfer: %w", err)
	}
	f.closer = closerFunc(func() error { cleanup(); return nil })
	return f, nil
}

// memoryDownload is the largest download read into memory rather than
// spooled to disk.
const memoryDownload = 4 << 20

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// Confirm marks a transfer downloaded (§2.4 step 7), after the message is
// safely stored or deliberately discarded.
func (c *Client) Confirm(ctx context.Context, id string) error {
	return c.call(ctx, "confirming download", http.MethodPost, "/filetransfer/"+url.PathEscape(id)+"/confirmdownload",
		nil, ScopeRead, nil, "", nil)
}

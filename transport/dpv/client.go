// Package dpv is the client of Altinn Digital Post (Altinn 3 Correspondence)
// as the eFormidling proxy shows it (spec channels.md §3): it creates a
// correspondence with its attachments and polls the correspondence's
// overview for statuses. DPV is outgoing only and carries no end-to-end
// encryption.
//
// Idempotency: the messageId is sent as idempotentKey; Altinn answers a
// repeated key with 409, which the client resolves to the existing
// correspondence (§3.4), so a retry never creates a second one.
//
// It imports neither the core nor packaging; Altinn tokens come through
// TokenSource (an altinn.Exchanger for scope eformidling:dpv).
package dpv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"time"

	"github.com/efm-go/efm/transport"
)

// TokenSource hands out Altinn tokens; *altinn.Exchanger satisfies it, and
// its Invalidate is used after a 401.
type TokenSource interface {
	Token(ctx context.Context, scopes ...string) (string, error)
}

// ErrNoCorrespondence is a 409 on create with no correspondence found for
// the sendersReference: the conversation stops polling (§3.4).
var ErrNoCorrespondence = errors.New("idempotent key used but no correspondence found")

// Config configures a Client.
type Config struct {
	// BaseURL is difi.move.dpv.correspondenceServiceUrl, e.g.
	// https://test.eformidling.no/altinn-proxy/correspondence/api/v1. Required.
	BaseURL string
	// Tokens supplies Altinn tokens. Required.
	Tokens TokenSource
	// HTTPClient; default http.DefaultClient (RequestTimeout bounds calls).
	HTTPClient *http.Client
	// RequestTimeout bounds each status call; uploads only by the caller's
	// context. Default 30 s.
	RequestTimeout time.Duration
}

// Client talks to the correspondence proxy. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base *url.URL
}

// New returns a Client or every configuration problem at once.
func New(cfg Config) (*Client, error) {
	var errs []error
	base, err := transport.BaseURL("dpv", "difi.move.dpv.correspondenceServiceUrl", cfg.BaseURL)
	if err != nil {
		errs = append(errs, err)
	}
	if cfg.Tokens == nil {
		errs = append(errs, errors.New("dpv: Tokens is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	return &Client{cfg: cfg, base: base}, nil
}

func fields(c Correspondence) [][2]string {
	const ts = time.RFC3339Nano
	f := [][2]string{
		{"recipients[0]", c.Recipient},
		{"idempotentKey", c.IdempotentKey},
		{"correspondence.resourceId", c.ResourceID},
		{"correspondence.sender", c.Sender},
		{"correspondence.sendersReference", c.SendersReference},
		{"correspondence.messageSender", c.MessageSender},
		{"correspondence.requestedPublishTime", c.RequestedPublishTime.UTC().Format(ts)},
		{"correspondence.isConfirmationNeeded", "false"},
		{"correspondence.isConfidential", fmt.Sprint(c.IsConfidential)},
		{"correspondence.ignoreReservation", fmt.Sprint(c.IgnoreReservation)},
		{"correspondence.content.language", c.Content.Language},
		{"correspondence.content.messageTitle", c.Content.MessageTitle},
		{"correspondence.content.messageSummary", c.Content.MessageSummary},
		{"correspondence.content.messageBody", c.Content.MessageBody},
	}
	if !c.DueDateTime.IsZero() {
		f = append(f, [2]string{"correspondence.dueDateTime", c.DueDateTime.UTC().Format(ts)})
	}
	for k, v := range c.PropertyList {
		f = append(f, [2]string{"correspondence.propertyList." + k, v})
	}
	for i, a := range c.Attachments {
		p := fmt.Sprintf("correspondence.content.attachments[%d].", i)
		f = append(f, [2]string{p + "fileName", a.FileName}, [2]string{p + "displayName", a.DisplayName},
			[2]string{p + "isEncrypted", "false"}, [2]string{p + "sendersReference", a.SendersReference})
	}
	if n := c.Notification; n != nil {
		p := "correspondence.notification."
		f = append(f,
			[2]string{p + "notificationTemplate", n.NotificationTemplate},
			[2]string{p + "emailSubject", n.EmailSubject},
			[2]string{p + "emailBody", n.EmailBody},
			[2]string{p + "smsBody", n.SmsBody},
			[2]string{p + "emailContentType", n.EmailContentType},
			[2]string{p + "notificationChannel", n.NotificationChannel},
			[2]string{p + "requestedSendTime", n.RequestedSendTime.UTC().Format(ts)},
			[2]string{p + "sendReminder", fmt.Sprint(n.SendReminder)})
		if n.SendReminder {
			f = append(f,
				[2]string{p + "reminderEmailSubject", n.ReminderEmailSubject},
				[2]string{p + "reminderEmailBody", n.ReminderEmailBody},
				[2]string{p + "reminderSmsBody", n.ReminderSmsBody},
				[2]string{p + "reminderNotificationChannel", n.ReminderChannel})
		}
	}
	return f
}

// Send creates the correspondence and returns its correspondenceId, the
// conversation's external reference; success means SENDT. A 409 resolves
// to the correspondence an earlier attempt created; ErrNoCorrespondence
// when there is none.
func (c *Client) Send(ctx context.Context, corr Correspondence) (string, error) {
	if corr.IdempotentKey == "" || corr.SendersReference == "" {
		return "", fmt.Errorf("%w: dpv needs idempotentKey and sendersReference", transport.ErrRejected)
	}
	if corr.ResourceID == "" {
		return "", fmt.Errorf("%w: the service record has no resource", transport.ErrRejected)
	}
	body := func() (io.Reader, string) {
		pr, pw := io.Pipe()
		mw := multipart.NewWriter(pw)
		go func() { pw.CloseWithError(writeMultipart(mw, corr)) }()
		return pr, mw.FormDataContentType()
	}
	var ur UploadResponse
	err := c.call(ctx, "creating correspondence", http.MethodPost, "/correspondence/upload", nil, body, false, &ur)
	var se *transport.StatusError
	if errors.As(err, &se) && se.StatusCode == http.StatusConflict {
		return c.bySendersReference(ctx, corr.SendersReference)
	}
	if err != nil {
		return "", err
	}
	if len(ur.Correspondences) == 0 || ur.Correspondences[0].CorrespondenceID == "" {
		return "", fmt.Errorf("%w: correspondence created without an id", transport.ErrMalformed)
	}
	return ur.Correspondences[0].CorrespondenceID, nil
}

func writeMultipart(mw *multipart.Writer, corr Correspondence) error {
	for _, kv := range fields(corr) {
		if err := mw.WriteField(kv[0], kv[1]); err != nil {
			return err
		}
	}
	for _, a := range corr.Attachments {
		w, err := mw.CreateFormFile("attachments", a.FileName)
		if err != nil {
			return err
		}
		rc, err := a.Open()
		if err != nil {
			return fmt.Errorf("opening attachment: %w", err)
		}
		_, err = io.Copy(w, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("reading attachment: %w", err)
		}
	}
	return mw.Close()
}

func (c *Client) bySendersReference(ctx context.Context, ref string) (string, error) {
	var ids struct {
		IDs []string `json:"ids"`
	}
	if err := c.call(ctx, "finding correspondence by sendersReference", http.MethodGet, "/correspondence",
		url.Values{"sendersReference": {ref}}, nil, true, &ids); err != nil {
		return "", err
	}
	if len(ids.IDs) == 0 {
		return "", ErrNoCorrespondence
	}
	return ids.IDs[0], nil
}

// Update is one status a poll found, with the time Altinn gives for it.
type Update struct {
	Status      string // LEVERT, LEST or ANNET
	At          time.Time
	Description string
}

// PollResult is what one poll of a correspondence says.
type PollResult struct {
	Updates []Update
	// Stop is true when polling this conversation should end: read,
	// purged, or gone at Altinn.
	Stop bool
}

// Poll fetches the overview of a correspondence and maps it to statuses
// (§3.5). The core records each update once (repeats are ignored, §14.2).
func (c *Client) Poll(ctx context.Context, correspondenceID string) (PollResult, error) {
	var ov Overview
	err := c.call(ctx, "polling correspondence", http.MethodGet, "/correspondence/"+url.PathEscape(correspondenceID), nil, nil, true, &ov)
	if errors.Is(err, transport.ErrNotFound) {
		return PollResult{Updates: []Update{{Status: "ANNET", Description: "deleted in Altinn"}}, Stop: true}, nil
	}
	if err != nil {
		return PollResult{}, err
	}
	return MapOverview(ov), nil
}

// MapOverview applies the table of §3.5.
func MapOverview(ov Overview) PollResult {
	var r PollResult
	if ov.Published != nil {
		r.Updates = append(r.Updates, Update{Status: "LEVERT", At: *ov.Published})
	}
	if ov.Read != nil {
		r.Updates = append(r.Updates, Update{Status: "LEST", At: *ov.Read})
		r.Stop = true
	}
	switch ov.Status {
	case StatusPurgedByRecipient, StatusPurgedByAltinn:
		r.Updates = append(r.Updates, Update{Status: "ANNET", At: ov.StatusChanged, Description: ov.Status})
		r.Stop = true
	case StatusInitialized, StatusReadyForPublish, StatusFetched, StatusAttachmentsDownloaded,
		StatusPublished, StatusRead: // the last two are carried by their timestamps
	default:
		r.Updates = append(r.Updates, Update{Status: "ANNET", At: ov.StatusChanged, Description: ov.Status})
	}
	return r
}

type invalidator interface{ Invalidate(scopes ...string) }

// call sends a request with a fresh token (once more after a 401) and
// decodes a JSON answer into out. body, when not nil, makes a fresh body
// and its content type for each attempt.
func (c *Client) call(ctx context.Context, op, method, path string, q url.Values,
	body func() (io.Reader, string), bounded bool, out any) error {
	u := *c.base
	u.Path += path
	u.RawQuery = q.Encode()
	for attempt := 0; ; attempt++ {
		token, err := c.cfg.Tokens.Token(ctx, Scope)
		if err != nil {
			return fmt.Errorf("%s: getting altinn token: %w", op, err)
		}
		cctx, cancel := ctx, context.CancelFunc(func() {})
		if bounded {
			cctx, cancel = context.WithTimeout(ctx, c.cfg.RequestTimeout)
		}
		var rd io.Reader
		var ctype string
		if body != nil {
			rd, ctype = body()
		}
		req, err := http.NewRequestWithContext(cctx, method, u.String(), rd)
		if err != nil {
			cancel()
			return fmt.Errorf("%s: %w", op, err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Accept", "application/json")
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := c.cfg.HTTPClient.Do(req)
		if err != nil {
			cancel()
			return fmt.Errorf("%s: %w", op, err)
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(out)
			resp.Body.Close()
			cancel()
			if err != nil {
				return fmt.Errorf("%s: decoding answer: %w", op, errors.Join(transport.ErrMalformed, err))
			}
			return nil
		}
		se := &transport.StatusError{Op: op, StatusCode: resp.StatusCode}
		var p transport.Problem
		if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&p) == nil {
			se.Title, se.Detail = p.Title, p.Detail
		}
		resp.Body.Close()
		cancel()
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			if inv, ok := c.cfg.Tokens.(invalidator); ok {
				inv.Invalidate(Scope)
				continue
			}
		}
		return se
	}
}

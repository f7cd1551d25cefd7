package dpv

import (
	"io"
	"time"
)

// Scope is the Maskinporten scope behind the Altinn token (§3.2).
const Scope = "eformidling:dpv"

// Correspondence status enum (spec channels.md §3.5).
const (
	StatusInitialized           = "Initialized"
	StatusReadyForPublish       = "ReadyForPublish"
	StatusPublished             = "Published"
	StatusFetched               = "Fetched"
	StatusRead                  = "Read"
	StatusReplied               = "Replied"
	StatusConfirmed             = "Confirmed"
	StatusPurgedByRecipient     = "PurgedByRecipient"
	StatusPurgedByAltinn        = "PurgedByAltinn"
	StatusArchived              = "Archived"
	StatusReserved              = "Reserved"
	StatusFailed                = "Failed"
	StatusAttachmentsDownloaded = "AttachmentsDownloaded"
)

// Correspondence is what Send uploads: the request object of
// POST /correspondence/upload (§3.3). The caller fills it from the SBD,
// the SR records and configuration; the client only puts it on the wire.
type Correspondence struct {
	// Recipient is a URN, see RecipientURN.
	Recipient string
	// IdempotentKey and SendersReference are the messageId.
	IdempotentKey        string
	ResourceID           string
	Sender               string // 0192:<orgnr>
	SendersReference     string
	MessageSender        string
	RequestedPublishTime time.Time
	DueDateTime          time.Time // zero: not sent
	IsConfidential       bool
	IgnoreReservation    bool
	PropertyList         map[string]string
	Content              Content
	Attachments          []Attachment
	Notification         *Notification
}

// Content is correspondence.content.
type Content struct {
	Language       string // nb
	MessageTitle   string
	MessageSummary string
	MessageBody    string
}

// Attachment is one file; Open is called for each upload attempt.
type Attachment struct {
	FileName         string
	DisplayName      string
	SendersReference string
	Open             func() (io.ReadCloser, error)
}

// Notification is correspondence.notification.
type Notification struct {
	NotificationTemplate string // CustomMessage
	EmailSubject         string
	EmailBody            string
	SmsBody              string
	EmailContentType     string // Plain
	NotificationChannel  string // Email, Sms, EmailAndSms
	RequestedSendTime    time.Time
	SendReminder         bool
	ReminderEmailSubject string
	ReminderEmailBody    string
	ReminderSmsBody      string
	ReminderChannel      string
}

// RecipientURN names an organisation (9 digits) or a person (11 digits).
func RecipientURN(id string) string {
	if len(id) == 11 {
		return "urn:altinn:person:identifier-no:" + id
	}
	return "urn:altinn:organization:identifier-no:" + id
}

// UploadResponse is the answer to POST /correspondence/upload.
type UploadResponse struct {
	Correspondences []struct {
		CorrespondenceID string `json:"correspondenceId"`
		Status           string `json:"status"`
		Recipient        string `json:"recipient"`
		Notifications    []struct {
			OrderID    string `json:"orderId"`
			IsReminder bool   `json:"isReminder"`
			Status     string `json:"status"`
		} `json:"notifications"`
	} `json:"correspondences"`
	AttachmentIDs []string `json:"attachmentIds"`
}

// Overview is GET /correspondence/{id}: the cheap status view.
type Overview struct {
	CorrespondenceID string     `json:"correspondenceId"`
	Status           string     `json:"status"`
	StatusChanged    time.Time  `json:"statusChanged"`
	Created          time.Time  `json:"created"`
	Published        *time.Time `json:"published,omitempty"`
	Read             *time.Time `json:"read,omitempty"`
	ResourceID       string     `json:"resourceId,omitempty"`
	SendersReference string     `json:"sendersReference,omitempty"`
	Recipient        string     `json:"recipient,omitempty"`
}

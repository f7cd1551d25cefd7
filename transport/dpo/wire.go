package dpo

import "time"

// Broker enums (spec channels.md §2.5).
const (
	StatusInitialized            = "Initialized"
	StatusUploadStarted          = "UploadStarted"
	StatusUploadProcessing       = "UploadProcessing"
	StatusPublished              = "Published"
	StatusCancelled              = "Cancelled"
	StatusAllConfirmedDownloaded = "AllConfirmedDownloaded"
	StatusPurged                 = "Purged"
	StatusFailed                 = "Failed"

	RecipientInitialized       = "Initialized"
	RecipientDownloadStarted   = "DownloadStarted"
	RecipientDownloadConfirmed = "DownloadConfirmed"
)

// DefaultResourceID is difi.move.dpo.resource.
const DefaultResourceID = "eformidling-dpo-meldingsutveksling"

// Scopes for the Maskinporten grant behind the Altinn token (§1.7).
const (
	ScopeWrite = "altinn:broker.write"
	ScopeRead  = "altinn:broker.read"
)

// InitializeRequest is the body of POST /filetransfer.
type InitializeRequest struct {
	FileName                     string            `json:"fileName"`
	ResourceID                   string            `json:"resourceId"`
	SendersFileTransferReference string            `json:"sendersFileTransferReference"`
	Sender                       string            `json:"sender"`
	Recipients                   []string          `json:"recipients"`
	PropertyList                 map[string]string `json:"propertyList"`
	Checksum                     string            `json:"checksum,omitempty"`
}

// InitializeResponse is the answer to POST /filetransfer.
type InitializeResponse struct {
	FileTransferID string `json:"fileTransferId"`
}

// RecipientStatus is one recipient's state in an Overview.
type RecipientStatus struct {
	Recipient                                 string    `json:"recipient"`
	CurrentRecipientFileTransferStatusCode    string    `json:"currentRecipientFileTransferStatusCode"`
	CurrentRecipientFileTransferStatusText    string    `json:"currentRecipientFileTransferStatusText,omitempty"`
	CurrentRecipientFileTransferStatusChanged time.Time `json:"currentRecipientFileTransferStatusChanged"`
}

// Overview is GET /filetransfer/{id}.
type Overview struct {
	FileTransferID               string            `json:"fileTransferId"`
	ResourceID                   string            `json:"resourceId"`
	FileName                     string            `json:"fileName"`
	SendersFileTransferReference string            `json:"sendersFileTransferReference"`
	Checksum                     string            `json:"checksum,omitempty"`
	FileTransferSize             int64             `json:"fileTransferSize"`
	FileTransferStatus           string            `json:"fileTransferStatus"`
	FileTransferStatusText       string            `json:"fileTransferStatusText,omitempty"`
	FileTransferStatusChanged    time.Time         `json:"fileTransferStatusChanged"`
	Created                      time.Time         `json:"created"`
	ExpirationTime               time.Time         `json:"expirationTime"`
	Sender                       string            `json:"sender"`
	Recipients                   []RecipientStatus `json:"recipients"`
	PropertyList                 map[string]string `json:"propertyList"`
}

// Package elma is a client of ELMA, the Peppol SMP of eFormidling (spec/addressing.md §6): which
// document types a participant 0192:<orgnr> has registered, and with which process identifiers.
// The Service Registry simulator asks it; the integration point itself never does.
//
// Endpoint addresses, certificates and the SMP signature are ignored, as the SR ignores them for
// eFormidling document types.
package elma

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/efm-go/efm/addressing/internal/baseurl"
)

// Identifier schemes of the SMP.
const (
	ParticipantScheme = "iso6523-actorid-upis"
	DocumentScheme    = "busdox-docid-qns"
	ProcessScheme     = "cenbii-procid-ubl"
	// NSPublishing and NSIdentifiers are the BusDox SMP namespaces.
	NSPublishing  = "http://busdox.org/serviceMetadata/publishing/1.0/"
	NSIdentifiers = "http://busdox.org/transport/identifiers/1.0/"
)

// Errors callers branch on.
var (
	// ErrNotRegistered: the participant or the document type is unknown to the SMP (404).
	ErrNotRegistered = errors.New("not registered in elma")
	// ErrUnavailable: network error, timeout, 5xx or an unreadable answer.
	ErrUnavailable = errors.New("elma unavailable")
)

// Config configures a Client.
type Config struct {
	// BaseURL of the SMP, e.g. http://test-smp.elma-smp.no or an elmasim server's URL.
	BaseURL    string
	HTTPClient *http.Client
	// Timeout per request; default 5 s.
	Timeout time.Duration
}

// Client queries the SMP. Safe for concurrent use.
type Client struct {
	base    string
	http    *http.Client
	timeout time.Duration
}

// New returns a Client.
func New(cfg Config) (*Client, error) {
	base, err := baseurl.Check("elma", cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	c := &Client{base: base, http: cfg.HTTPClient, timeout: cfg.Timeout}
	if c.timeout <= 0 {
		c.timeout = 5 * time.Second
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: c.timeout}
	}
	return c, nil
}

// ParticipantSegment is the URL path segment of 0192:<orgnr>: iso6523-actorid-upis%3A%3A0192%3A<orgnr>.
func ParticipantSegment(orgnr string) string {
	return url.QueryEscape(ParticipantScheme + "::0192:" + orgnr)
}

// DocumentSegment is the URL path segment of a document type.
func DocumentSegment(docType string) string {
	return url.QueryEscape(DocumentScheme + "::" + docType)
}

// ServiceGroup is the SMP's participant document.
type ServiceGroup struct {
	XMLName     xml.Name    `xml:"http://busdox.org/serviceMetadata/publishing/1.0/ ServiceGroup"`
	Participant Identifier  `xml:"http://busdox.org/transport/identifiers/1.0/ ParticipantIdentifier"`
	References  []Reference `xml:"ServiceMetadataReferenceCollection>ServiceMetadataReference"`
}

// Reference points at one document type's metadata.
type Reference struct {
	Href string `xml:"href,attr"`
}

// Identifier is a scheme-qualified identifier.
type Identifier struct {
	Scheme string `xml:"scheme,attr"`
	Value  string `xml:",chardata"`
}

// SignedServiceMetadata is the SMP's answer for one document type.
type SignedServiceMetadata struct {
	XMLName         xml.Name        `xml:"http://busdox.org/serviceMetadata/publishing/1.0/ SignedServiceMetadata"`
	ServiceMetadata ServiceMetadata `xml:"ServiceMetadata"`
}

// ServiceMetadata wraps ServiceInformation.
type ServiceMetadata struct {
	ServiceInformation ServiceInformation `xml:"ServiceInformation"`
}

// ServiceInformation lists the processes of one document type.
type ServiceInformation struct {
	Participant Identifier `xml:"http://busdox.org/transport/identifiers/1.0/ ParticipantIdentifier"`
	Document    Identifier `xml:"http://busdox.org/transport/identifiers/1.0/ DocumentIdentifier"`
	Processes   []Process  `xml:"ProcessList>Process"`
}

// Process is one process with its endpoints.
type Process struct {
	Identifiers []Identifier `xml:"http://busdox.org/transport/identifiers/1.0/ ProcessIdentifier"`
	Endpoints   []Endpoint   `xml:"ServiceEndpointList>Endpoint"`
}

// Endpoint is an access point; eFormidling ignores it, the simulator fills it for realism.
type Endpoint struct {
	TransportProfile      string `xml:"transportProfile,attr"`
	Address               string `xml:"http://www.w3.org/2005/08/addressing EndpointReference>Address"`
	RequireBusinessSig    bool   `xml:"RequireBusinessLevelSignature"`
	ServiceActivationDate string `xml:"ServiceActivationDate,omitempty"`
	ServiceExpirationDate string `xml:"ServiceExpirationDate,omitempty"`
	Certificate           string `xml:"Certificate"`
	ServiceDescription    string `xml:"ServiceDescription"`
	TechnicalContactURL   string `xml:"TechnicalContactUrl"`
}

// DocumentTypes returns the document types the participant has registered (step 1).
func (c *Client) DocumentTypes(ctx context.Context, orgnr string) ([]string, error) {
	var sg ServiceGroup
	if err := c.get(ctx, "/"+ParticipantSegment(orgnr), &sg); err != nil {
		return nil, fmt.Errorf("reading elma service group of %s: %w", orgnr, err)
	}
	var out []string
	for _, ref := range sg.References {
		if dt, ok := DocumentTypeFromHref(ref.Href); ok {
			out = append(out, dt)
		}
	}
	return out, nil
}

// DocumentTypeFromHref extracts the document type from a ServiceMetadataReference href
// ({smp}/{participant}/services/{urlencoded busdox-docid-qns::<type>}).
func DocumentTypeFromHref(href string) (string, bool) {
	i := strings.LastIndex(href, "/services/")
	if i < 0 {
		return "", false
	}
	raw, err := url.QueryUnescape(href[i+len("/services/"):])
	if err != nil {
		return "", false
	}
	return strings.CutPrefix(raw, DocumentScheme+"::")
}

// Processes returns the process identifiers registered for one document type (step 2): per
// Process, the first ProcessIdentifier, as the SR reads it.
func (c *Client) Processes(ctx context.Context, orgnr, docType string) ([]string, error) {
	var ssm SignedServiceMetadata
	if err := c.get(ctx, "/"+ParticipantSegment(orgnr)+"/services/"+DocumentSegment(docType), &ssm); err != nil {
		return nil, fmt.Errorf("reading elma metadata of %s for %s: %w", orgnr, docType, err)
	}
	var out []string
	for _, p := range ssm.ServiceMetadata.ServiceInformation.Processes {
		if len(p.Identifiers) > 0 {
			out = append(out, strings.TrimSpace(p.Identifiers[0].Value))
		}
	}
	return out, nil
}

// Lookup answers "which processes is 0192:<orgnr> registered with for these document types":
// document type → processes, for the listed types the participant has. A participant unknown to
// the SMP gives an empty map and no error (the SR treats a lookup failure as "not registered");
// ErrUnavailable is returned so the caller can tell an outage from "not registered".
func (c *Client) Lookup(ctx context.Context, orgnr string, docTypes []string) (map[string][]string, error) {
	have, err := c.DocumentTypes(ctx, orgnr)
	if errors.Is(err, ErrNotRegistered) {
		return map[string][]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, want := range docTypes {
		for _, h := range have {
			if h != want {
				continue
			}
			ps, err := c.Processes(ctx, orgnr, want)
			if errors.Is(err, ErrNotRegistered) {
				break
			}
			if err != nil {
				return nil, err
			}
			out[want] = ps
			break
		}
	}
	return out, nil
}

func (c *Client) get(ctx context.Context, path string, into any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return fmt.Errorf("building elma request: %w", err)
	}
	req.Header.Set("Accept", "application/xml, text/xml")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return ErrNotRegistered
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("status %d: %w", resp.StatusCode, ErrUnavailable)
	}
	if err := xml.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(into); err != nil {
		return fmt.Errorf("decoding smp xml: %w: %w", ErrUnavailable, err)
	}
	return nil
}

package pakkesporing

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/integrasjonspunkt/events"
	"github.com/efm-go/efm/internal/logattr"
)

// Limits on one ingest request. The shipper sends at most 500 events or 1 MB
// (operations.md §5.4); these leave room without letting one client hog memory.
const (
	maxCompressedBytes   = 4 << 20
	maxUncompressedBytes = 8 << 20
	maxEventsPerBatch    = 5000
)

// maxClockSkew is how far in the future an event may claim to be.
const maxClockSkew = 24 * time.Hour

var oidOrganizationIdentifier = asn1.ObjectIdentifier{2, 5, 4, 97}

// ErrNoOrgNumber means the client certificate carries no organisation number
// in organizationIdentifier (SEID v2, "NTRNO-<orgnr>") or serialNumber (SEID v1).
var ErrNoOrgNumber = errors.New("client certificate carries no organisation number")

// ErrRevoked means the client certificate is on its issuer's revocation list.
var ErrRevoked = errors.New("client certificate is revoked")

// ErrBadCRL means a configured revocation list for the certificate's issuer
// is not signed by that issuer.
var ErrBadCRL = errors.New("revocation list not signed by the certificate's issuer")

// checkRevoked looks the leaf up on the revocation lists of its issuer.
func (s *Server) checkRevoked(chain []*x509.Certificate) error {
	if len(chain) < 2 {
		return nil
	}
	leaf, issuer := chain[0], chain[1]
	for _, crl := range s.cfg.CRLs {
		if !bytes.Equal(crl.RawIssuer, leaf.RawIssuer) {
			continue
		}
		if err := crl.CheckSignatureFrom(issuer); err != nil {
			return ErrBadCRL
		}
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
				return ErrRevoked
			}
		}
	}
	return nil
}

// CertificateOrgNumber reads the org number from a business certificate's
// subject: organizationIdentifier "NTRNO-<9 digits>" as SEID v2 carries it,
// else serialNumber holding the 9 digits as SEID v1 does.
func CertificateOrgNumber(cert *x509.Certificate) (string, error) {
	for _, n := range cert.Subject.Names {
		if !n.Type.Equal(oidOrganizationIdentifier) {
			continue
		}
		if v, ok := n.Value.(string); ok {
			if org, ok := strings.CutPrefix(v, "NTRNO-"); ok && ident.ValidOrgNumber(org) {
				return org, nil
			}
		}
	}
	if sn := cert.Subject.SerialNumber; ident.ValidOrgNumber(sn) {
		return sn, nil
	}
	return "", ErrNoOrgNumber
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

type apiError struct {
	Error string `json:"error"`
}

// ingest is POST /v1/events: gzip (or plain) NDJSON, one event per line.
//
// Events that fail the schema or the scan are refused one by one (422 naming
// the line and field; the others are stored, so the shipper deletes them).
// An event for an org the certificate does not speak for refuses the whole
// batch with 403 and stores nothing: that is a misconfigured installation,
// and the daemon should keep its events and go DEGRADED, not discard them.
func (s *Server) ingest(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		writeJSON(w, http.StatusUnauthorized, apiError{"a business certificate (mutual TLS) is required"})
		return
	}
	if err := s.checkRevoked(r.TLS.VerifiedChains[0]); err != nil {
		writeJSON(w, http.StatusForbidden, apiError{err.Error()})
		return
	}
	certOrg, err := CertificateOrgNumber(r.TLS.VerifiedChains[0][0])
	if err != nil {
		writeJSON(w, http.StatusForbidden, apiError{err.Error()})
		return
	}
	var body io.Reader = http.MaxBytesReader(w, r.Body, maxCompressedBytes)
	switch r.Header.Get("Content-Encoding") {
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{"body is not gzip"})
			return
		}
		defer zr.Close()
		body = zr
	case "", "identity":
	default:
		writeJSON(w, http.StatusUnsupportedMediaType, apiError{"content encoding must be gzip or identity"})
		return
	}
	raw, err := io.ReadAll(io.LimitReader(body, maxUncompressedBytes+1))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) || len(raw) > maxUncompressedBytes:
		writeJSON(w, http.StatusRequestEntityTooLarge, apiError{"batch too large"})
		return
	case err != nil:
		writeJSON(w, http.StatusBadRequest, apiError{"reading body failed"})
		return
	}

	var (
		batch    []stored
		rejected []events.RejectedEvent
		foreign  []events.RejectedEvent
	)
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 64<<10), maxUncompressedBytes)
	line := -1
	for sc.Scan() {
		line++
		if line >= maxEventsPerBatch {
			writeJSON(w, http.StatusRequestEntityTooLarge, apiError{"more than 5000 events in one batch"})
			return
		}
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		ev, err := events.Decode(text)
		if err != nil {
			rej := events.RejectedEvent{Line: line, Error: "schema: " + err.Error()}
			var fe *events.FieldError
			if errors.As(err, &fe) {
				rej.Field, rej.Error = fe.Field, fe.Reason
			} else if errors.Is(err, events.ErrSchemaVersion) {
				rej.Field = "schema_version"
			}
			rejected = append(rejected, rej)
			continue
		}
		h := ev.EventHeader()
		if hits := scan(text, ev); len(hits) > 0 {
			rejected = append(rejected, events.RejectedEvent{Line: line, EventID: safeID(h.EventID), Field: hits[0],
				Error: "holds an 11-digit number passing the national identity number checksum"})
			continue
		}
		// A clock far off would scatter events over months that retention
		// deletes at once or never: refuse it, naming the field.
		if now := s.cfg.Now(); h.OccurredAt.After(now.Add(maxClockSkew)) || h.OccurredAt.Before(now.AddDate(0, -RetentionMonths, 0)) {
			rejected = append(rejected, events.RejectedEvent{Line: line, EventID: safeID(h.EventID), Field: "occurred_at",
				Error: "outside the retention window or in the future"})
			continue
		}
		if !s.speaksFor(certOrg, h.OrgNr) {
			foreign = append(foreign, events.RejectedEvent{Line: line, EventID: safeID(h.EventID), Field: "orgnr",
				Error: "not the organisation of the client certificate"})
			continue
		}
		batch = append(batch, stored{ev: ev, body: slices.Clone(text)})
	}
	if err := sc.Err(); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{"malformed NDJSON"})
		return
	}
	if len(foreign) > 0 {
		s.log.WarnContext(ctx, "refused events for another organisation", slog.String("cert_orgnr", certOrg),
			slog.Int("count", len(foreign)))
		writeJSON(w, http.StatusForbidden, events.IngestResponse{Rejected: foreign})
		return
	}
	inserted, err := s.db.insertBatch(ctx, batch, s.cfg.Now())
	if err != nil {
		s.log.ErrorContext(ctx, "storing events", logattr.Err(err))
		writeJSON(w, http.StatusServiceUnavailable, apiError{"storage unavailable, retry"})
		return
	}
	resp := events.IngestResponse{Accepted: inserted, Duplicates: len(batch) - inserted, Rejected: rejected}
	if len(rejected) > 0 {
		s.log.WarnContext(ctx, "rejected events", slog.String("cert_orgnr", certOrg), slog.Int("count", len(rejected)))
		writeJSON(w, http.StatusUnprocessableEntity, resp)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// scan is events.Scan with a fast path: when the raw line has no 11-digit
// run passing the checksum and no \u escape (which could spell digits),
// no decoded field can hold one either.
func scan(raw []byte, ev events.Event) []string {
	if !bytes.Contains(raw, []byte(`\u`)) && !events.ContainsPersonNumber(string(raw)) {
		return nil
	}
	return events.Scan(ev)
}

// safeID is the event id for an answer, unless the id itself trips the scan
// (then the answer names the line only).
func safeID(id string) string {
	if events.ContainsPersonNumber(id) {
		return ""
	}
	return id
}

// speaksFor reports whether a certificate of certOrg may send events whose
// orgnr is org: its own, or one registered as på-vegne-av for it.
func (s *Server) speaksFor(certOrg, org string) bool {
	return org == certOrg || slices.Contains(s.cfg.OnBehalfOf[certOrg], org)
}

// schemaListing is /v1/schema: the versions daemons may send (operations.md §6 rule 8).
type schemaListing struct {
	Current   int      `json:"current"`
	Supported []int    `json:"supported"`
	Types     []string `json:"types"`
}

func (s *Server) schema(w http.ResponseWriter, r *http.Request) {
	l := schemaListing{Current: events.SchemaVersion, Supported: events.SupportedVersions}
	for _, t := range events.Types {
		l.Types = append(l.Types, string(t))
	}
	writeJSON(w, http.StatusOK, l)
}

package keystore

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"
	"time"
)

// Health is a component state as /manage/health reports it (operations.md §2).
type Health string

const (
	Up       Health = "UP"
	Degraded Health = "DEGRADED"
	Down     Health = "DOWN"
)

// Severity grades a DEGRADED certificate: warn under 30 days to expiry, critical under 7.
type Severity string

const (
	SeverityNone     Severity = ""
	SeverityWarn     Severity = "warn"
	SeverityCritical Severity = "critical"
)

// Expiry thresholds from operations.md §2 (health table, component certificate).
const (
	WarnBefore     = 30 * 24 * time.Hour
	CriticalBefore = 7 * 24 * time.Hour
)

// CertCheck is the result of CheckCertificate, shaped for the health endpoint and the status
// page: a state, the reasons, and the facts behind them.
type CertCheck struct {
	Status   Health   `json:"status"`
	Severity Severity `json:"severity,omitempty"`
	// Reasons are short, operator-facing sentences ("certificate expired 2026-03-01").
	Reasons   []string  `json:"reasons,omitempty"`
	Subject   string    `json:"subject"`
	Serial    string    `json:"serial"`
	OrgNumber string    `json:"orgNumber,omitempty"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	// DaysLeft is whole days until NotAfter, negative once expired.
	DaysLeft int `json:"daysLeft"`
}

// CheckOptions steer CheckCertificate.
type CheckOptions struct {
	// Now defaults to time.Now().
	Now time.Time
	// Roots, when set, must anchor the chain (SANDBOX mode: the test CA; TEST/PRODUCTION:
	// the Norwegian business-certificate CAs).
	Roots *x509.CertPool
	// Intermediates help build the chain.
	Intermediates []*x509.Certificate
	// OrgNumber, when set, must be the organisation the certificate names.
	OrgNumber string
}

// CheckCertificate checks validity window, expiry distance, key usage, organisation and
// (optionally) chain. It never fails: every problem is a reason in the result.
func CheckCertificate(cert *x509.Certificate, opts CheckOptions) CertCheck {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	org, _ := OrgNumber(cert)
	c := CertCheck{
		Status:    Up,
		Subject:   cert.Subject.String(),
		Serial:    cert.SerialNumber.String(),
		OrgNumber: org,
		NotBefore: cert.NotBefore,
		NotAfter:  cert.NotAfter,
		DaysLeft:  int(cert.NotAfter.Sub(now).Hours() / 24),
	}
	if cert.NotAfter.Before(now) {
		c.DaysLeft = -int(now.Sub(cert.NotAfter).Hours()/24) - 1
	}
	down := func(format string, args ...any) {
		c.Status = Down
		c.Severity = SeverityCritical
		c.Reasons = append(c.Reasons, fmt.Sprintf(format, args...))
	}
	degrade := func(sev Severity, format string, args ...any) {
		if c.Status != Down {
			c.Status = Degraded
			if c.Severity != SeverityCritical {
				c.Severity = sev
			}
		}
		c.Reasons = append(c.Reasons, fmt.Sprintf(format, args...))
	}
	switch left := cert.NotAfter.Sub(now); {
	case now.Before(cert.NotBefore):
		down("certificate not valid before %s", cert.NotBefore.Format(time.DateOnly))
	case left < 0:
		down("certificate expired %s", cert.NotAfter.Format(time.DateOnly))
	case left < CriticalBefore:
		degrade(SeverityCritical, "certificate expires %s, in %d days", cert.NotAfter.Format(time.DateOnly), c.DaysLeft)
	case left < WarnBefore:
		degrade(SeverityWarn, "certificate expires %s, in %d days", cert.NotAfter.Format(time.DateOnly), c.DaysLeft)
	}
	// The certificate signs everything the integration point sends (ASiC, JWS, Maskinporten
	// grants), so it must allow signatures. Receiving needs key encipherment too, but
	// senders do not check usages before encrypting, so its absence is a warning only.
	if cert.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		down("certificate key usage does not allow signing")
	}
	if cert.KeyUsage&(x509.KeyUsageKeyEncipherment|x509.KeyUsageDataEncipherment) == 0 {
		degrade(SeverityWarn, "certificate key usage does not allow key encipherment; incoming encrypted messages may fail")
	}
	if opts.OrgNumber != "" && org != opts.OrgNumber {
		down("certificate is for organisation %q, not %s", org, opts.OrgNumber)
	}
	if opts.Roots != nil {
		inter := x509.NewCertPool()
		for _, ic := range opts.Intermediates {
			inter.AddCert(ic)
		}
		if _, err := cert.Verify(x509.VerifyOptions{
			Roots: opts.Roots, Intermediates: inter, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		}); err != nil {
			down("certificate chain not trusted: %v", err)
		}
	}
	return c
}

var oidOrganizationIdentifier = asn1.ObjectIdentifier{2, 5, 4, 97}

// OrgNumber returns the organisation number a Norwegian business certificate names: the
// organizationIdentifier "NTRNO-<orgnr>" of SEID v2, or the subject serialNumber of SEID v1.
func OrgNumber(cert *x509.Certificate) (string, bool) {
	return orgNumberFromName(cert.Subject)
}

func orgNumberFromName(n pkix.Name) (string, bool) {
	for _, a := range n.Names {
		if a.Type.Equal(oidOrganizationIdentifier) {
			if s, ok := a.Value.(string); ok && strings.HasPrefix(s, "NTRNO-") && nineDigits(s[6:]) {
				return s[6:], true
			}
		}
	}
	if nineDigits(n.SerialNumber) {
		return n.SerialNumber, true
	}
	return "", false
}

func nineDigits(s string) bool {
	if len(s) != 9 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Package pakkesporingtest runs a real pakkesporing on a loopback TLS port
// for tests, with a throwaway CA that issues the server certificate and
// SEID-like business certificates for any organisation number, the way
// net/http/httptest runs a real server.
//
// The sandbox uses packaging/testpki for its certificates instead; this
// package is for unit and integration tests that want no files.
package pakkesporingtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/efm-go/efm/pakkesporing"
)

// CA is a throwaway certificate authority.
type CA struct {
	Cert *x509.Certificate
	Pool *x509.CertPool
	key  *ecdsa.PrivateKey
}

// NewCA makes a CA valid for a day around now.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generating CA key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pakkesporingtest CA", Organization: []string{"Test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("creating CA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parsing CA: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{Cert: cert, Pool: pool, key: key}
}

var oidOrganizationIdentifier = asn1.ObjectIdentifier{2, 5, 4, 97}

var serial = struct {
	sync.Mutex
	n int64
}{n: 100}

func (ca *CA) issue(t testing.TB, subject pkix.Name, usage x509.ExtKeyUsage, ips []net.IP, dns []string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generating key: %v", err)
	}
	serial.Lock()
	serial.n++
	sn := serial.n
	serial.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(sn),
		Subject:      subject,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  ips,
		DNSNames:     dns,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("issuing certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parsing certificate: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// RevocationList is a CRL signed by the CA that revokes certs.
func (ca *CA) RevocationList(t testing.TB, certs ...tls.Certificate) *x509.RevocationList {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, c := range certs {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: c.Leaf.SerialNumber, RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour),
		RevokedCertificateEntries: entries,
	}, ca.Cert, ca.key)
	if err != nil {
		t.Fatalf("creating CRL: %v", err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("parsing CRL: %v", err)
	}
	return crl
}

// ServerCert issues a server certificate for 127.0.0.1 and localhost.
func (ca *CA) ServerCert(t testing.TB) tls.Certificate {
	return ca.issue(t, pkix.Name{CommonName: "localhost"}, x509.ExtKeyUsageServerAuth,
		[]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, []string{"localhost"})
}

// BusinessCert issues a SEID v2-like business certificate for org:
// organizationIdentifier NTRNO-<org> and serialNumber <org>.
func (ca *CA) BusinessCert(t testing.TB, org string) tls.Certificate {
	return ca.issue(t, pkix.Name{
		CommonName: "Test org " + org, Organization: []string{"Test org " + org}, Country: []string{"NO"},
		SerialNumber: org,
		ExtraNames:   []pkix.AttributeTypeAndValue{{Type: oidOrganizationIdentifier, Value: "NTRNO-" + org}},
	}, x509.ExtKeyUsageClientAuth, nil, nil)
}

// SEIDv1Cert issues a SEID v1-like certificate: the org number only in serialNumber.
func (ca *CA) SEIDv1Cert(t testing.TB, org string) tls.Certificate {
	return ca.issue(t, pkix.Name{CommonName: "Test org " + org, SerialNumber: org, Country: []string{"NO"}},
		x509.ExtKeyUsageClientAuth, nil, nil)
}

// Token is the query credential every Instance uses.
const Token = "pakkesporingtest-query-token"

// Instance is a running pakkesporing.
type Instance struct {
	*pakkesporing.Server
	CA     *CA
	URL    string // https://127.0.0.1:port
	Addr   string
	DBPath string

	cfg    pakkesporing.Config
	cancel context.CancelFunc
	done   chan error
}

// Options tune New; the zero value is fine.
type Options struct {
	// CA to reuse (so restarted instances accept the same clients); nil makes one.
	CA *CA
	// DBPath to reuse across restarts; empty makes one in t.TempDir().
	DBPath string
	// Addr to listen on; empty picks a free port.
	Addr string
	// Config fields to carry over; DBPath, ClientCAs and QueryToken are set by New.
	Config pakkesporing.Config
	// Middleware wraps the real handler, for injecting faults (a lost
	// answer, a proxy's bare 400) in front of it; nil serves it as is.
	Middleware func(http.Handler) http.Handler
}

// New starts a pakkesporing on loopback and stops it at t's cleanup.
func New(t testing.TB, opts Options) *Instance {
	t.Helper()
	if opts.CA == nil {
		opts.CA = NewCA(t)
	}
	if opts.DBPath == "" {
		opts.DBPath = filepath.Join(t.TempDir(), "pakkesporing.db")
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	cfg := opts.Config
	cfg.DBPath, cfg.ClientCAs, cfg.QueryToken = opts.DBPath, opts.CA.Pool, Token
	srv, err := pakkesporing.New(cfg)
	if err != nil {
		t.Fatalf("starting pakkesporing: %v", err)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		srv.Close()
		t.Fatalf("listening: %v", err)
	}
	in := &Instance{Server: srv, CA: opts.CA, Addr: ln.Addr().String(), DBPath: opts.DBPath, cfg: cfg,
		done: make(chan error, 1)}
	in.URL = "https://" + in.Addr
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	ln = tls.NewListener(ln, srv.TLSConfig(opts.CA.ServerCert(t)))
	if opts.Middleware == nil {
		go func() { in.done <- srv.Serve(ctx, ln) }()
	} else {
		hs := &http.Server{Handler: opts.Middleware(srv.Handler()), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			go func() {
				<-ctx.Done()
				hs.Close()
			}()
			err := hs.Serve(ln)
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			in.done <- err
		}()
	}
	t.Cleanup(func() { in.Stop(t) })
	return in
}

// Stop shuts the server down and closes its database; calling it twice is fine.
func (in *Instance) Stop(t testing.TB) {
	if in.cancel == nil {
		return
	}
	in.cancel()
	in.cancel = nil
	if err := <-in.done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("pakkesporing stopped with %v", err)
	}
	if err := in.Server.Close(); err != nil {
		t.Errorf("closing pakkesporing: %v", err)
	}
}

// Client is an HTTP client presenting org's business certificate.
func (in *Instance) Client(t testing.TB, org string) *http.Client {
	return clientWith(in.CA, in.CA.BusinessCert(t, org))
}

// OpsClient trusts the server and presents no certificate (the query API
// and web page authenticate with Token).
func (in *Instance) OpsClient() *http.Client {
	return clientWith(in.CA, tls.Certificate{})
}

func clientWith(ca *CA, cert tls.Certificate) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}
	if cert.Certificate != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

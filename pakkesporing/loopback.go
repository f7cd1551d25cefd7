package pakkesporing

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// Loopback is a pakkesporing running in process on 127.0.0.1, as the
// sandbox runs it: what /manage/sandbox lists and what the daemon ships to.
type Loopback struct {
	*Server
	// BaseURL is https://127.0.0.1:<port>; the daemon's efm.events.url.
	BaseURL string
	// QueryToken is the query API's credential (Bearer, or Basic password
	// for the web page).
	QueryToken string
	// RootCAs trusts the self-signed server certificate; RootPEM is the
	// same certificate PEM-encoded, for a daemon configured from files.
	RootCAs *x509.CertPool
	RootPEM []byte

	cancel context.CancelFunc
	done   chan error
}

// StartLoopback starts cfg's pakkesporing on a free loopback port with a
// fresh self-signed server certificate, and a random query token when
// cfg.QueryToken is empty. cfg.ClientCAs must trust the daemons' business
// certificates (the sandbox's test CA). Close stops it.
func StartLoopback(ctx context.Context, cfg Config) (*Loopback, error) {
	if cfg.QueryToken == "" {
		var b [24]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("making query token: %w", err)
		}
		cfg.QueryToken = base64.RawURLEncoding.EncodeToString(b[:])
	}
	cert, err := selfSignedLoopbackCert()
	if err != nil {
		return nil, err
	}
	srv, err := New(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("listening on loopback: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	ctx, cancel := context.WithCancel(ctx)
	l := &Loopback{
		Server: srv, BaseURL: "https://" + ln.Addr().String(), QueryToken: cfg.QueryToken,
		RootCAs: pool, RootPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Leaf.Raw}),
		cancel: cancel, done: make(chan error, 1),
	}
	go func() { l.done <- srv.Serve(ctx, tls.NewListener(ln, srv.TLSConfig(cert))) }()
	return l, nil
}

// Close stops the server and closes its database.
func (l *Loopback) Close() error {
	l.cancel()
	err := <-l.done
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return errors.Join(err, l.Server.Close())
}

// selfSignedLoopbackCert is valid for 127.0.0.1, ::1 and localhost for a
// year: the sandbox's central log needs TLS (ingest reads the client
// certificate) but no public name.
func selfSignedLoopbackCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generating loopback key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generating loopback serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "pakkesporing sandbox", Organization: []string{"sandbox"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("creating loopback certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("parsing loopback certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

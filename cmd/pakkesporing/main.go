// Command pakkesporing runs the central package-tracking log
// (spec/operations.md §5.4): ingest over mutual TLS, 24-month retention,
// the query API and web page for central operations, and e-mail alerts.
//
//	pakkesporing run --addr :8443 --db /var/lib/pakkesporing/events.db \
//	    --tls-cert server.pem --tls-key server.key --client-ca seid-roots.pem \
//	    --query-token-file token [--smtp-addr mail:25 --smtp-from ...] [--contacts contacts.csv]
//	pakkesporing retention --db ...   # one retention run, then exit
//
// The logic lives in package pakkesporing; this file only reads flags.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/csv"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/efm-go/efm/internal/buildinfo"
	"github.com/efm-go/efm/internal/logattr"
	"github.com/efm-go/efm/pakkesporing"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pakkesporing:", err)
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// errUsage is returned for a missing or unknown subcommand.
var errUsage = errors.New("usage: pakkesporing run|retention|version [flags]")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	switch args[0] {
	case "version":
		fmt.Fprintf(stdout, "pakkesporing %s (commit %s, %s)\n", buildinfo.Version, buildinfo.CommitOrVCS(), buildinfo.GoVersion())
		return nil
	case "run", "retention":
	default:
		return errUsage
	}
	fs := flag.NewFlagSet("pakkesporing "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		addr       = fs.String("addr", ":8443", "listen address (TLS)")
		dbPath     = fs.String("db", "pakkesporing.db", "SQLite database file")
		certFile   = fs.String("tls-cert", "", "server certificate (PEM)")
		keyFile    = fs.String("tls-key", "", "server private key (PEM)")
		caFile     = fs.String("client-ca", "", "roots of accepted business certificates (PEM bundle)")
		tokenFile  = fs.String("query-token-file", "", "file holding the query API credential (or env PAKKESPORING_QUERY_TOKEN)")
		smtpAddr   = fs.String("smtp-addr", "", "SMTP server host:port for alerts; empty disables e-mail")
		smtpFrom   = fs.String("smtp-from", "", "sender address of alert e-mails")
		smtpUser   = fs.String("smtp-user", "", "SMTP user (PLAIN auth; TLS or localhost only)")
		smtpPWFile = fs.String("smtp-password-file", "", "file holding the SMTP password")
		contacts   = fs.String("contacts", "", "CSV file of orgnr,e-mail alert contacts")
		opsEmail   = fs.String("operations-email", "", "e-mail of central operations")
		crlFiles   stringList
	)
	fs.Var(&crlFiles, "crl", "revocation list of a business certificate CA (PEM or DER); repeatable. Restart to reload")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	log := slog.New(logattr.OneComponent(slog.NewJSONHandler(stderr, nil)))

	cfg := pakkesporing.Config{
		DBPath: *dbPath, Addr: *addr, OperationsEmail: *opsEmail, Logger: log,
		SMTP: pakkesporing.SMTPConfig{Addr: *smtpAddr, From: *smtpFrom, Username: *smtpUser},
	}
	var errs []error
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading --client-ca: %w", err))
		} else {
			cfg.ClientCAs = x509.NewCertPool()
			if !cfg.ClientCAs.AppendCertsFromPEM(pem) {
				errs = append(errs, fmt.Errorf("--client-ca %s holds no PEM certificate", *caFile))
			}
		}
	}
	cfg.QueryToken = os.Getenv("PAKKESPORING_QUERY_TOKEN")
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading --query-token-file: %w", err))
		}
		cfg.QueryToken = strings.TrimSpace(string(b))
	}
	if *smtpPWFile != "" {
		b, err := os.ReadFile(*smtpPWFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading --smtp-password-file: %w", err))
		}
		cfg.SMTP.Password = strings.TrimSpace(string(b))
	}
	for _, f := range crlFiles {
		crl, err := readCRL(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cfg.CRLs = append(cfg.CRLs, crl)
	}
	if *contacts != "" {
		c, err := readContacts(*contacts)
		if err != nil {
			errs = append(errs, err)
		}
		cfg.Contacts = c
	}
	if args[0] == "run" {
		if *certFile == "" || *keyFile == "" {
			errs = append(errs, errors.New("--tls-cert and --tls-key are required"))
		} else if cert, err := tls.LoadX509KeyPair(*certFile, *keyFile); err != nil {
			errs = append(errs, fmt.Errorf("loading server certificate: %w", err))
		} else {
			cfg.TLSCertificate = &cert
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}

	srv, err := pakkesporing.New(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	if args[0] == "retention" {
		res, err := srv.RunRetention(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "retention: cutoff %s, %d events, %d conversations, %d installations deleted, %d partitions dropped\n",
			res.Cutoff.Format("2006-01-02"), res.EventsDeleted, res.ConversationsDeleted, res.InstallationsDeleted, res.PartitionsDropped)
		return nil
	}
	log.Info("pakkesporing starting", slog.String("addr", *addr), slog.String("version", buildinfo.Version))
	return srv.Run(ctx)
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// readCRL reads one revocation list, PEM ("X509 CRL") or DER.
func readCRL(path string) (*x509.RevocationList, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading --crl: %w", err)
	}
	if block, _ := pem.Decode(b); block != nil {
		b = block.Bytes
	}
	crl, err := x509.ParseRevocationList(b)
	if err != nil {
		return nil, fmt.Errorf("parsing --crl %s: %w", path, err)
	}
	return crl, nil
}

// readContacts reads "orgnr,e-mail" lines; '#' starts a comment line.
func readContacts(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading --contacts: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comment = '#'
	r.FieldsPerRecord = 2
	r.TrimLeadingSpace = true
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("reading --contacts %s: %w", path, err)
	}
	out := make(map[string]string, len(recs))
	for _, rec := range recs {
		out[strings.TrimSpace(rec[0])] = strings.TrimSpace(rec[1])
	}
	return out, nil
}

package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/addressing/sr"
	"github.com/efm-go/efm/integrasjonspunkt/config"
	"github.com/efm-go/efm/internal/logattr"
	"github.com/efm-go/efm/packaging/cms"
	"github.com/efm-go/efm/packaging/keystore"
	"github.com/efm-go/efm/packaging/maskinporten"
	"github.com/efm-go/efm/transport/dpf"
)

// ksTokens asks Maskinporten for scope ks:fiks acting for the sending org
// (channels.md §1.7).
type ksTokens struct{ mp *maskinporten.Client }

func (t ksTokens) Token(ctx context.Context, org string) (string, error) {
	tok, err := t.mp.Token(ctx, maskinporten.Request{Scopes: []string{"ks:fiks"}, ConsumerOrg: org})
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

// dpfRegistration builds DPF from difi.move.fiks.* (channels.md §5). An
// error names what is missing; the daemon then refuses DPF messages at the
// API rather than accepting what it cannot send.
func dpfRegistration(cfg *config.Config, mp *maskinporten.Client, src *sr.Client, ks *keystore.Keystore, packer Packer, log *slog.Logger) (Registration, *ShipmentTypes, error) {
	var out SvarUt
	switch typ := strings.ToLower(cfg.Value("difi.move.fiks.ut.type")); typ {
	case "rest":
		c, err := dpf.NewREST(dpf.RESTConfig{BaseURL: cfg.Value("difi.move.fiks.ut.rest.endpointUrl"),
			KontoID: cfg.Value("difi.move.fiks.ut.rest.kontoid"), IntegrasjonID: cfg.Value("difi.move.fiks.ut.rest.integrasjonId"),
			IntegrasjonPassord: cfg.Value("difi.move.fiks.ut.rest.integrasjonPassord"), Tokens: ksTokens{mp}})
		if err != nil {
			return Registration{}, nil, fmt.Errorf("configuring svarut rest: %w", err)
		}
		out = c
	case "ws", "":
		c, err := soapClient(cfg)
		if err != nil {
			return Registration{}, nil, err
		}
		log.Warn("DPF sends over SvarUt SOAP (difi.move.fiks.ut.type=ws, the reference's default); KS ends the SOAP service at the end of 2026: set difi.move.fiks.ut.type=rest",
			logattr.Key("difi.move.fiks.ut.type"))
		out = c
	default:
		return Registration{}, nil, fmt.Errorf("difi.move.fiks.ut.type %q: want ws or rest", typ)
	}
	kt := cms.RSAESOAEP
	if strings.EqualFold(cfg.Value("difi.move.org.keystore.lockProvider"), "true") {
		kt = cms.RSAESPKCS1v15
	}
	var excl []string
	for _, e := range strings.Split(cfg.Value("difi.move.fiks.ut.ekskluderes-fra-print"), ",") {
		if e = strings.TrimSpace(e); e != "" {
			excl = append(excl, e)
		}
	}
	ch := DPF{Out: out, OwnOrg: cfg.OrgNumber, Kryptert: cfg.Value("difi.move.fiks.kryptert") != "false",
		Konteringskode: cfg.Value("difi.move.fiks.ut.konteringsKode"), KunDigitalLevering: cfg.Value("difi.move.fiks.ut.kun-digital-levering") == "true",
		EkskluderesFraPrint: excl, KeyTransport: kt,
		SenderInfo: func(ctx context.Context, org string) (*sr.InfoRecord, error) {
			id, err := ident.Policy{}.ParseID(org)
			if err != nil {
				return nil, err
			}
			return src.Info(ctx, id)
		}}
	reg := Registration{Channel: ch, Tracker: ch, DeliveredOnSend: true, ReceiptOn: "LEST",
		Packaging:    DPFPackaging(cfg.Size("difi.move.fiks.ut.upload-size-limit", 1<<30)),
		PollInterval: cfg.Duration("difi.move.nextmove.statusPollingInterval", time.Minute)}
	if v := cfg.Duration(KeyPollInterval, 0); v > 0 {
		reg.PollInterval = v
	}
	if cfg.Value("difi.move.fiks.inn.enable") != "false" {
		in, err := dpfInbox(cfg, ks, packer, log)
		if err != nil {
			return Registration{}, nil, err
		}
		reg.Inbox = in
		reg.InboxInterval = cfg.Duration("difi.move.fiks.pollingrate", 15*time.Minute)
		if v := cfg.Duration(KeyPollInterval, 0); v > 0 {
			reg.InboxInterval = v
		}
	}
	return reg, &ShipmentTypes{Out: out}, nil
}

// dpfInbox builds the SvarInn side: the own receiving system and one per
// difi.move.fiks.inn.paa-vegne-av.<orgnr>.username/password.
func dpfInbox(cfg *config.Config, ks *keystore.Keystore, packer Packer, log *slog.Logger) (DPFInbox, error) {
	key, cert := ks.Key, ks.Cert
	if p := cfg.Value("difi.move.fiks.keystore.path"); p != "" {
		fks, err := keystore.Load(keystore.Config{Path: p, Alias: cfg.Value("difi.move.fiks.keystore.alias"),
			Password: cfg.Value("difi.move.fiks.keystore.password"), Type: keystore.Type(cfg.Value("difi.move.fiks.keystore.type"))})
		if err != nil {
			return DPFInbox{}, fmt.Errorf("loading the fiks keystore (difi.move.fiks.keystore.*): %w", err)
		}
		key, cert = fks.Key, fks.Cert
	}
	base := cfg.Value("difi.move.fiks.inn.baseUrl")
	own, err := dpf.NewSvarInn(dpf.SvarInnConfig{BaseURL: base, Username: cfg.Value("difi.move.fiks.inn.username"),
		Password: cfg.Value("difi.move.fiks.inn.password"), Timeout: 30 * time.Second})
	if err != nil {
		return DPFInbox{}, fmt.Errorf("configuring svarinn: %w", err)
	}
	in := DPFInbox{In: []*dpf.SvarInn{own}, Key: key, Cert: cert, Packer: packer, OwnCert: ks.Cert, OwnOrg: cfg.OrgNumber,
		FallbackSender: cfg.Value("difi.move.fiks.inn.fallback-sender-org-nr"), Process: cfg.Value("difi.move.fiks.inn.process"),
		DocumentType: cfg.Value("difi.move.fiks.inn.document-type"), MaxSize: cfg.Size("difi.move.fiks.ut.upload-size-limit", 1<<30),
		TempDir: os.TempDir(), Logger: log}
	for _, e := range cfg.Effective() {
		k := strings.ToLower(e[0])
		rest, ok := strings.CutPrefix(k, "difi.move.fiks.inn.paa-vegne-av.")
		if !ok || !strings.HasSuffix(rest, ".username") {
			continue
		}
		org := strings.TrimSuffix(rest, ".username")
		c, err := dpf.NewSvarInn(dpf.SvarInnConfig{BaseURL: base, Username: cfg.Value(e[0]),
			Password: cfg.Value("difi.move.fiks.inn.paa-vegne-av." + org + ".password"), Timeout: 30 * time.Second})
		if err != nil {
			return DPFInbox{}, fmt.Errorf("configuring svarinn for %s: %w", org, err)
		}
		in.In = append(in.In, c)
	}
	if in.Key == nil || in.OwnCert == nil {
		return DPFInbox{}, errors.New("svarinn needs a keystore with key and certificate")
	}
	return in, nil
}

// soapClient builds the SvarUt SOAP client with the own account and one per
// difi.move.fiks.ut.paa-vegne-av.<orgnr>.username/password (§5.1).
func soapClient(cfg *config.Config) (*dpf.SOAPClient, error) {
	u := cfg.Value("difi.move.fiks.ut.ws.endpointUrl")
	if u == "" && cfg.Value("difi.move.fiks.ut.endpointUrl") != "" {
		u = strings.TrimRight(cfg.Value("difi.move.fiks.ut.endpointUrl"), "/") + dpf.SOAPPath
	}
	accounts := map[string]dpf.Credentials{}
	if n := cfg.Value("difi.move.fiks.ut.username"); n != "" {
		accounts[cfg.OrgNumber] = dpf.Credentials{Username: n, Password: cfg.Value("difi.move.fiks.ut.password")}
	}
	for _, e := range cfg.Effective() {
		rest, ok := strings.CutPrefix(strings.ToLower(e[0]), "difi.move.fiks.ut.paa-vegne-av.")
		if !ok || !strings.HasSuffix(rest, ".username") {
			continue
		}
		org := strings.TrimSuffix(rest, ".username")
		accounts[org] = dpf.Credentials{Username: cfg.Value(e[0]), Password: cfg.Value("difi.move.fiks.ut.paa-vegne-av." + org + ".password")}
	}
	c, err := dpf.NewSOAP(dpf.SOAPConfig{URL: u, Accounts: accounts})
	if err != nil {
		return nil, fmt.Errorf("configuring svarut soap: %w", err)
	}
	return c, nil
}

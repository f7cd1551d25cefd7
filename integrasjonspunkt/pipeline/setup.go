package pipeline

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/efm-go/efm/addressing"
	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/addressing/krr"
	"github.com/efm-go/efm/addressing/sr"
	"github.com/efm-go/efm/integrasjonspunkt/config"
	"github.com/efm-go/efm/integrasjonspunkt/message"
	"github.com/efm-go/efm/internal/logattr"
	"github.com/efm-go/efm/packaging/keystore"
	"github.com/efm-go/efm/packaging/maskinporten"
	"github.com/efm-go/efm/transport"
	"github.com/efm-go/efm/transport/altinn"
	"github.com/efm-go/efm/transport/dpe"
	"github.com/efm-go/efm/transport/dpo"
	"github.com/efm-go/efm/transport/dpv"
)

// Keys the pipeline reads besides the reference's. They tune the sandbox and
// the tests; production keeps the defaults of channels.md §1.3 and §1.6.
const (
	// KeyBackoff is the redelivery schedule, comma-separated durations
	// (default 20s,60s,3m,9m,27m,1h).
	KeyBackoff = "efm.pipeline.backoff"
	// KeyPollInterval overrides the fixed 15 s of the DPO inbox poll.
	KeyPollInterval = "efm.pipeline.poll-interval"
	// KeyReplyInterval is how often owed status replies are sent (default 5s).
	KeyReplyInterval = "efm.pipeline.reply-interval"
	// KeySweep is how often, and KeySweepGrace after how long, queued
	// messages the queue did not deliver are taken by the pipeline itself
	// (defaults 1m and 1m; see Config.Unfinished).
	KeySweep      = "efm.pipeline.sweep-interval"
	KeySweepGrace = "efm.pipeline.sweep-grace"
	// KeyTrustAnchors is a PEM file of the CAs incoming signatures must chain
	// to; default the system pool. The sandbox points it at its test CA
	// (the SANDBOX certificate mode of channels.md §1.8).
	KeyTrustAnchors = "efm.pipeline.trust-anchors"
	// KeyStatusBackoffThreshold and KeyStatusBackoffMax override, as
	// durations, the reference's statusPollingBackoffThresholdDays and
	// statusPollingBackoffMaxIntervalMinutes (channels.md §1.6) so tests can
	// watch the back-off in seconds.
	KeyStatusBackoffThreshold = "efm.pipeline.status-backoff-threshold"
	KeyStatusBackoffMax       = "efm.pipeline.status-backoff-max"
)

// Wiring is what the daemon builds from its configuration: the resolver the
// local API and the pipeline share, and the pipeline's parts.
type Wiring struct {
	Resolver *addressing.Resolver
	Keystore *keystore.Keystore
	Packer   *ASiCPacker
	Channels map[string]Registration
	// Problems are the enabled channels that could not be set up, each with
	// what is missing: the local API refuses their messages with 400.
	Problems map[string]error
	// ShipmentTypes lists SvarUt's shipment types when DPF is set up.
	ShipmentTypes *ShipmentTypes
	// Common are the checks of the parts every channel needs: Maskinporten,
	// the Service Registry, KRR when configured.
	Common   []Probe
	settings Config
}

// ErrNoRegistry means no service registry is configured: the daemon then
// accepts nothing for sending and runs no pipeline.
var ErrNoRegistry = errors.New("no service registry configured (difi.move.serviceregistryEndpoint)")

// FromConfig builds the resolver, the packer and the enabled channels the
// way the reference reads its properties, with the keystore the daemon has
// already opened (ksErr is why it could not). It makes no network calls:
// tokens are fetched on first use.
func FromConfig(cfg *config.Config, ks *keystore.Keystore, ksErr error, log *slog.Logger) (*Wiring, error) {
	if cfg.Value("difi.move.serviceregistryEndpoint") == "" {
		return nil, ErrNoRegistry
	}
	if ksErr != nil {
		return nil, fmt.Errorf("loading keystore (difi.move.org.keystore.*): %w", ksErr)
	}
	clientID := cfg.Value("difi.move.oidc.clientId")
	if clientID == "" {
		clientID = "MOVE_IP_" + cfg.OrgNumber
	}
	mp, err := maskinporten.New(maskinporten.Config{TokenURL: cfg.Value("difi.move.oidc.url"), Audience: cfg.Value("difi.move.oidc.audience"),
		ClientID: clientID, Key: ks.Key, Cert: ks.Cert})
	if err != nil {
		return nil, fmt.Errorf("configuring maskinporten (difi.move.oidc.*): %w", err)
	}
	srScopes := srScopes(cfg)
	src, err := sr.New(sr.Config{BaseURL: cfg.Value("difi.move.serviceregistryEndpoint"), JWKURL: cfg.Value("difi.move.sign.jwkUrl"),
		// The registry returns DPH records only with beta features on (addressing.md §3.1).
		BetaFeatures:   cfg.Value("difi.move.feature.enableBetaFeatures") == "true",
		DisableSigning: cfg.Value("difi.move.sign.enable") == "false",
		Token:          func(ctx context.Context) (string, error) { return mp.AccessToken(ctx, srScopes...) }})
	if err != nil {
		return nil, fmt.Errorf("configuring the service registry client: %w", err)
	}
	acfg := addressing.Config{SR: src, Policy: ident.Policy{AllowSynthetic: cfg.SyntheticOK}, Logger: log,
		EnabledServices: map[string]bool{}, DefaultProcess: cfg.Value("difi.move.arkivmelding.default-process")}
	for _, ch := range cfg.Enabled {
		acfg.EnabledServices[ch] = true
	}
	if u := cfg.Value("difi.move.dpi.krr-print-url"); u != "" {
		if acfg.KRR, err = krr.New(krr.Config{BaseURL: strings.TrimSuffix(u, "/rest/v2/printSertifikat"), PrintURL: u}); err != nil {
			return nil, fmt.Errorf("configuring krr: %w", err)
		}
	}
	res, err := addressing.New(acfg)
	if err != nil {
		return nil, fmt.Errorf("configuring the resolver: %w", err)
	}
	var roots *x509.CertPool
	if p := cfg.Value(KeyTrustAnchors); p != "" {
		pem, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", KeyTrustAnchors, err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s %s: no PEM certificates", KeyTrustAnchors, p)
		}
	}
	packer, err := NewASiCPacker(ks, roots)
	if err != nil {
		return nil, err
	}
	w := &Wiring{Resolver: res, Keystore: ks, Packer: packer, Channels: map[string]Registration{}, Problems: map[string]error{},
		Common: commonChecks(cfg, mp, srScopes, src, acfg.KRR)}
	poll := cfg.Duration(KeyPollInterval, 15*time.Second)
	if cfg.Enables("DPO") {
		ch, err := dpoChannel(cfg, mp, log)
		if err != nil {
			return nil, err
		}
		w.Channels["DPO"] = Registration{Channel: ch, Inbox: ch, PollInterval: poll,
			Packaging: DPOPackaging(cfg.Size("difi.move.dpo.upload-size-limit", 1<<30)), Checks: ch.checks()}
	}
	if cfg.Enables("DPV") {
		ch, err := dpvChannel(cfg, mp)
		if err != nil {
			return nil, err
		}
		w.Channels["DPV"] = Registration{Channel: ch, Tracker: ch, Packaging: DPVPackaging(), Checks: ch.checks(),
			PollInterval: cfg.Duration("difi.move.nextmove.statusPollingInterval", time.Minute)}
		if v := cfg.Duration(KeyPollInterval, 0); v > 0 {
			r := w.Channels["DPV"]
			r.PollInterval = v
			w.Channels["DPV"] = r
		}
	}
	if cfg.Enables("DPE") {
		ch, err := dpeChannel(cfg, src, log)
		if err != nil {
			return nil, err
		}
		w.Channels["DPE"] = Registration{Channel: ch, Inbox: ch, Checks: ch.checks(),
			PollInterval: cfg.Duration("difi.move.nextmove.serviceBus.pollingrate", 20*time.Second),
			Packaging:    DPEPackaging(cfg.Size("difi.move.nextmove.service-bus.upload-size-limit", 2<<20))}
		if v := cfg.Duration(KeyPollInterval, 0); v > 0 {
			r := w.Channels["DPE"]
			r.PollInterval = v
			w.Channels["DPE"] = r
		}
	}
	if cfg.Enables("DPF") {
		reg, types, err := dpfRegistration(cfg, mp, src, ks, packer, log)
		if err != nil {
			w.Problems["DPF"] = err
			log.Error("channel DPF cannot be set up; its messages are refused", logattr.Err(err))
		} else {
			reg.Checks = dpfChecks(reg, cfg.OrgNumber)
			w.Channels["DPF"], w.ShipmentTypes = reg, types
		}
	}
	if cfg.Enables("DPI") {
		// Like DPF: a DPI that cannot be set up refuses its own messages at
		// the API and leaves the other channels running.
		if ch, err := dpiChannel(cfg, mp, ks, roots, acfg.KRR, log); err != nil {
			w.Problems["DPI"] = err
			log.Error("channel DPI cannot be set up; its messages are refused", logattr.Err(err))
		} else {
			w.Channels["DPI"] = Registration{Channel: ch, Tracker: ch, Receipts: ch, Packaging: DPIPackaging(cfg.Size("difi.move.dpi.upload-size-limit", 50<<20)),
				PollInterval: cfg.Duration(KeyPollInterval, time.Minute), ReceiptInterval: cfg.Duration(KeyPollInterval, 10*time.Second),
				Checks: ch.checks()}
		}
	}
	var backoff []time.Duration
	if v := cfg.Value(KeyBackoff); v != "" {
		for _, s := range strings.Split(v, ",") {
			d, err := time.ParseDuration(strings.TrimSpace(s))
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("%s %q: want comma-separated durations such as 20s,60s,3m", KeyBackoff, v)
			}
			backoff = append(backoff, d)
		}
	}
	var conc, hours int
	fmt.Sscan(cfg.Value("difi.move.queue.concurrency"), &conc)
	fmt.Sscan(cfg.Value("difi.move.queue.maximum-retry-hours"), &hours)
	if hours <= 0 {
		hours = 100
	}
	days, minutes := 30, 60
	fmt.Sscan(cfg.Value("difi.move.nextmove.statusPollingBackoffThresholdDays"), &days)
	fmt.Sscan(cfg.Value("difi.move.nextmove.statusPollingBackoffMaxIntervalMinutes"), &minutes)
	w.settings = Config{OrgNumber: cfg.OrgNumber, Concurrency: conc, Backoff: backoff, MaxAttempts: 5 + hours,
		ReplyInterval: cfg.Duration(KeyReplyInterval, 5*time.Second), Unpacker: packer, Packer: packer,
		SweepInterval: cfg.Duration(KeySweep, time.Minute), SweepGrace: cfg.Duration(KeySweepGrace, time.Minute),
		ArkivmeldingReceipts:   cfg.Value("difi.move.arkivmelding.generate-arkivmelding-receipts") != "false",
		StatusBackoffThreshold: cfg.Duration(KeyStatusBackoffThreshold, time.Duration(days)*24*time.Hour),
		StatusBackoffMax:       cfg.Duration(KeyStatusBackoffMax, time.Duration(minutes)*time.Minute)}
	return w, nil
}

// Config returns the pipeline's Config for the message core, the queue and
// the pipeline's own dir.
func (w *Wiring) Config(msgs *message.Service, q Consumer, dir string, log *slog.Logger) Config {
	c := w.settings
	c.Messages, c.Queue, c.Resolver, c.Channels, c.Dir, c.Logger = msgs, q, w.Resolver, w.Channels, dir, log
	return c
}

// srScopes are the scopes the reference asks the SR with, by enabled channel
// (addressing.md §3.1).
func srScopes(cfg *config.Config) []string {
	var s []string
	for _, ch := range cfg.Enabled {
		switch ch {
		case "DPO", "DPE", "DPV", "DPF", "DPH":
			s = append(s, "eformidling:"+strings.ToLower(ch))
		case "DPI":
			s = append(s, "eformidling:dpi", "digitalpostinnbygger:send", "global/kontaktinformasjon.read",
				"global/sikkerdigitalpost.read", "global/varslingsstatus.read", "global/sertifikat.read",
				"global/navn.read", "global/postadresse.read")
		}
	}
	if len(s) == 0 {
		s = []string{"eformidling:dpo"}
	}
	return s
}

// systemUser fixes the Altinn system user's authorization_details on the
// Maskinporten grant (channels.md §2.2).
func systemUser(mp *maskinporten.Client, orgID, name string) (*maskinporten.Source, error) {
	ad, err := json.Marshal([]map[string]any{{
		"type":           "urn:altinn:systemuser",
		"systemuser_org": map[string]string{"authority": "iso6523-actorid-upis", "ID": orgID},
		"externalRef":    name,
	}})
	if err != nil {
		return nil, err
	}
	return mp.Source("", ad), nil
}

// dpoChannel builds the broker clients: the own system user's and one per
// reportee, difi.move.dpo.reportees[i].orgId and .name (channels.md §2.2).
func dpoChannel(cfg *config.Config, mp *maskinporten.Client, log *slog.Logger) (DPO, error) {
	orgID := cfg.Value("difi.move.dpo.systemUser.orgId")
	if orgID == "" {
		orgID = "0192:" + cfg.OrgNumber
	}
	name := cfg.Value("difi.move.dpo.systemUser.name")
	if name == "" {
		name = cfg.OrgNumber + "_integrasjonspunkt_systembruker_" + cfg.OrgNumber
	}
	own, ex, err := dpoClient(cfg, mp, orgID, name)
	if err != nil {
		return DPO{}, err
	}
	ch := DPO{Client: own, Logger: log, exchange: ex}
	for i := 0; ; i++ {
		key := fmt.Sprintf("difi.move.dpo.reportees[%d]", i)
		org, name := cfg.Value(key+".orgId"), cfg.Value(key+".name")
		if org == "" && name == "" {
			break
		}
		nr := transport.OrgNumber(org)
		if nr == "" {
			return DPO{}, fmt.Errorf("%s.orgId %q: want an organisation number, e.g. 0192:910075918", key, org)
		}
		c, _, err := dpoClient(cfg, mp, "0192:"+nr, name)
		if err != nil {
			return DPO{}, fmt.Errorf("%s: %w", key, err)
		}
		ch.Reportees = append(ch.Reportees, Reportee{Org: nr, Client: c})
	}
	return ch, nil
}

// dpoClient is one system user's broker client; name "" takes the
// reference's default system user name for orgID.
func dpoClient(cfg *config.Config, mp *maskinporten.Client, orgID, name string) (*dpo.Client, *altinn.Exchanger, error) {
	if name == "" {
		nr := transport.OrgNumber(orgID)
		name = nr + "_integrasjonspunkt_systembruker_" + nr
	}
	su, err := systemUser(mp, orgID, name)
	if err != nil {
		return nil, nil, fmt.Errorf("configuring the dpo system user: %w", err)
	}
	ex, err := altinn.New(altinn.Config{URL: cfg.Value("difi.move.dpo.altinnTokenExchangeUrl"), Maskinporten: su})
	if err != nil {
		return nil, nil, fmt.Errorf("configuring the altinn token exchange (difi.move.dpo.altinnTokenExchangeUrl): %w", err)
	}
	c, err := dpo.New(dpo.Config{BaseURL: cfg.Value("difi.move.dpo.brokerserviceUrl"), Tokens: ex,
		ResourceID: cfg.Value("difi.move.dpo.resource"), MessageChannel: cfg.Value("difi.move.dpo.message-channel"),
		TempDir: os.TempDir(), MaxFileSize: cfg.Size("difi.move.dpo.upload-size-limit", 1<<30) + 16<<20})
	if err != nil {
		return nil, nil, fmt.Errorf("configuring dpo: %w", err)
	}
	return c, ex, nil
}

func dpvChannel(cfg *config.Config, mp *maskinporten.Client) (DPV, error) {
	ex, err := altinn.New(altinn.Config{URL: cfg.Value("difi.move.dpv.altinnTokenExchangeUrl"), Maskinporten: mp.Source("", nil)})
	if err != nil {
		return DPV{}, fmt.Errorf("configuring the altinn token exchange (difi.move.dpv.altinnTokenExchangeUrl): %w", err)
	}
	c, err := dpv.New(dpv.Config{BaseURL: cfg.Value("difi.move.dpv.correspondenceServiceUrl"), Tokens: ex})
	if err != nil {
		return DPV{}, fmt.Errorf("configuring dpv: %w", err)
	}
	days := 7
	fmt.Sscan(cfg.Value("difi.move.dpv.daysToReply"), &days)
	name := cfg.Value("difi.move.org.name")
	if name == "" {
		name = cfg.OrgNumber
	}
	return DPV{Client: c, exchange: ex, SenderName: name, SensitiveResource: cfg.Value("difi.move.dpv.sensitiveResource"),
		EmailSubject: cfg.Value("difi.move.dpv.email-subject"), NotificationText: cfg.Value("difi.move.dpv.notification-text"),
		SensitiveText: cfg.Value("difi.move.dpv.sensitive-notification-text"), DaysToReply: days,
		EnableDueDate: cfg.Value("difi.move.dpv.enableDueDate") != "false"}, nil
}

// srKey takes the Service Bus key from the service registry's /sastoken
// (channels.md §7.1), or the configured sasToken when there is one.
type srKey struct {
	sr     *sr.Client
	name   string
	static string
}

func (k srKey) SASKey(ctx context.Context) (string, string, error) {
	if k.static != "" {
		return k.name, k.static, nil
	}
	key, err := k.sr.SASToken(ctx)
	return k.name, key, err
}

func dpeChannel(cfg *config.Config, src *sr.Client, log *slog.Logger) (DPE, error) {
	base := cfg.Value("difi.move.nextmove.serviceBus.baseUrl")
	if base != "" && !strings.Contains(base, "://") {
		scheme := "https://"
		if cfg.Value("difi.move.nextmove.serviceBus.useHttps") == "false" {
			scheme = "http://"
		}
		base = scheme + base
	}
	name := cfg.Value("difi.move.nextmove.serviceBus.sasKeyName")
	if name == "" {
		name = "MoveDPE-pilotPolicy"
		if cfg.Environment == "production" {
			name = "MoveDPE-prodPolicy"
		}
	}
	mode := cfg.Value("difi.move.nextmove.serviceBus.mode")
	if mode == "" {
		mode = "innsyn"
	}
	c, err := dpe.New(dpe.Config{BaseURL: base, Keys: srKey{sr: src, name: name, static: cfg.Value("difi.move.nextmove.serviceBus.sasToken")},
		OwnQueue: dpe.OwnQueue(cfg.OrgNumber, mode)})
	if err != nil {
		return DPE{}, fmt.Errorf("configuring dpe: %w", err)
	}
	return DPE{Client: c, keys: srKey{sr: src, name: name, static: cfg.Value("difi.move.nextmove.serviceBus.sasToken")}, Mode: mode, ReceiptQueue: cfg.Value("difi.move.nextmove.serviceBus.receiptQueue"), Logger: log}, nil
}

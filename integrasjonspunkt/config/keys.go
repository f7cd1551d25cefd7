package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/efm-go/efm/addressing/ident"
)

// key describes one configuration key: its name as the Java integration point
// spells it (or ours under efm.), its default, and what a valid value is.
type key struct {
	name     string
	def      string
	secret   bool
	channel  string // "" for every installation; else only read when that channel is enabled
	required bool   // with channel set: required only when that channel is enabled
	// when, with required, narrows it further: the key is required only when
	// when says the part that reads it is in use (SOAP-only credentials).
	when    func(c *Config) bool
	prefix  bool // name is a prefix of a family (paa-vegne-av.<orgnr>.username, her-ids[n])
	ignored bool // accepted and ignored: it configures a part we do not have (operations.md §1.5)
	check   func(string) error
}

// keys is the set of keys the daemon knows. Channel packages read theirs through
// Config.Value; listing them here is what lets config check require the keys of
// enabled channels only and point at the nearest known key for a typo.
var keys = []key{
	{name: "environment", def: "production", check: oneOf("production", "staging")},
	{name: "spring.profiles.active", check: oneOf("production", "staging")},

	{name: "difi.move.org.number", required: true, check: checkOrgNumber},
	{name: "difi.move.org.keystore.path", required: true, check: nonEmpty},
	{name: "difi.move.org.keystore.alias", required: true, check: nonEmpty},
	{name: "difi.move.org.keystore.password", required: true, secret: true},
	{name: "difi.move.org.keystore.key-password", secret: true},
	{name: "difi.move.org.keystore.type", def: "PKCS12", check: oneOf("PKCS12", "JKS")},
	{name: "difi.move.org.name"},
	{name: "difi.move.identifier.synthetic.allow", def: "false", check: checkBool},
	{name: "difi.move.serviceregistryEndpoint"},
	{name: "difi.move.oidc.url"},
	{name: "difi.move.oidc.audience"},
	{name: "difi.move.oidc.clientId"},
	{name: "difi.move.ntp.host"},
	{name: "difi.move.sign.enable", check: checkBool},
	{name: "difi.move.sign.jwkUrl"},
	{name: "difi.move.queue.concurrency", def: "10", check: checkPositiveInt},
	{name: "difi.move.queue.maximum-retry-hours", def: "100", check: checkPositiveInt},
	{name: "difi.move.nextmove.default-ttl-hours", def: "24", check: checkPositiveInt},
	{name: "difi.move.nextmove.statusPollingCron"},
	{name: "difi.move.nextmove.ttlPollingrate"},
	{name: "difi.move.nextmove.lockTimeoutMinutes", check: checkPositiveInt},
	{name: "difi.move.nextmove.statusPollingInterval"},
	{name: "difi.move.nextmove.statusPollingBackoffThresholdDays", check: checkPositiveInt},
	{name: "difi.move.nextmove.statusPollingBackoffMaxIntervalMinutes", check: checkPositiveInt},
	{name: "difi.move.arkivmelding.default-process"},
	{name: "difi.move.arkivmelding.generate-arkivmelding-receipts", check: checkBool},
	{name: "difi.move.feature.enableDPO", def: "false", check: checkBool},
	{name: "difi.move.feature.enableDPV", def: "false", check: checkBool},
	{name: "difi.move.feature.enableDPI", def: "false", check: checkBool},
	{name: "difi.move.feature.enableDPF", def: "false", check: checkBool},
	{name: "difi.move.feature.enableDPE", def: "false", check: checkBool},
	{name: "difi.move.feature.enableDPH", def: "false", check: checkBool},
	{name: "difi.move.feature.enableReceipts", def: "true", check: checkBool},
	{name: "difi.move.feature.enableDsfPrintLookup", check: checkBool},
	{name: "difi.move.feature.enableBetaFeatures", check: checkBool},
	{name: "difi.move.feature.statusQueueIncludes"},
	{name: "difi.move.feature.allowDeprecatedTrailingSlash", check: checkBool},
	{name: "difi.move.feature.enable-auth", check: checkBool},

	{name: "difi.move.dpo.brokerserviceUrl", channel: "DPO"},
	{name: "difi.move.dpo.altinnTokenExchangeUrl", channel: "DPO"},
	{name: "difi.move.dpo.resource", channel: "DPO"},
	{name: "difi.move.dpo.systemName", channel: "DPO"},
	{name: "difi.move.dpo.systemUser.name", channel: "DPO"},
	{name: "difi.move.dpo.systemUser.orgId", channel: "DPO"},
	{name: "difi.move.dpo.reportees", channel: "DPO", prefix: true},
	{name: "difi.move.dpo.message-channel", channel: "DPO"},
	{name: "difi.move.dpo.oidc", channel: "DPO", prefix: true},
	{name: "difi.move.dpo.username", channel: "DPO"},
	{name: "difi.move.dpo.password", channel: "DPO", secret: true},
	{name: "difi.move.dpo.default-ttl-hours", channel: "DPO", check: checkPositiveInt},
	{name: "difi.move.dpo.upload-size-limit", channel: "DPO", def: "1GB", check: checkSize},

	{name: "difi.move.dpv.correspondenceServiceUrl", channel: "DPV"},
	{name: "difi.move.dpv.altinnTokenExchangeUrl", channel: "DPV"},
	{name: "difi.move.dpv.health-check-url", channel: "DPV"},
	{name: "difi.move.dpv.oidc", channel: "DPV", prefix: true},
	{name: "difi.move.dpv.username", channel: "DPV"},
	{name: "difi.move.dpv.password", channel: "DPV", secret: true},
	{name: "difi.move.dpv.sensitiveResource", channel: "DPV"},
	{name: "difi.move.dpv.notification-text", channel: "DPV"},
	{name: "difi.move.dpv.sensitive-notification-text", channel: "DPV"},
	{name: "difi.move.dpv.email-subject", channel: "DPV"},
	{name: "difi.move.dpv.enableDueDate", channel: "DPV", check: checkBool},
	{name: "difi.move.dpv.daysToReply", channel: "DPV", check: checkPositiveInt},
	{name: "difi.move.dpv.default-ttl-hours", channel: "DPV", check: checkPositiveInt},
	{name: "difi.move.dpv.upload-size-limit", channel: "DPV", def: "250MB", check: checkSize},

	{name: "difi.move.dpi.uri", channel: "DPI"},
	{name: "difi.move.dpi.krr-print-url", channel: "DPI"},
	{name: "difi.move.dpi.oidc", channel: "DPI", prefix: true},
	{name: "difi.move.dpi.keystore", channel: "DPI", prefix: true},
	{name: "difi.move.dpi.certificate.mode", channel: "DPI"},
	{name: "difi.move.dpi.mpcId", channel: "DPI"},
	{name: "difi.move.dpi.mpcConcurrency", channel: "DPI", check: checkPositiveInt},
	{name: "difi.move.dpi.avsenderidentifikatorListe", channel: "DPI"},
	{name: "difi.move.dpi.pollWithoutAvsenderidentifikator", channel: "DPI", check: checkBool},
	{name: "difi.move.dpi.pollingrate", channel: "DPI"},
	{name: "difi.move.dpi.language", channel: "DPI"},
	{name: "difi.move.dpi.default-ttl-hours", channel: "DPI", check: checkPositiveInt},
	{name: "difi.move.dpi.upload-size-limit", channel: "DPI", def: "50MB", check: checkSize},

	{name: "difi.move.fiks.inn.username", channel: "DPF", required: true, when: svarInnOn},
	{name: "difi.move.fiks.inn.password", channel: "DPF", required: true, secret: true, when: svarInnOn},
	{name: "difi.move.fiks.ut.username", channel: "DPF", required: true, when: svarUtSOAP},
	{name: "difi.move.fiks.ut.password", channel: "DPF", required: true, secret: true, when: svarUtSOAP},
	{name: "difi.move.fiks.ut.type", channel: "DPF", def: "ws", check: oneOf("ws", "rest")},
	{name: "difi.move.fiks.ut.endpointUrl", channel: "DPF"},
	{name: "difi.move.fiks.ut.ws.endpointUrl", channel: "DPF"},
	{name: "difi.move.fiks.ut.rest", channel: "DPF", prefix: true},
	{name: "difi.move.fiks.ut.paa-vegne-av", channel: "DPF", prefix: true},
	{name: "difi.move.fiks.ut.konteringsKode", channel: "DPF"},
	{name: "difi.move.fiks.ut.kun-digital-levering", channel: "DPF", check: checkBool},
	{name: "difi.move.fiks.ut.ekskluderes-fra-print", channel: "DPF"},
	{name: "difi.move.fiks.ut.default-ttl-hours", channel: "DPF", check: checkPositiveInt},
	{name: "difi.move.fiks.ut.upload-size-limit", channel: "DPF", def: "1GB", check: checkSize},
	{name: "difi.move.fiks.inn.enable", channel: "DPF", check: checkBool},
	{name: "difi.move.fiks.inn.baseUrl", channel: "DPF"},
	{name: "difi.move.fiks.inn.orgnr", channel: "DPF"},
	{name: "difi.move.fiks.inn.process", channel: "DPF"},
	{name: "difi.move.fiks.inn.document-type", channel: "DPF"},
	{name: "difi.move.fiks.inn.fallback-sender-org-nr", channel: "DPF"},
	{name: "difi.move.fiks.inn.paa-vegne-av", channel: "DPF", prefix: true},
	{name: "difi.move.fiks.keystore", channel: "DPF", prefix: true},
	{name: "difi.move.fiks.kryptert", channel: "DPF", check: checkBool},
	{name: "difi.move.fiks.pollingrate", channel: "DPF"},

	// FIKS IO is not one of the feature flags; it is configured when its account is.
	{name: "difi.move.fiks.io.konto-id"},
	{name: "difi.move.fiks.io.integrasjons-id"},
	{name: "difi.move.fiks.io.integrasjons-passord", secret: true},
	{name: "difi.move.fiks.io.sender-orgnr"},
	{name: "difi.move.fiks.io.host"},
	{name: "difi.move.fiks.io.api-host"},
	{name: "difi.move.fiks.io.upload-size-limit", def: "1GB", check: checkSize},

	{name: "difi.move.nextmove.serviceBus.baseUrl", channel: "DPE"},
	{name: "difi.move.nextmove.serviceBus.sasKeyName", channel: "DPE"},
	{name: "difi.move.nextmove.serviceBus.sasToken", channel: "DPE", secret: true},
	{name: "difi.move.nextmove.serviceBus.mode", channel: "DPE"},
	{name: "difi.move.nextmove.serviceBus.receiptQueue", channel: "DPE"},
	{name: "difi.move.nextmove.serviceBus.batchRead", channel: "DPE", check: checkBool},
	{name: "difi.move.nextmove.serviceBus.useHttps", channel: "DPE", check: checkBool},
	{name: "difi.move.nextmove.serviceBus.pollingrate", channel: "DPE"},
	{name: "difi.move.nextmove.serviceBus.default-ttl-hours", channel: "DPE", check: checkPositiveInt},
	{name: "difi.move.nextmove.service-bus.upload-size-limit", channel: "DPE", def: "2MB", check: checkSize},

	{name: "difi.move.dph.uri", channel: "DPH"},
	{name: "difi.move.dph.her-ids", channel: "DPH", prefix: true},
	{name: "difi.move.dph.certificate.mode", channel: "DPH"},
	{name: "difi.move.dph.pollingrate", channel: "DPH"},
	{name: "difi.move.dph.default-ttl-hours", channel: "DPH", check: checkPositiveInt},
	{name: "difi.move.dph.upload-size-limit", channel: "DPH", def: "18MB", check: checkSize},

	{name: "server.port", def: "9093", check: checkPort},
	{name: "server.address", def: "127.0.0.1", check: checkIP},
	{name: "difi.ssl.enabled", def: "false", check: checkBool},
	{name: "difi.ssl.key-store"},
	{name: "difi.ssl.key-store-type", def: "PKCS12", check: oneOf("PKCS12", "JKS")},
	{name: "difi.ssl.key-store-password", secret: true},
	{name: "difi.ssl.key-alias"},
	{name: "difi.security.enable", def: "false", check: checkBool},
	{name: "difi.security.user.name"},
	{name: "difi.security.user.password", secret: true},

	// E-mail on FEIL and LEVETID_UTLOPT: the reference's SMTP keys (its mail
	// was for SvarInn errors; ours reports failed messages, batched).
	{name: "difi.move.mail.smtpHost"},
	{name: "difi.move.mail.smtpPort", check: checkPositiveInt},
	{name: "difi.move.mail.receiverAddress"},
	{name: "difi.move.mail.senderAddress"},
	{name: "difi.move.mail.enableAuth", def: "false", check: checkBool},
	{name: "difi.move.mail.username"},
	{name: "difi.move.mail.password", secret: true},
	{name: "difi.move.mail.trust"},
	{name: "efm.mail.batch-interval", def: "5m", check: checkDuration},
	{name: "efm.http.allowed-hosts"},
	{name: "efm.manage.public-health", def: "false", check: checkBool},
	{name: "efm.http.max-multipart-size", def: "500MB", check: checkSize},
	{name: "efm.http.body-window", def: "30s", check: checkDuration},
	{name: "efm.http.body-min-rate", def: "8KB", check: checkSize},
	{name: "efm.incoming.lock-timeout", check: checkDuration},
	{name: "efm.expiry.check-interval", def: "30s", check: checkDuration},
	{name: "efm.webhook.backoff", def: "1s", check: checkDuration},
	{name: "efm.webhook.strict-ping", def: "false", check: checkBool},
	{name: "compat.lenientBusinessMessageValidation", def: "false", check: checkBool},
	{name: "efm.pipeline.backoff"}, // comma-separated durations between send attempts
	{name: "efm.pipeline.poll-interval", check: checkDuration},
	{name: "efm.pipeline.sweep-interval", check: checkDuration},
	{name: "efm.pipeline.sweep-grace", check: checkDuration},
	{name: "efm.pipeline.api-burst", def: "200", check: checkCount}, // send requests a second at which delivery yields to the API; 0: never
	{name: "efm.pipeline.status-backoff-threshold", check: checkDuration},
	{name: "efm.pipeline.status-backoff-max", check: checkDuration},
	{name: "efm.pipeline.reply-interval", check: checkDuration},
	{name: "efm.pipeline.trust-anchors"}, // PEM file of CAs trusted for receivers' certificates
	{name: "efm.shutdown.drain", def: "30s", check: checkDuration},
	{name: "efm.queue.port", def: "0", check: checkPortOrZero},
	{name: "efm.disk.min-free", def: "1GB", check: checkSize},
	{name: "efm.log.level", def: "info", check: oneOf("debug", "info", "warn", "error")},
	{name: "efm.log.max-size", def: "10MB", check: checkSize},
	{name: "efm.log.file", check: checkBool}, // default: on for a Windows service, off elsewhere
	{name: "efm.retention.incoming-unfetched", def: "2160h", check: checkDuration},
	{name: "efm.retention.history", def: "17520h", check: checkDuration},
	{name: "efm.retention.outgoing-payload", def: "0s", check: checkDuration}, // keep sent payloads this long (a trial); 0: delete when sent
	{name: "efm.retention.interval", def: "24h", check: checkDuration},
	{name: "efm.events.url"},
	{name: "efm.events.heartbeat-interval", def: "24h", check: checkDuration},
	{name: "efm.events.trusted-ca"}, // PEM file trusted for efm.events.url besides the system roots
	{name: "efm.events.enabled", def: "true", check: checkBool},
	{name: "efm.events.max-backlog-age", def: "720h", check: checkDuration},
	{name: "efm.events.max-backlog-bytes", def: "256MB", check: checkSize},
	{name: "efm.backup.dir"},
	{name: "efm.backup.schedule"},
	{name: "efm.backup.keep", def: "7", check: checkPositiveInt},
	{name: "efm.update", prefix: true},

	{name: "spring.datasource.url", check: checkDatasourceURL}, // PostgreSQL for several daemons; unset: SQLite
	{name: "spring.datasource.username"},
	{name: "spring.datasource.password", secret: true},
	{name: "efm.queue.url", check: checkQueueURLs}, // comma-separated nats:// URLs of an external JetStream cluster; unset: embedded
	{name: "efm.queue.credentials"},                // NATS .creds file (JWT and NKey seed)
	{name: "efm.queue.nkey"},                       // NKey seed file
	{name: "efm.queue.tls.ca"},                     // PEM file trusted for the cluster's certificates
	{name: "efm.queue.tls.cert"},                   // client certificate (PEM), with efm.queue.tls.key
	{name: "efm.queue.tls.key"},                    // client key (PEM)
	{name: "efm.queue.replicas", def: "1", check: checkPositiveInt},
	{name: "efm.shared.dir"}, // payload files, channel ledger and secrets that several daemons share
	{name: "efm.node.name"},  // this daemon among several; default: host name and port
	{name: "difi.datasource", prefix: true, ignored: true},
	{name: "spring.datasource", prefix: true, ignored: true},
	{name: "difi.activemq", prefix: true, ignored: true},
	{name: "spring.activemq", prefix: true, ignored: true},
	{name: "difi.move.nextmove.use-db-persistence", ignored: true},
	{name: "difi.move.nextmove.filedir", ignored: true},
	{name: "management", prefix: true, ignored: true},
	{name: "logging", prefix: true, ignored: true},
	{name: "server.tomcat", prefix: true, ignored: true},
	{name: "app.logger", prefix: true, ignored: true},
	{name: "vault", prefix: true, ignored: true},
	{name: "kosmos", prefix: true, ignored: true},
}

var errEmpty = errors.New("a non-empty value")

func nonEmpty(v string) error {
	if v == "" {
		return errEmpty
	}
	return nil
}

func oneOf(allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if strings.EqualFold(v, a) {
				return nil
			}
		}
		return fmt.Errorf("one of %s", strings.Join(allowed, ", "))
	}
}

func checkBool(v string) error {
	_, err := parseBool(v)
	return err
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errors.New("true or false")
}

func checkPositiveInt(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return errors.New("a whole number above 0")
	}
	return nil
}

func checkCount(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return errors.New("a whole number, 0 or above")
	}
	return nil
}

func checkPort(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return errors.New("a TCP port from 1 to 65535")
	}
	return nil
}

func checkPortOrZero(v string) error {
	if v == "0" {
		return nil
	}
	if checkPort(v) != nil {
		return errors.New("0 (no TCP listener) or a TCP port from 1 to 65535")
	}
	return nil
}

func checkIP(v string) error {
	if v == "localhost" || net.ParseIP(v) != nil {
		return nil
	}
	return errors.New("an IP address to bind, such as 127.0.0.1 or 0.0.0.0")
}

func checkDuration(v string) error {
	_, err := parseDuration(v)
	return err
}

func checkSize(v string) error {
	_, err := parseSize(v)
	return err
}

// checkOrgNumber applies the mod-11 control digit. The Java IP does not check
// it (KOSMOS does); a mistyped number otherwise shows up only as refused sends.
func checkOrgNumber(v string) error {
	if !ident.ValidOrgNumber(v) {
		return errors.New("a 9-digit organisation number with a valid mod-11 control digit")
	}
	return nil
}

// svarUtSOAP: SvarUt's account user and password are the SOAP variant's
// Basic auth; REST sends with Maskinporten and the integration's own keys.
func svarUtSOAP(c *Config) bool { return c.Value("difi.move.fiks.ut.type") != "rest" }

// svarInnOn: SvarInn's credentials matter only when we receive over it.
func svarInnOn(c *Config) bool { return c.Value("difi.move.fiks.inn.enable") != "false" }

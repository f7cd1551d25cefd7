package message

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/efm-go/efm/addressing/ident"
	"github.com/efm-go/efm/integrasjonspunkt/config"
)

// sizeKeys are the per-channel upload limits with the contract's defaults
// (local-api.md §5.8; units binary).
var sizeKeys = []struct {
	channel, key string
	def          int64
}{
	{"DPO", "difi.move.dpo.upload-size-limit", 1 << 30},
	{"DPV", "difi.move.dpv.upload-size-limit", 250 << 20},
	{"DPI", "difi.move.dpi.upload-size-limit", 50 << 20},
	{"DPF", "difi.move.fiks.ut.upload-size-limit", 1 << 30},
	{"DPE", "difi.move.nextmove.service-bus.upload-size-limit", 2 << 20},
	{"DPH", "difi.move.dph.upload-size-limit", 18 << 20},
}

// svarUtPrintLimit is SvarUt's cap on a shipment that may be printed.
const svarUtPrintLimit = 350 << 20

var ttlKeys = map[string]string{
	"DPO": "difi.move.dpo.default-ttl-hours",
	"DPV": "difi.move.dpv.default-ttl-hours",
	"DPI": "difi.move.dpi.default-ttl-hours",
	"DPF": "difi.move.fiks.ut.default-ttl-hours",
	"DPE": "difi.move.nextmove.serviceBus.default-ttl-hours",
	"DPH": "difi.move.dph.default-ttl-hours",
}

// Settings fills the configuration-derived fields of Config from the
// daemon's configuration; the caller adds the dependencies.
//
// Keys read besides the reference's: efm.incoming.lock-timeout (duration,
// default 5m), compat.lenientBusinessMessageValidation (D8).
func Settings(c *config.Config) Config {
	s := Config{
		OrgNumber:      c.OrgNumber,
		Enabled:        c.Enables,
		SizeLimits:     map[string]int64{},
		TTL:            map[string]time.Duration{},
		DefaultTTL:     hours(c.Value("difi.move.nextmove.default-ttl-hours"), 24*time.Hour),
		LockTimeout:    c.Duration("efm.incoming.lock-timeout", 5*time.Minute),
		MessageChannel: c.Value("difi.move.dpo.message-channel"),
		Lenient:        strings.EqualFold(c.Value("compat.lenientBusinessMessageValidation"), "true"),
		DPIPolling:     c.Value("difi.move.dpi.pollingrate") != "",
		IDPolicy:       ident.Policy{AllowSynthetic: c.SyntheticOK},
		KeepPayload:    c.Duration("efm.retention.outgoing-payload", 0),
	}
	s.HerIDs = herIDs(c)
	s.SvarUtCredentials = func(org string) bool {
		return c.Value("difi.move.fiks.ut.paa-vegne-av."+org+".username") != ""
	}
	if m, err := strconv.Atoi(c.Value("difi.move.nextmove.lockTimeoutMinutes")); err == nil && m > 0 && c.Value("efm.incoming.lock-timeout") == "" {
		s.LockTimeout = time.Duration(m) * time.Minute
	}
	defaults := map[string]bool{}
	for _, e := range c.Effective() {
		if e[2] == "default" {
			defaults[strings.ToLower(e[0])] = true
		}
	}
	for _, k := range sizeKeys {
		// A built-in default of the configuration layer is not a choice the
		// operator made: the contract's default applies (DPE: 2 MB).
		if c.Value(k.key) == "" || defaults[strings.ToLower(k.key)] {
			s.SizeLimits[k.channel] = k.def
		} else {
			s.SizeLimits[k.channel] = c.Size(k.key, k.def)
		}
	}
	// SvarUt takes at most 350 MB in a shipment that may go to print, which
	// every DPF shipment may unless kun-digital-levering is set
	// (forsendelse-send-api-v3.json): refused here, not failed at SvarUt.
	if !strings.EqualFold(c.Value("difi.move.fiks.ut.kun-digital-levering"), "true") {
		s.SizeLimits["DPF"] = min(s.SizeLimits["DPF"], svarUtPrintLimit)
	}
	for ch, k := range ttlKeys {
		if d := hours(c.Value(k), 0); d > 0 {
			s.TTL[ch] = d
		}
	}
	for ch := range strings.SplitSeq(c.Value("difi.move.feature.statusQueueIncludes"), ",") {
		if ch = strings.ToUpper(strings.TrimSpace(ch)); ch != "" {
			s.StatusQueueIncludes = append(s.StatusQueueIncludes, ch)
		}
	}
	return s
}

func hours(v string, def time.Duration) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return def
	}
	return time.Duration(n) * time.Hour
}

// herIDs reads difi.move.dph.her-ids, given as a comma-separated list or as
// the indexed family her-ids[0], her-ids[1], ... (both Spring list forms).
func herIDs(c *config.Config) []string {
	var out []string
	add := func(v string) {
		for id := range strings.SplitSeq(v, ",") {
			if id = strings.TrimSpace(id); id != "" && !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	add(c.Value("difi.move.dph.her-ids"))
	for _, e := range c.Effective() {
		if strings.HasPrefix(strings.ToLower(e[0]), "difi.move.dph.her-ids[") {
			add(c.Value(e[0]))
		}
	}
	return out
}

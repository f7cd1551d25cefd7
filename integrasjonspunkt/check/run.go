package check

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/config"
	"github.com/efm-go/efm/integrasjonspunkt/pipeline"
	"github.com/efm-go/efm/packaging/keystore"
)

// Result is one part's answer.
type Result struct {
	Part    string        `json:"part"`
	Channel string        `json:"channel,omitempty"` // "" for the parts every channel needs
	OK      bool          `json:"ok"`
	Skipped bool          `json:"skipped,omitempty"` // not tried: an earlier part it needs failed
	Error   string        `json:"error,omitempty"`   // what the remote end or the file said
	Fix     string        `json:"fix,omitempty"`     // one sentence
	Took    time.Duration `json:"took"`
}

// Report is one run of the check, kept for the status page.
type Report struct {
	At      time.Time `json:"at"`
	Results []Result  `json:"results"`
}

// OK reports whether every part answered.
func (r Report) OK() bool {
	return !slices.ContainsFunc(r.Results, func(x Result) bool { return !x.OK })
}

// FirstFailure is the part to fix first, or nil.
func (r Report) FirstFailure() *Result {
	for i := range r.Results {
		if !r.Results[i].OK && !r.Results[i].Skipped {
			return &r.Results[i]
		}
	}
	return nil
}

// Options steer Run.
type Options struct {
	DataDir  string        // relative keystore paths resolve here
	Channels []string      // only these channels' parts (upper case); empty: every enabled one
	Timeout  time.Duration // per part; default 20 s
	Now      func() time.Time
	Logger   *slog.Logger // nil: discard
}

// Run checks the certificate, then makes one real round trip per part the
// configuration enables: the parts every channel needs first, then each
// channel's own (pipeline.Registration.Checks). It never stops early, so
// the report lists every problem; a part whose prerequisite failed is marked
// skipped rather than blamed.
func Run(ctx context.Context, cfg *config.Config, o Options) Report {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout <= 0 {
		o.Timeout = 20 * time.Second
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	rep := Report{At: o.Now()}
	start := o.Now()
	var certErrs, certWarns []string
	for _, f := range Files(cfg, o.DataDir, o.Now()) {
		switch f.Level {
		case Error:
			certErrs = append(certErrs, f.Key+": "+f.Msg)
		case Warning:
			certWarns = append(certWarns, f.Msg)
		}
	}
	cert := Result{Part: "certificate", OK: len(certErrs) == 0, Took: o.Now().Sub(start).Round(time.Millisecond)}
	if !cert.OK {
		cert.Error = strings.Join(certErrs, "; ")
		cert.Fix = "Run 'integrasjonspunkt config check' and correct the keystore settings it names."
	} else if len(certWarns) > 0 {
		cert.Error = strings.Join(certWarns, "; ") // OK, with what to plan for (an expiry)
	}
	rep.Results = append(rep.Results, cert)
	if !cert.OK {
		return rep
	}
	path := strings.TrimPrefix(cfg.Keystore.Path, "file:")
	if !filepath.IsAbs(path) && o.DataDir != "" {
		path = filepath.Join(o.DataDir, path)
	}
	ks, err := keystore.Load(keystore.Config{Path: path, Alias: cfg.Keystore.Alias, Password: cfg.Keystore.Password,
		KeyPassword: cfg.Keystore.KeyPassword, Type: keystore.Type(cfg.Keystore.Type)})
	if err != nil { // Files opened it a moment ago; only a race gets here
		rep.Results = append(rep.Results, Result{Part: "certificate", Error: err.Error()})
		return rep
	}
	w, err := pipeline.FromConfig(cfg, ks, nil, log)
	if err != nil {
		rep.Results = append(rep.Results, Result{Part: "configuration", Error: err.Error(),
			Fix: "Run 'integrasjonspunkt config check'; the setting named in the error is missing or wrong."})
		return rep
	}
	commonOK := true
	for _, p := range w.Common {
		r := probe(ctx, p, "", o)
		commonOK = commonOK && r.OK
		rep.Results = append(rep.Results, r)
	}
	for _, ch := range cfg.Enabled {
		if len(o.Channels) > 0 && !slices.Contains(o.Channels, ch) {
			continue
		}
		reg, ok := w.Channels[ch]
		switch {
		case !ok:
			rep.Results = append(rep.Results, Result{Part: ch, Channel: ch,
				Error: "this build cannot send on " + ch,
				Fix:   "Set difi.move.feature.enable" + ch + "=false, or update to a version that has " + ch + "."})
			continue
		case len(reg.Checks) == 0:
			rep.Results = append(rep.Results, Result{Part: ch, Channel: ch, OK: true, Error: "no check for this channel yet"})
			continue
		}
		failed := false
		for _, p := range reg.Checks {
			if failed || !commonOK {
				rep.Results = append(rep.Results, Result{Part: p.Part, Channel: ch, Skipped: true,
					Error: "not tried: an earlier part failed"})
				continue
			}
			r := probe(ctx, p, ch, o)
			failed = !r.OK
			rep.Results = append(rep.Results, r)
		}
	}
	return rep
}

func probe(ctx context.Context, p pipeline.Probe, ch string, o Options) Result {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	start := time.Now()
	err := p.Run(ctx)
	r := Result{Part: p.Part, Channel: ch, OK: err == nil, Took: time.Since(start).Round(time.Millisecond)}
	if err != nil {
		r.Error = err.Error()
		r.Fix = Explain(p.Part, err)
	}
	return r
}

// Print writes the report for a terminal: one line per part, the fix under
// each failure.
func (r Report) Print(w io.Writer) {
	for _, x := range r.Results {
		switch {
		case x.Skipped:
			fmt.Fprintf(w, "SKIP  %-34s %s\n", x.Part, x.Error)
		case x.OK && x.Error != "":
			fmt.Fprintf(w, "OK    %-34s (%s)\n", x.Part, x.Error)
		case x.OK:
			fmt.Fprintf(w, "OK    %-34s %s\n", x.Part, x.Took)
		default:
			fmt.Fprintf(w, "FAIL  %-34s %s\n      fix: %s\n", x.Part, x.Error, x.Fix)
		}
	}
}

// Save keeps the report where the status page reads it.
func (r Report) Save(dataDir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	p := LastPath(dataDir)
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// LastPath is where Save writes the last report.
func LastPath(dataDir string) string { return filepath.Join(dataDir, "check", "last.json") }

// Last reads the last saved report; nil when there is none.
func Last(dataDir string) *Report {
	b, err := os.ReadFile(LastPath(dataDir))
	if err != nil {
		return nil
	}
	var r Report
	if json.Unmarshal(b, &r) != nil {
		return nil
	}
	return &r
}

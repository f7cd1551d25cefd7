package check

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/efm-go/efm/integrasjonspunkt/config"
	"github.com/efm-go/efm/packaging/keystore"
)

// Level grades a Finding.
type Level string

const (
	Error   Level = "error"
	Warning Level = "warning"
	Note    Level = "note"
)

// Finding is one thing config check found in a file the configuration names.
type Finding struct {
	Level Level
	Key   string // the configuration key that names the file or the secret
	Msg   string
}

func (f Finding) String() string { return string(f.Level) + ": " + f.Key + ": " + f.Msg }

// Files opens the business keystore and, when TLS is on, the TLS keystore,
// and checks what a wrong file would only show at the first send: that it
// exists, opens with the password, holds the alias, is valid at now, and (the
// business certificate) names this organisation. Relative paths resolve
// against dataDir, the service's working directory (operations.md §1.4).
func Files(cfg *config.Config, dataDir string, now time.Time) []Finding {
	var out []Finding
	if cfg.Keystore.Path != "" {
		out = append(out, openKeystore("difi.move.org.keystore", cfg.Keystore, dataDir, now, cfg.OrgNumber)...)
	}
	if cfg.Server.TLS && cfg.Server.TLSKeystore.Path != "" {
		out = append(out, openKeystore("difi.ssl", cfg.Server.TLSKeystore, dataDir, now, "")...)
	}
	return out
}

// openKeystore names each failure by the key an operator must change.
func openKeystore(prefix string, k config.Keystore, dataDir string, now time.Time, org string) []Finding {
	keys := map[string]string{"path": prefix + ".path", "password": prefix + ".password", "alias": prefix + ".alias", "type": prefix + ".type"}
	if prefix == "difi.ssl" {
		keys = map[string]string{"path": "difi.ssl.key-store", "password": "difi.ssl.key-store-password", "alias": "difi.ssl.key-alias", "type": "difi.ssl.key-store-type"}
	}
	path := strings.TrimPrefix(k.Path, "file:")
	if !filepath.IsAbs(path) && dataDir != "" {
		path = filepath.Join(dataDir, path)
	}
	ks, err := keystore.Load(keystore.Config{Path: path, Alias: k.Alias, Password: k.Password, KeyPassword: k.KeyPassword, Type: keystore.Type(k.Type)})
	switch {
	case errors.Is(err, keystore.ErrNotFound):
		return []Finding{{Error, keys["path"], "no file at " + path}}
	case errors.Is(err, keystore.ErrWrongPassword):
		msg := "the password does not open " + path
		if prefix == "difi.move.org.keystore" && k.KeyPassword != "" {
			msg += " (or " + prefix + ".key-password does not open the key)"
		}
		return []Finding{{Error, keys["password"], msg}}
	case errors.Is(err, keystore.ErrAliasNotFound):
		// The error text lists the aliases the file has: that is the fix.
		return []Finding{{Error, keys["alias"], strings.TrimPrefix(err.Error(), "loading keystore "+path+": ")}}
	case errors.Is(err, keystore.ErrUnknownFormat), errors.Is(err, keystore.ErrMalformed):
		return []Finding{{Error, keys["path"], path + " is not a readable PKCS#12 or JKS keystore"}}
	case err != nil:
		return []Finding{{Error, keys["path"], err.Error()}}
	}
	var out []Finding
	for _, w := range ks.Warnings {
		out = append(out, Finding{Warning, keys["type"], w})
	}
	for _, n := range ks.Notes {
		out = append(out, Finding{Note, keys["alias"], n})
	}
	c := keystore.CheckCertificate(ks.Cert, keystore.CheckOptions{Now: now, OrgNumber: org, Intermediates: ks.Chain})
	lvl := Warning
	if c.Status == keystore.Down {
		lvl = Error
	}
	for _, r := range c.Reasons {
		if prefix == "difi.ssl" && strings.HasPrefix(r, "certificate key usage") {
			continue // a TLS certificate is not a business certificate
		}
		out = append(out, Finding{lvl, keys["path"], r})
	}
	if len(c.Reasons) == 0 {
		out = append(out, Finding{Note, keys["path"], fmt.Sprintf("certificate %s, serial %s, valid until %s", c.Subject, c.Serial, c.NotAfter.Format(time.DateOnly))})
	}
	return out
}

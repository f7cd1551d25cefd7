package archtest

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/efm-go/efm/"

// layer names the DESIGN.md layer of a package path inside the module.
func layer(p string) string {
	rel := strings.TrimPrefix(p, mod)
	switch {
	case strings.HasPrefix(rel, "cmd/"):
		return "cmd"
	case rel == "internal/sandbox" || strings.HasPrefix(rel, "internal/sandbox/"):
		return "sandbox"
	case rel == "integrasjonspunkt" || strings.HasPrefix(rel, "integrasjonspunkt/"):
		return "core"
	case rel == "pakkesporing" || strings.HasPrefix(rel, "pakkesporing/"):
		return "central"
	case strings.HasPrefix(rel, "internal/"):
		return "internal"
	default: // addressing, packaging, transport, update
		return "leaf"
	}
}

func isSim(p string) bool {
	last := p[strings.LastIndex(p, "/")+1:]
	return strings.HasSuffix(last, "sim")
}

// TestImportDirection keeps `cmd → integrasjonspunkt → leaves` true: leaves
// never import the core, the core never imports a command, and only the
// sandbox assembly, commands and other simulators import a simulator.
func TestImportDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-e", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string][]string{
		"cmd":      {"cmd", "sandbox", "core", "central", "internal", "leaf"},
		"sandbox":  {"sandbox", "internal", "leaf", "core", "central"},
		"central":  {"central", "core", "internal", "leaf"},
		"core":     {"core", "internal", "leaf"},
		"internal": {"internal"},
		"leaf":     {"internal", "leaf"},
	}
	checked := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		from := f[0]
		checked++
		for _, imp := range f[1:] {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			lf, li := layer(from), layer(imp)
			ok := false
			for _, a := range allowed[lf] {
				ok = ok || a == li
			}
			if !ok {
				t.Errorf("%s (%s) imports %s (%s): DESIGN.md allows %s → %v only", from, lf, imp, li, lf, allowed[lf])
			}
			if isSim(imp) && !isSim(from) && lf != "cmd" && lf != "sandbox" {
				t.Errorf("%s imports simulator %s: only the sandbox, commands and tests may", from, imp)
			}
		}
	}
	if checked < 5 {
		t.Fatalf("only %d packages listed; the check would prove nothing", checked)
	}
}

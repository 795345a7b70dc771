package broker_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDependencyDirection guards ADR 0001: broker imports nothing of ours; the
// transports, robust, fakes and the adapter import broker only (plus their own
// internal packages and the module's internal/stdoutguard, which imports nothing
// of ours); conformance imports broker and fakes; nothing imports cmd/. The fake
// gateway never imports scmhub/ibapi (ADR 0010: it would be the client checked
// against itself).
func TestDependencyDirection(t *testing.T) {
	const mod = "github.com/brokerkit/brokerkit/"
	allowed := map[string][]string{
		"broker":               {},
		"fakes":                {"broker", "fakes/internal/twspb"},
		"fakes/internal/twspb": {},
		"adapters/ibkr":        {"broker"},
		"conformance":          {"broker", "fakes"},
		"transport/stdiojson":  {"broker", "internal/stdoutguard"},
		"internal/stdoutguard": {},
		"transport/goplugin":   {"broker", "transport/goplugin/internal/pb"},
		"robust":               {"broker"},
	}
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		for _, imp := range fields[1:] {
			if strings.HasPrefix(pkg, "fakes") && strings.HasPrefix(imp, "github.com/scmhub/ibapi") {
				t.Errorf("%s imports %s: the fake gateway must not use the client it is checked against", pkg, imp)
			}
			dep, ours := strings.CutPrefix(imp, mod)
			if !ours {
				continue
			}
			if strings.HasPrefix(dep, "cmd/") {
				t.Errorf("%s imports %s: nothing imports cmd/", pkg, dep)
			}
			if want, ok := allowed[pkg]; ok && !slices.Contains(want, dep) {
				t.Errorf("%s imports %s; it may import only %v", pkg, dep, want)
			}
		}
	}
}

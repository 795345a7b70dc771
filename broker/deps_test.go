package broker_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDependencyDirection guards ADR 0001: broker imports nothing of ours; the
// transports, robust, fakes and the adapter import broker only (plus their own
// internal packages and the module's internal/ packages listed for them);
// conformance imports broker and fakes; nothing imports cmd/. The fake gateway
// never imports scmhub/ibapi (ADR 0010: it would be the client checked against
// itself).
//
// The module's internal/ packages import nothing of ours (the test broker:
// broker and fakes), each is listed here,
// and each may be imported only by the packages named in importers: the
// child-process plumbing by the transports, the leak checker by tests and test
// helpers only (never by a library package).
func TestDependencyDirection(t *testing.T) {
	const mod = "github.com/brokerkit/brokerkit/"
	allowed := map[string][]string{
		"broker":               {},
		"fakes":                {"broker", "fakes/internal/twspb"},
		"fakes/internal/twspb": {},
		"adapters/ibkr":        {"broker"},
		"conformance":          {"broker", "fakes"},
		"transport/stdiojson":  {"broker", "internal/stdoutguard", "internal/childproc"},
		"transport/goplugin":   {"broker", "transport/goplugin/internal/pb", "internal/childproc", "internal/grpclink"},
		"robust":               {"broker"},
		"internal/stdoutguard": {},
		"internal/childproc":   {},
		"internal/leakcheck":   {},
		"internal/grpclink":    {},
		"internal/testbroker":  {"broker", "fakes"},
	}
	// importers lists, for each module-level internal package, the packages
	// whose non-test code may import it ("*_test" code may import any of them).
	importers := map[string][]string{
		"internal/stdoutguard": {"transport/stdiojson", "transport/goplugin", "cmd/brokerkit"},
		"internal/childproc":   {"transport/stdiojson", "transport/goplugin"},
		"internal/leakcheck":   {"robust/internal/chaostest"},
		"internal/grpclink":    {"transport/goplugin"},
		"internal/testbroker":  {},
	}
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		if strings.HasPrefix(pkg, "internal/") {
			if _, ok := importers[pkg]; !ok {
				t.Errorf("%s: every module-level internal package must be listed in importers", pkg)
			}
		}
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
			if who, ok := importers[dep]; ok && !slices.Contains(who, pkg) {
				t.Errorf("%s imports %s; only %v (and tests) may", pkg, dep, who)
			}
		}
	}
}

package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sample renders go test -bench output for the given results.
func sample(lines map[string]string) string {
	var b strings.Builder
	b.WriteString("goos: linux\ngoarch: amd64\npkg: github.com/brokerkit/brokerkit/bench\ncpu: Test CPU\n")
	for name, rest := range lines {
		fmt.Fprintf(&b, "Benchmark%s-2   \t  1000\t %s\n", name, rest)
	}
	b.WriteString("PASS\nok  \tgithub.com/brokerkit/brokerkit/bench\t12.3s\n")
	return b.String()
}

func TestParseMedianAndSuffix(t *testing.T) {
	in := sample(nil) + "BenchmarkPing/stdiojson-2 100 30000 ns/op 600 B/op 10 allocs/op\n" +
		"BenchmarkPing/stdiojson-2 100 10000 ns/op 600 B/op 10 allocs/op\n" +
		"BenchmarkPing/stdiojson-2 100 20000 ns/op 900 B/op 10 allocs/op\n" +
		"BenchmarkThroughput/goplugin/callers=64-2 50 1000 ns/op 123456 ops/s\n" +
		"not a result line\nBenchmarkBroken-2 x 1 ns/op\n"
	r, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, k := range []struct{ name, unit string }{
		{"Ping/stdiojson", "ns/op"}, {"Ping/stdiojson", "B/op"}, {"Throughput/goplugin/callers=64", "ops/s"},
	} {
		v, ok := r.get(k.name, k.unit)
		if !ok {
			t.Fatalf("%s %s missing", k.name, k.unit)
		}
		got[k.name+" "+k.unit] = v
	}
	want := map[string]float64{
		"Ping/stdiojson ns/op":                 20000,
		"Ping/stdiojson B/op":                  600,
		"Throughput/goplugin/callers=64 ops/s": 123456,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if _, ok := r.get("Broken", "ns/op"); ok {
		t.Error("a line with a non-numeric iteration count was parsed")
	}
	if r.procs != "2" {
		t.Errorf("procs = %q, want 2", r.procs)
	}
}

// runs renders go test -bench output with several runs of each benchmark, in
// the given mode: lines maps a name to one result tail per run.
func runs(mode string, lines map[string][]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "brokerkit-bench-mode: %s\ngoos: linux\ngoarch: amd64\ncpu: Test CPU\n", mode)
	for name, rs := range lines {
		for _, rest := range rs {
			fmt.Fprintf(&b, "Benchmark%s-2   \t  1000\t %s\n", name, rest)
		}
	}
	return b.String()
}

func parseSets(t *testing.T, inputs ...string) sets {
	t.Helper()
	all := sets{}
	for _, in := range inputs {
		r, err := parse(strings.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		all[r.mode] = r
	}
	return all
}

func TestTargetsPerRunMedianSpreadAndCount(t *testing.T) {
	// Five runs: stdiojson Ping / raw pipe is 1.05, 1.08, 1.20, 1.09, 1.30 →
	// median 1.09, 3 of 5 met (≤ 1.10): missed. Ping / cat 1.50 … 1.86, all met.
	busy := "brokerkit-bench-started: 2026-12-02 03:00 UTC\nbrokerkit-bench-load: 7.10 6.00 5.00\n" + runs("busy", map[string][]string{
		"Ping/stdiojson":                            {"10500 ns/op", "10800 ns/op", "12000 ns/op", "10900 ns/op", "13000 ns/op"},
		"Ping/rawpipe-stdiojson":                    {"10000 ns/op", "10000 ns/op", "10000 ns/op", "10000 ns/op", "10000 ns/op"},
		"PingFloor/cat":                             {"7000 ns/op", "7000 ns/op", "7000 ns/op", "7000 ns/op", "7000 ns/op"},
		"ColdStart/goplugin":                        {"12000000 ns/op", "25000000 ns/op", "13000000 ns/op", "14000000 ns/op", "15000000 ns/op"},
		"PingGateway/stdiojson":                     {"100 ns/op", "100 ns/op", "100 ns/op", "100 ns/op", "100 ns/op"},
		"PingGateway/inprocess":                     {"40 ns/op", "40 ns/op", "40 ns/op", "40 ns/op", "40 ns/op"},
		"PingGateway/inprocess-gatewaychild-procs1": {"88000 ns/op", "88000 ns/op", "88000 ns/op", "88000 ns/op", "88000 ns/op"},
	})
	idle := runs("idle", map[string][]string{
		"Ping/stdiojson":         {"20000 ns/op", "20000 ns/op", "20000 ns/op"},
		"Ping/rawpipe-stdiojson": {"10000 ns/op", "10000 ns/op", "40000 ns/op"},
	})
	var out bytes.Buffer
	render(&out, parseSets(t, idle, busy))
	for _, want := range []string{
		"| stdiojson Ping / Go raw pipe echo | ≤ 1.10× | 2.00× (0.50×–2.00×), 1/3 met | 1.09× (1.05×–1.30×), 3/5 met | **missed** |",
		"| stdiojson Ping / cat echo | ≤ 2.00× | – | 1.56× (1.50×–1.86×), 5/5 met | met |",
		"| goplugin cold start (mutual TLS) | ≤ 20.0 ms | – | 14.0 ms (12.0 ms–25.0 ms), 4/5 met | met |",
		// 100 / (40 + 1.2 × 10 000) per run.
		"| IBKR Ping over stdiojson / (in-process + 1.2 × raw pipe echo) | ≤ 1.00× | – | 0.01× (0.01×–0.01×), 5/5 met | met |",
		"| IBKR Ping over stdiojson / (in-process, GOMAXPROCS 1, gateway in a child + 1.2 × raw pipe echo) | ≤ 1.00× | – | 0.00× (0.00×–0.00×), 5/5 met | met |",
		"| goplugin Ping / bare gRPC echo, mutual TLS | ≤ 1.25× | – | – | – |",
		"The tables below are medians of the busy run.",
		"| stdiojson | 10.9 µs | 1.09× | 1.56× |",
		"Runs: idle 3 run(s), busy 5 run(s)",
		"Busy: 5 run(s), started 2026-12-02 03:00 UTC, load average 7.10 at the start.",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q; output:\n%s", want, out.String())
		}
	}
}

func TestFigureTablesAndReport(t *testing.T) {
	in := sample(map[string]string{
		"Throughput/stdiojson/callers=1":  "1 ns/op 10000 ops/s",
		"Throughput/stdiojson/callers=64": "1 ns/op 90000 ops/s",
		"Positions/n=10000/inprocess":     "40000000 ns/op 2097152 B/op",
		"Positions/n=10000/stdiojson":     "60000000 ns/op 4194304 B/op",
		"ColdStart/goplugin-automtls":     "30000000 ns/op",
		"KillRecover/goplugin":            "70000000 ns/op 70 ms-median 90 ms-p95 40 kills",
		"Latency/cat":                     "9000 ns/op 5000 ns-p50 9000 ns-p90 20000 ns-p99 60000 ns-p999",
	})
	all := parseSets(t, in)
	var out bytes.Buffer
	render(&out, all)
	for _, want := range []string{
		"| stdiojson | 10000/s | – | – | – | 90000/s | – | 9.00× |",
		"| 10000 | stdiojson | 60.0 ms | 1.50× | 4.0 MiB | 2.00× |",
		"| goplugin, go-plugin's AutoMTLS (P-521) | 30.0 ms | – |",
		"| goplugin | 70.0 ms | 90.0 ms | 40 |",
		"| cat | 5.0 µs | 9.0 µs | 20.0 µs | 60.0 µs |",
		"| stdiojson throughput, 64 callers / 1 caller | ≥ 8.00× | 9.00× (9.00×–9.00×), 1/1 met | – | met |",
		"cpu: Test CPU",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q; output:\n%s", want, out.String())
		}
	}
	rep := report(all)
	want := Report{
		Mode:       "idle",
		Latency:    map[string]map[string]float64{"cat": {"p50": 5000, "p90": 9000, "p99": 20000, "p999": 60000}},
		Throughput: map[string][]Point{"stdiojson": {{1, 10000}, {64, 90000}}},
		Positions:  map[string][]Point{"inprocess": {{10000, 40000000}}, "stdiojson": {{10000, 60000000}}},
	}
	if diff := cmp.Diff(want, rep); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
}

func TestTargetsOnlyIsTheTargetsTable(t *testing.T) {
	busy := runs("busy", map[string][]string{
		"Ping/stdiojson":           {"10500 ns/op", "10800 ns/op"},
		"Ping/rawpipe-stdiojson":   {"10000 ns/op", "10000 ns/op"},
		"Positions/n=10/inprocess": {"1000 ns/op", "1000 ns/op"},
	})
	all := parseSets(t, busy)
	var full, only bytes.Buffer
	render(&full, all)
	renderTargets(&only, all)
	if !strings.HasPrefix(full.String(), only.String()) {
		t.Errorf("the full report does not start with the targets table:\n%s\n---\n%s", only.String(), full.String())
	}
	// Every target has its row, and nothing but the targets is in it.
	rows := 0
	for _, l := range strings.Split(only.String(), "\n") {
		if strings.HasPrefix(l, "| ") && !strings.HasPrefix(l, "| target ") {
			rows++
		}
	}
	if rows != len(targets) {
		t.Errorf("%d target rows, want %d:\n%s", rows, len(targets), only.String())
	}
	if strings.Contains(only.String(), "Positions: fake gateway") {
		t.Errorf("the targets table holds a figure table:\n%s", only.String())
	}
}

func TestPassesConcatenated(t *testing.T) {
	// Two passes of the suite appended to one file, as make bench writes them:
	// the i-th figures pair up, the start is the first pass's, the loads a range.
	pass := func(started, load, ping, raw string) string {
		return "brokerkit-bench-mode: busy\nbrokerkit-bench-started: " + started + "\nbrokerkit-bench-load: " + load + "\n" +
			runs("busy", map[string][]string{"Ping/stdiojson": {ping}, "Ping/rawpipe-stdiojson": {raw}})
	}
	in := pass("2026-12-02 03:00 UTC", "9.50 8.00 7.00", "11000 ns/op", "10000 ns/op") +
		pass("2026-12-02 03:05 UTC", "3.25 6.00 7.00", "30000 ns/op", "20000 ns/op")
	var out bytes.Buffer
	renderTargets(&out, parseSets(t, in))
	for _, want := range []string{
		"| stdiojson Ping / Go raw pipe echo | ≤ 1.10× | – | 1.30× (1.10×–1.50×), 1/2 met | **missed** |",
		"Busy: 2 run(s), started 2026-12-02 03:00 UTC, load average 3.25–9.50 at the passes' starts.",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q; output:\n%s", want, out.String())
		}
	}
}

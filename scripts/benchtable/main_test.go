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

func TestRenderRatiosAndVerdicts(t *testing.T) {
	in := sample(map[string]string{
		"Ping/stdiojson":                  "24000 ns/op",
		"Ping/rawpipe-stdiojson":          "20000 ns/op",
		"Ping/goplugin":                   "90000 ns/op",
		"Ping/rawpipe-goplugin":           "30000 ns/op",
		"Throughput/stdiojson/callers=1":  "1 ns/op 10000 ops/s",
		"Throughput/stdiojson/callers=64": "1 ns/op 90000 ops/s",
		"Positions/n=10000/inprocess":     "40000000 ns/op 2097152 B/op",
		"Positions/n=10000/stdiojson":     "60000000 ns/op 4194304 B/op",
		"ColdStart/goplugin":              "45000000 ns/op",
		"KillRecover/stdiojson":           "30000000 ns/op 31.5 ms-median 48.25 ms-p95 20 kills",
		"KillRecover/goplugin":            "70000000 ns/op 70 ms-median 90 ms-p95 40 kills",
	})
	r, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	render(&out, r)
	for _, want := range []string{
		"| stdiojson | 24.0 µs | 20.0 µs | 1.20× | ≤ 1.25× | met |",
		"| goplugin | 90.0 µs | 30.0 µs | 3.00× | ≤ 2.00× | **missed** |",
		"| stdiojson | 10000/s | – | 90000/s | 9.00× | ≥ 8× | met |",
		"| 10000 | stdiojson | 60.0 ms | 1.50× | 4.0 MiB | 2.00× | ≤ 2× | met |",
		"| goplugin | 45.0 ms | – | ≤ 20 ms | **missed** |",
		"| stdiojson | 31.5 ms | 48.2 ms | 20 | ≤ 50 ms | met |",
		"| goplugin | 70.0 ms | 90.0 ms | 40 | ≤ 50 ms | **missed** |",
		"cpu: Test CPU",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q; table:\n%s", want, out.String())
		}
	}
}

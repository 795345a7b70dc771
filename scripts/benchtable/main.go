// Command benchtable reads the output of `go test -bench ./bench/` and prints
// brokerkit's performance targets and figures as Markdown tables, each next to
// the baseline measured in the same run.
//
//	go test -c -o bench.test ./bench/
//	for i in 1 2 3 4 5; do ./bench.test -test.run='^$' -test.bench=. -test.benchmem >> bench-idle.txt; done
//	for i in 1 2 3 4 5; do BROKERKIT_BENCH_BUSY=1 ./bench.test -test.run='^$' -test.bench=. -test.benchmem >> bench-busy.txt; done
//	go run ./scripts/benchtable bench-idle.txt bench-busy.txt
//
// (what `make bench` does). It reads the files named (standard input if none);
// each says in its "brokerkit-bench-mode:" line whether it ran idle or beside a
// spinning process (busy). A run is one pass of the suite, so the i-th figure of
// a benchmark and of its baseline were measured seconds apart (go test's -count
// would repeat each benchmark back to back instead, and pair figures taken
// minutes apart). A ratio is computed per run (the i-th run of a benchmark against the
// i-th of its baseline) and reported as the median of the runs with their spread
// (min–max) and how many runs met the target; a target counts as met when at
// least 4 runs in 5 met it, judged on the busy run when there is one. The other
// tables show medians of the busy run if there is one, else of the idle run. A
// figure whose benchmark is missing prints as "–". With -json FILE it also
// writes the figures for scripts/benchplot; with -targets-only it prints only
// the targets table, which `make bench` prints last for pasting.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	jsonOut := flag.String("json", "", "also write the figures as JSON to this file, for scripts/benchplot")
	targetsOnly := flag.Bool("targets-only", false, "print only the table of issue 18's targets (what `make bench` prints last)")
	flag.Parse()
	sets, err := readAll(flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	if *targetsOnly {
		renderTargets(os.Stdout, sets)
	} else {
		render(os.Stdout, sets)
	}
	if *jsonOut != "" {
		if err := writeJSON(*jsonOut, sets); err != nil {
			fmt.Fprintln(os.Stderr, "benchtable:", err)
			os.Exit(1)
		}
	}
}

// sets holds one results per mode ("idle", "busy").
type sets map[string]*results

// primary is the results the figure tables show: busy if measured, else idle.
func (s sets) primary() (*results, string) {
	for _, m := range []string{"busy", "idle"} {
		if r := s[m]; r != nil {
			return r, m
		}
	}
	return &results{values: map[string]map[string][]float64{}}, "idle"
}

// readAll parses each file (standard input if none) and keys it by its mode.
func readAll(files []string) (sets, error) {
	out := sets{}
	add := func(name string, r io.Reader) error {
		res, err := parse(r)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if len(res.values) == 0 {
			return fmt.Errorf("%s: no benchmark results", name)
		}
		out[res.mode] = res
		return nil
	}
	if len(files) == 0 {
		return out, add("standard input", os.Stdin)
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		err = add(f, fh)
		_ = fh.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// results holds every measurement, by benchmark name (without "Benchmark" and
// the -GOMAXPROCS suffix) and unit.
type results struct {
	values map[string]map[string][]float64
	header []string // goos, goarch, cpu lines
	procs  string
	mode   string // "idle" or "busy" (brokerkit-bench-mode)
	// started is when the first pass began (brokerkit-bench-started) and
	// loads the 1-minute load average at the start of each pass
	// (brokerkit-bench-load), if the output says.
	started string
	loads   []float64
}

var procsSuffix = regexp.MustCompile(`-(\d+)$`)

// parse reads `go test -bench` output; lines that are not results are skipped.
func parse(r io.Reader) (*results, error) {
	res := &results{values: make(map[string]map[string][]float64), mode: "idle"}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		for _, h := range []string{"goos:", "goarch:", "cpu:"} {
			if strings.HasPrefix(line, h) && !slices.Contains(res.header, line) {
				res.header = append(res.header, line)
			}
		}
		if m, ok := strings.CutPrefix(line, "brokerkit-bench-mode:"); ok {
			res.mode = strings.TrimSpace(m)
			continue
		}
		if m, ok := strings.CutPrefix(line, "brokerkit-bench-started:"); ok {
			if res.started == "" { // the first pass's
				res.started = strings.TrimSpace(m)
			}
			continue
		}
		if m, ok := strings.CutPrefix(line, "brokerkit-bench-load:"); ok {
			if f := strings.Fields(m); len(f) > 0 {
				if v, err := strconv.ParseFloat(f[0], 64); err == nil {
					res.loads = append(res.loads, v)
				}
			}
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if m := procsSuffix.FindStringSubmatch(name); m != nil {
			name = strings.TrimSuffix(name, m[0])
			res.procs = m[1]
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			if res.values[name] == nil {
				res.values[name] = make(map[string][]float64)
			}
			res.values[name][f[i+1]] = append(res.values[name][f[i+1]], v)
		}
	}
	return res, sc.Err()
}

// get returns the median of a benchmark's values in unit, and whether there are any.
func (r *results) get(name, unit string) (float64, bool) {
	vs := r.values[name][unit]
	if len(vs) == 0 {
		return 0, false
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2], true
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2, true
}

// runs returns how many times name was measured.
func (r *results) runs(name string) int { return len(r.values[name]["ns/op"]) }

// fig is one figure, possibly missing.
type fig struct {
	v  float64
	ok bool
}

func (r *results) fig(name, unit string) fig {
	v, ok := r.get(name, unit)
	return fig{v, ok}
}

func ratio(a, b fig) fig {
	if !a.ok || !b.ok || b.v == 0 {
		return fig{}
	}
	return fig{a.v / b.v, true}
}

const missing = "–"

func fmtDur(f fig) string {
	if !f.ok {
		return missing
	}
	ns := f.v
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.2f s", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.1f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

func fmtMS(f fig) string {
	if !f.ok {
		return missing
	}
	return fmt.Sprintf("%.1f ms", f.v)
}

func fmtRatio(f fig) string {
	if !f.ok {
		return missing
	}
	return fmt.Sprintf("%.2f×", f.v)
}

func fmtRate(f fig) string {
	if !f.ok {
		return missing
	}
	return fmt.Sprintf("%.0f/s", f.v)
}

func fmtBytes(f fig) string {
	if !f.ok {
		return missing
	}
	switch b := f.v; {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	default:
		return fmt.Sprintf("%.0f B", b)
	}
}

var transports = []string{"stdiojson", "goplugin"}

// Growth axes, as bench_test.go measures them.
var (
	callers   = []int{1, 4, 8, 16, 64, 256}
	positions = []int{10, 100, 1000, 10000, 100000}
)

func render(w io.Writer, all sets) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	renderTargets(w, all)
	r, mode := all.primary()
	p("\nThe tables below are medians of the %s run.\n", mode)

	p("\n### Ping round trip to an in-memory Broker, and the floors beside it\n\n")
	p("| path | round trip | × Go raw pipe echo | × cat echo |\n|---|---:|---:|---:|\n")
	raw, cat := r.fig("Ping/rawpipe-stdiojson", "ns/op"), r.fig("PingFloor/cat", "ns/op")
	for _, row := range []struct{ label, name string }{
		{"stdiojson", "Ping/stdiojson"},
		{"goplugin (mutual TLS)", "Ping/goplugin"},
		{"goplugin, no TLS", "Ping/goplugin-nomtls"},
		{"Go raw pipe echo, stdiojson's ping line", "Ping/rawpipe-stdiojson"},
		{"Go raw pipe echo, 64 bytes", "Ping/rawpipe-goplugin"},
		{"Go raw pipe echo, blocking read(2) on both sides", "PingFloor/rawpipe-blocking"},
		{"cat echo, stdiojson's ping line", "PingFloor/cat"},
		{"bare gRPC unary echo, Unix socket, mutual TLS", "PingFloor/grpc-tls"},
		{"bare gRPC unary echo, Unix socket, no TLS", "PingFloor/grpc"},
		{"go-plugin net/rpc echo", "PingFloor/netrpc"},
	} {
		t := r.fig(row.name, "ns/op")
		p("| %s | %s | %s | %s |\n", row.label, fmtDur(t), fmtRatio(ratio(t, raw)), fmtRatio(ratio(t, cat)))
	}

	p("\n### Latency of one caller's round trips (percentiles)\n\n")
	p("| path | p50 | p90 | p99 | p99.9 |\n|---|---:|---:|---:|---:|\n")
	for _, name := range latencyPaths {
		b := "Latency/" + name
		p("| %s | %s | %s | %s | %s |\n", name, fmtDur(r.fig(b, "ns-p50")), fmtDur(r.fig(b, "ns-p90")), fmtDur(r.fig(b, "ns-p99")), fmtDur(r.fig(b, "ns-p999")))
	}

	p("\n### Ping through the IBKR adapter to the fake gateway\n\n")
	p("| path | Ping | × in-process |\n|---|---:|---:|\n")
	in := r.fig("PingGateway/inprocess", "ns/op")
	p("| in-process | %s | 1.00× |\n", fmtDur(in))
	// The floor of a worker's Ping (ADR 0018): the adapter here, the gateway in a child process.
	for _, row := range []struct{ name, label string }{
		{"inprocess-gatewaychild", "in-process, gateway in a child process"},
		{"inprocess-gatewaychild-procs1", "in-process with GOMAXPROCS 1, gateway in a child process"},
	} {
		if t := r.fig("PingGateway/"+row.name, "ns/op"); t.ok {
			p("| %s | %s | %s |\n", row.label, fmtDur(t), fmtRatio(ratio(t, in)))
		}
	}
	for _, tr := range transports {
		t := r.fig("PingGateway/"+tr, "ns/op")
		p("| %s | %s | %s |\n", tr, fmtDur(t), fmtRatio(ratio(t, in)))
	}
	if remote, raw := r.fig("PingGateway/inprocess-gatewaychild-procs1", "ns/op"), r.fig("Ping/rawpipe-stdiojson", "ns/op"); remote.ok && raw.ok {
		t, floor := r.fig("PingGateway/stdiojson", "ns/op"), fig{remote.v + 1.2*raw.v, true}
		p("\nFloor of the stdiojson row (ADR 0018): in-process with GOMAXPROCS 1 and the gateway in a child + 1.2 × Go raw pipe echo = %s; stdiojson is %s it.\n",
			fmtDur(floor), fmtRatio(ratio(t, floor)))
	}

	p("\n### Throughput: Ping from concurrent callers to an in-memory Broker (calls/s)\n\n")
	p("| transport |")
	for _, n := range callers {
		p(" %d |", n)
	}
	p(" 64 / 1 |\n|---|")
	for range callers {
		p("---:|")
	}
	p("---:|\n")
	for _, tr := range transports {
		p("| %s |", tr)
		for _, n := range callers {
			p(" %s |", fmtRate(r.fig(fmt.Sprintf("Throughput/%s/callers=%d", tr, n), "ops/s")))
		}
		one, many := r.fig(fmt.Sprintf("Throughput/%s/callers=1", tr), "ops/s"), r.fig(fmt.Sprintf("Throughput/%s/callers=64", tr), "ops/s")
		p(" %s |\n", fmtRatio(ratio(many, one)))
	}
	p("\nFloor, 64 requests in flight: Go raw pipe echo %s, cat %s.\n",
		fmtRate(r.fig("ThroughputFloor/rawpipe/depth=64", "ops/s")), fmtRate(r.fig("ThroughputFloor/cat/depth=64", "ops/s")))

	for _, list := range []struct {
		op    string
		sizes []int
	}{{"Positions", positions}, {"AccountUpdates", []int{100, 10000}}} {
		p("\n### %s: fake gateway → IBKR adapter → transport, vs the adapter in process\n\n", list.op)
		p("| positions | path | time | × in-process | allocated (host) | × in-process |\n|---:|---|---:|---:|---:|---:|\n")
		for _, n := range list.sizes {
			prefix := fmt.Sprintf("%s/n=%d/", list.op, n)
			inT, inB := r.fig(prefix+"inprocess", "ns/op"), r.fig(prefix+"inprocess", "B/op")
			p("| %d | in-process | %s | 1.00× | %s | 1.00× |\n", n, fmtDur(inT), fmtBytes(inB))
			for _, tr := range transports {
				t, b := r.fig(prefix+tr, "ns/op"), r.fig(prefix+tr, "B/op")
				p("| %d | %s | %s | %s | %s | %s |\n", n, tr, fmtDur(t), fmtRatio(ratio(t, inT)), fmtBytes(b), fmtRatio(ratio(b, inB)))
			}
		}
	}

	p("\n### Cold start: spawn + handshake + Connect + first Accounts\n\n")
	p("| path | time | × in-process |\n|---|---:|---:|\n")
	inCold := r.fig("ColdStart/inprocess", "ns/op")
	p("| in-process | %s | 1.00× |\n", fmtDur(inCold))
	for _, row := range []struct{ label, name string }{
		{"stdiojson", "stdiojson"},
		{"goplugin, mutual TLS (P-256, default)", "goplugin"},
		{"goplugin, go-plugin's AutoMTLS (P-521)", "goplugin-automtls"},
		{"goplugin, no TLS", "goplugin-nomtls"},
	} {
		t := r.fig("ColdStart/"+row.name, "ns/op")
		p("| %s | %s | %s |\n", row.label, fmtDur(t), fmtRatio(ratio(t, inCold)))
	}

	p("\n### Quote streams: fake gateway → IBKR adapter → path → subscriber, vs the adapter in process\n\n")
	p("Ticks/s: updates received while the gateway writes more steps than any path delivers one by one (the rest is\n")
	p("conflated, counted per received tick); latency: a step's write by the gateway to the first update showing it, at\n")
	p("a rate every path keeps up with.\n\n")
	p("| contracts | path | ticks/s | × in-process | conflated / tick | latency p50 | × in-process | p99 | × in-process |\n")
	p("|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range []int{1, 500} {
		ticks, lat := fmt.Sprintf("QuoteTicks/contracts=%d/", n), fmt.Sprintf("QuoteLatency/contracts=%d/", n)
		inRate, in50, in99 := r.fig(ticks+"inprocess", "ticks/s"), r.fig(lat+"inprocess", "ns-p50"), r.fig(lat+"inprocess", "ns-p99")
		for _, path := range quotePaths {
			rate, p50, p99 := r.fig(ticks+path, "ticks/s"), r.fig(lat+path, "ns-p50"), r.fig(lat+path, "ns-p99")
			dropped := missing
			if d := r.fig(ticks+path, "dropped/tick"); d.ok {
				dropped = fmt.Sprintf("%.1f", d.v)
			}
			p("| %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", n, path, fmtRate(rate), fmtRatio(ratio(rate, inRate)), dropped,
				fmtDur(p50), fmtRatio(ratio(p50, in50)), fmtDur(p99), fmtRatio(ratio(p99, in99)))
		}
	}

	p("\n### kill -9 of the worker → next successful call through robust (default options)\n\n")
	p("| transport | median | p95 | kills |\n|---|---:|---:|---:|\n")
	for _, tr := range transports {
		med, p95, kills := r.fig("KillRecover/"+tr, "ms-median"), r.fig("KillRecover/"+tr, "ms-p95"), r.fig("KillRecover/"+tr, "kills")
		k := missing
		if kills.ok {
			k = strconv.Itoa(int(kills.v))
		}
		p("| %s | %s | %s | %s |\n", tr, fmtMS(med), fmtMS(p95), k)
	}

	p("\n")
	if len(r.header) > 0 {
		p("Machine: %s", strings.Join(r.header, ", "))
		if r.procs != "" {
			p(", GOMAXPROCS %s", r.procs)
		}
		p(". ")
	}
	p("Runs: %s; ratios are to baselines measured in the same run.\n", all.modes())
}

// quotePaths are BenchmarkQuoteTicks' and BenchmarkQuoteLatency's paths.
var quotePaths = []string{"inprocess", "stdiojson", "goplugin", "robust-stdiojson"}

// latencyPaths are BenchmarkLatency's sub-benchmarks.
var latencyPaths = []string{"stdiojson", "goplugin", "goplugin-nomtls", "rawpipe", "cat", "grpc", "grpc-tls"}

func (r *results) maxRuns() int {
	n := 0
	for name := range r.values {
		n = max(n, r.runs(name))
	}
	return n
}

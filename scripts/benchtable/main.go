// Command benchtable reads the output of `go test -bench ./bench/` on its
// standard input and prints the figures of brokerkit's performance targets as
// Markdown tables, each next to the baseline measured in the same run.
//
//	go test -run='^$' -bench=. -benchmem -count=3 ./bench/ | tee bench.txt
//	go run ./scripts/benchtable < bench.txt
//
// When a benchmark ran several times (-count), its median is used. A figure
// whose benchmark is missing from the input prints as "–".
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	res, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	if len(res.values) == 0 {
		fmt.Fprintln(os.Stderr, "benchtable: no benchmark results on standard input")
		os.Exit(1)
	}
	render(os.Stdout, res)
}

// results holds every measurement, by benchmark name (without "Benchmark" and
// the -GOMAXPROCS suffix) and unit.
type results struct {
	values map[string]map[string][]float64
	header []string // goos, goarch, cpu lines
	procs  string
}

var procsSuffix = regexp.MustCompile(`-(\d+)$`)

// parse reads `go test -bench` output; lines that are not results are skipped.
func parse(r io.Reader) (*results, error) {
	res := &results{values: make(map[string]map[string][]float64)}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		for _, h := range []string{"goos:", "goarch:", "cpu:"} {
			if strings.HasPrefix(line, h) && !slices.Contains(res.header, line) {
				res.header = append(res.header, line)
			}
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

// verdict says whether f meets the target: at most max (atMost) or at least min.
func verdict(f fig, bound float64, atMost bool) string {
	switch {
	case !f.ok:
		return missing
	case atMost && f.v <= bound, !atMost && f.v >= bound:
		return "met"
	}
	return "**missed**"
}

var transports = []string{"stdiojson", "goplugin"}

func render(w io.Writer, r *results) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }

	p("### Ping round trip: transport to an in-memory Broker vs a raw pipe echo of the same bytes\n\n")
	p("| transport | Ping | raw pipe echo | ratio | target | |\n|---|---:|---:|---:|---:|---|\n")
	for _, tr := range transports {
		t, base := r.fig("Ping/"+tr, "ns/op"), r.fig("Ping/rawpipe-"+tr, "ns/op")
		target := map[string]float64{"stdiojson": 1.25, "goplugin": 2}[tr]
		rt := ratio(t, base)
		p("| %s | %s | %s | %s | ≤ %.2f× | %s |\n", tr, fmtDur(t), fmtDur(base), fmtRatio(rt), target, verdict(rt, target, true))
	}

	p("\n### Ping through the IBKR adapter to the fake gateway\n\n")
	p("| path | Ping | × in-process |\n|---|---:|---:|\n")
	in := r.fig("PingGateway/inprocess", "ns/op")
	p("| in-process | %s | 1.00× |\n", fmtDur(in))
	for _, tr := range transports {
		t := r.fig("PingGateway/"+tr, "ns/op")
		p("| %s | %s | %s |\n", tr, fmtDur(t), fmtRatio(ratio(t, in)))
	}

	p("\n### Throughput: Ping from concurrent callers to an in-memory Broker\n\n")
	p("| transport | 1 caller | 8 callers | 64 callers | 64 / 1 | target | |\n|---|---:|---:|---:|---:|---:|---|\n")
	for _, tr := range transports {
		var f [3]fig
		for i, n := range []int{1, 8, 64} {
			f[i] = r.fig(fmt.Sprintf("Throughput/%s/callers=%d", tr, n), "ops/s")
		}
		rt := ratio(f[2], f[0])
		p("| %s | %s | %s | %s | %s | ≥ 8× | %s |\n", tr, fmtRate(f[0]), fmtRate(f[1]), fmtRate(f[2]), fmtRatio(rt), verdict(rt, 8, false))
	}

	p("\n### Positions: fake gateway → IBKR adapter → transport, vs the adapter in process\n\n")
	p("| positions | path | time | × in-process | allocated (host) | × in-process | target | |\n|---:|---|---:|---:|---:|---:|---:|---|\n")
	for _, n := range []int{100, 10000, 100000} {
		prefix := fmt.Sprintf("Positions/n=%d/", n)
		inT, inB := r.fig(prefix+"inprocess", "ns/op"), r.fig(prefix+"inprocess", "B/op")
		p("| %d | in-process | %s | 1.00× | %s | 1.00× | | |\n", n, fmtDur(inT), fmtBytes(inB))
		for _, tr := range transports {
			t, b := r.fig(prefix+tr, "ns/op"), r.fig(prefix+tr, "B/op")
			rt := ratio(t, inT)
			target, v := "", ""
			if n == 10000 {
				target, v = "≤ 2×", verdict(rt, 2, true)
			}
			p("| %d | %s | %s | %s | %s | %s | %s | %s |\n", n, tr, fmtDur(t), fmtRatio(rt), fmtBytes(b), fmtRatio(ratio(b, inB)), target, v)
		}
	}

	p("\n### Cold start: spawn + handshake + Connect + first Accounts\n\n")
	p("| path | time | × in-process | target | |\n|---|---:|---:|---:|---|\n")
	inCold := r.fig("ColdStart/inprocess", "ns/op")
	p("| in-process | %s | 1.00× | | |\n", fmtDur(inCold))
	for _, tr := range append(slices.Clone(transports), "goplugin-nomtls", "goplugin-automtls") {
		t := r.fig("ColdStart/"+tr, "ns/op")
		if strings.HasPrefix(tr, "goplugin-") && !t.ok {
			continue
		}
		p("| %s | %s | %s | ≤ 20 ms | %s |\n", tr, fmtDur(t), fmtRatio(ratio(t, inCold)), verdict(fig{t.v / 1e6, t.ok}, 20, true))
	}

	p("\n### kill -9 of the worker → next successful call through robust (default options)\n\n")
	p("| transport | median | p95 | kills | target (median) | |\n|---|---:|---:|---:|---:|---|\n")
	for _, tr := range transports {
		med, p95, kills := r.fig("KillRecover/"+tr, "ms-median"), r.fig("KillRecover/"+tr, "ms-p95"), r.fig("KillRecover/"+tr, "kills")
		k := missing
		if kills.ok {
			k = strconv.Itoa(int(kills.v))
		}
		p("| %s | %s | %s | %s | ≤ 50 ms | %s |\n", tr, fmtMS(med), fmtMS(p95), k, verdict(med, 50, true))
	}

	p("\n")
	if len(r.header) > 0 {
		p("Machine: %s", strings.Join(r.header, ", "))
		if r.procs != "" {
			p(", GOMAXPROCS %s", r.procs)
		}
		p(". ")
	}
	p("Figures are medians of %d run(s) of each benchmark; ratios are to baselines measured in the same run.\n", r.maxRuns())
}

func (r *results) maxRuns() int {
	n := 0
	for name := range r.values {
		n = max(n, r.runs(name))
	}
	return n
}

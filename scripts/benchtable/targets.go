package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// target is one of issue 18's targets: a per-run figure and its bound.
type target struct {
	what   string
	figure func(r *results) []float64 // one value per run
	bound  float64
	atMost bool
	format func(float64) string
}

// series returns a benchmark's values in unit, one per run, in run order.
func (r *results) series(name, unit string) []float64 { return r.values[name][unit] }

// perRun combines the i-th runs of several series with f, for as many runs as
// all of them have.
func perRun(f func(v ...float64) float64, s ...[]float64) []float64 {
	n := -1
	for _, x := range s {
		if n < 0 || len(x) < n {
			n = len(x)
		}
	}
	out := make([]float64, 0, max(n, 0))
	for i := range max(n, 0) {
		v := make([]float64, len(s))
		for j := range s {
			v[j] = s[j][i]
		}
		out = append(out, f(v...))
	}
	return out
}

func div(v ...float64) float64 { return v[0] / v[1] }

// ratioTarget is a/b per run.
func ratioTarget(what, a, b, unit string, bound float64, atMost bool) target {
	return target{what: what, bound: bound, atMost: atMost, format: func(v float64) string { return fmt.Sprintf("%.2f×", v) },
		figure: func(r *results) []float64 { return perRun(div, r.series(a, unit), r.series(b, unit)) }}
}

// targets are issue 18's, medians on the 2-core machine.
var targets = []target{
	ratioTarget("stdiojson Ping / Go raw pipe echo", "Ping/stdiojson", "Ping/rawpipe-stdiojson", "ns/op", 1.10, true),
	ratioTarget("stdiojson Ping / cat echo", "Ping/stdiojson", "PingFloor/cat", "ns/op", 2, true),
	ratioTarget("goplugin Ping / bare gRPC echo, mutual TLS", "Ping/goplugin", "PingFloor/grpc-tls", "ns/op", 1.25, true),
	ratioTarget("goplugin Ping / bare gRPC echo, no TLS", "Ping/goplugin-nomtls", "PingFloor/grpc", "ns/op", 1.25, true),
	ratioTarget("stdiojson throughput, 64 callers / 1 caller", "Throughput/stdiojson/callers=64", "Throughput/stdiojson/callers=1", "ops/s", 8, false),
	ratioTarget("stdiojson throughput, 64 callers / raw pipe, 64 pipelined", "Throughput/stdiojson/callers=64", "ThroughputFloor/rawpipe/depth=64", "ops/s", 0.7, false),
	{
		what: "goplugin cold start (mutual TLS)", bound: 20, atMost: true,
		format: func(v float64) string { return fmt.Sprintf("%.1f ms", v) },
		figure: func(r *results) []float64 {
			return perRun(func(v ...float64) float64 { return v[0] / 1e6 }, r.series("ColdStart/goplugin", "ns/op"))
		},
	},
	{
		what: "IBKR Ping over stdiojson / (in-process + 1.2 × raw pipe echo)", bound: 1, atMost: true,
		format: func(v float64) string { return fmt.Sprintf("%.2f×", v) },
		figure: func(r *results) []float64 {
			return perRun(func(v ...float64) float64 { return v[0] / (v[1] + 1.2*v[2]) },
				r.series("PingGateway/stdiojson", "ns/op"), r.series("PingGateway/inprocess", "ns/op"), r.series("Ping/rawpipe-stdiojson", "ns/op"))
		},
	},
	{
		// ADR 0018: the same bound with the floor measured where the worker's adapter runs, in another process
		// than the gateway and with GOMAXPROCS 1.
		what: "IBKR Ping over stdiojson / (in-process, GOMAXPROCS 1, gateway in a child + 1.2 × raw pipe echo)", bound: 1, atMost: true,
		format: func(v float64) string { return fmt.Sprintf("%.2f×", v) },
		figure: func(r *results) []float64 {
			return perRun(func(v ...float64) float64 { return v[0] / (v[1] + 1.2*v[2]) },
				r.series("PingGateway/stdiojson", "ns/op"), r.series("PingGateway/inprocess-gatewaychild-procs1", "ns/op"), r.series("Ping/rawpipe-stdiojson", "ns/op"))
		},
	},
	ratioTarget("Positions 10 000, stdiojson / in-process", "Positions/n=10000/stdiojson", "Positions/n=10000/inprocess", "ns/op", 2, true),
	ratioTarget("Positions 10 000, goplugin / in-process", "Positions/n=10000/goplugin", "Positions/n=10000/inprocess", "ns/op", 2, true),
	{
		what: "kill -9 → next success, stdiojson (median of a run)", bound: 50, atMost: true,
		format: func(v float64) string { return fmt.Sprintf("%.1f ms", v) },
		figure: func(r *results) []float64 { return r.series("KillRecover/stdiojson", "ms-median") },
	},
	{
		what: "kill -9 → next success, goplugin (median of a run)", bound: 50, atMost: true,
		format: func(v float64) string { return fmt.Sprintf("%.1f ms", v) },
		figure: func(r *results) []float64 { return r.series("KillRecover/goplugin", "ms-median") },
	},
}

// summary is a target's figure over the runs of one mode.
type summary struct {
	med, lo, hi float64
	met, runs   int
}

func summarize(t target, vs []float64) (summary, bool) {
	if len(vs) == 0 {
		return summary{}, false
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	sm := summary{med: median(s), lo: s[0], hi: s[len(s)-1], runs: len(s)}
	for _, v := range s {
		if t.atMost && v <= t.bound || !t.atMost && v >= t.bound {
			sm.met++
		}
	}
	return sm, true
}

// median of sorted s.
func median(s []float64) float64 {
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// passes: met in at least 4 runs of 5 (80 %).
func (s summary) passes() bool { return s.met*5 >= s.runs*4 }

func renderTargets(w io.Writer, all sets) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("### Targets (issue 18): each ratio per run, median (min–max) and runs that met it\n\n")
	p("| target | bound | idle | busy (one core spinning) | verdict |\n|---|---:|---:|---:|---|\n")
	for _, t := range targets {
		op := "≤"
		if !t.atMost {
			op = "≥"
		}
		cells := map[string]string{}
		var judged *summary
		for _, mode := range []string{"idle", "busy"} {
			cells[mode] = missing
			r := all[mode]
			if r == nil {
				continue
			}
			sm, ok := summarize(t, t.figure(r))
			if !ok {
				continue
			}
			cells[mode] = fmt.Sprintf("%s (%s–%s), %d/%d met", t.format(sm.med), t.format(sm.lo), t.format(sm.hi), sm.met, sm.runs)
			judged = &sm
		}
		v := missing
		if judged != nil {
			v = "**missed**"
			if judged.passes() {
				v = "met"
			}
		}
		p("| %s | %s %s | %s | %s | %s |\n", t.what, op, t.format(t.bound), cells["idle"], cells["busy"], v)
	}
	p("\nThe verdict is the busy run's when there is one (issue 18: on an idle VM the floors are bimodal), else the idle run's; ")
	p("a target is met when at least 4 runs in 5 met it.")
	for _, mode := range []string{"idle", "busy"} {
		if r := all[mode]; r != nil {
			p(" %s", r.condition(mode))
		}
	}
	p("\n")
}

// condition says when a mode's run began and the machine's load then, as far
// as its output tells.
func (r *results) condition(mode string) string {
	s := fmt.Sprintf("%s: %d run(s)", strings.ToUpper(mode[:1])+mode[1:], r.maxRuns())
	if r.started != "" {
		s += ", started " + r.started
	}
	if len(r.loads) > 0 {
		s += fmt.Sprintf(", load average %.2f", slices.Min(r.loads))
		if len(r.loads) > 1 {
			s += fmt.Sprintf("–%.2f at the passes' starts", slices.Max(r.loads))
		} else {
			s += " at the start"
		}
	}
	return s + "."
}

// modes lists the modes present, for the footer.
func (s sets) modes() string {
	var m []string
	for _, k := range []string{"idle", "busy"} {
		if r := s[k]; r != nil {
			m = append(m, fmt.Sprintf("%s %d run(s)", k, r.maxRuns()))
		}
	}
	return strings.Join(m, ", ")
}

package main

import (
	"encoding/json"
	"fmt"
	"os"
)

// Report is what -json writes for scripts/benchplot: the growth figures and
// latency percentiles of the primary run (busy if measured), medians over its
// runs. A point whose benchmark is missing is left out.
type Report struct {
	Mode       string                        `json:"mode"`
	Latency    map[string]map[string]float64 `json:"latency_ns"`   // path → "p50", "p90", "p99", "p999"
	Throughput map[string][]Point            `json:"throughput"`   // transport → (callers, calls/s)
	Positions  map[string][]Point            `json:"positions_ns"` // path → (positions, ns per call)
}

// Point is one (x, y) figure.
type Point struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

func report(all sets) Report {
	r, mode := all.primary()
	rep := Report{Mode: mode, Latency: map[string]map[string]float64{}, Throughput: map[string][]Point{}, Positions: map[string][]Point{}}
	for _, path := range latencyPaths {
		q := map[string]float64{}
		for _, p := range []string{"p50", "p90", "p99", "p999"} {
			if f := r.fig("Latency/"+path, "ns-"+p); f.ok {
				q[p] = f.v
			}
		}
		if len(q) > 0 {
			rep.Latency[path] = q
		}
	}
	for _, tr := range transports {
		for _, n := range callers {
			if f := r.fig(fmt.Sprintf("Throughput/%s/callers=%d", tr, n), "ops/s"); f.ok {
				rep.Throughput[tr] = append(rep.Throughput[tr], Point{float64(n), f.v})
			}
		}
	}
	for _, path := range append([]string{"inprocess"}, transports...) {
		for _, n := range positions {
			if f := r.fig(fmt.Sprintf("Positions/n=%d/%s", n, path), "ns/op"); f.ok {
				rep.Positions[path] = append(rep.Positions[path], Point{float64(n), f.v})
			}
		}
	}
	return rep
}

func writeJSON(path string, all sets) error {
	b, err := json.MarshalIndent(report(all), "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Command benchplot turns the figures scripts/benchtable writes with -json into
// an HTML report with three SVG plots: the latency distribution of one caller
// per transport and floor, throughput against the number of callers (1 → 256),
// and the time of Positions against the number of positions (10 → 100 000).
//
//	go run ./scripts/benchtable -json bin/bench.json bin/bench-*.txt > bin/bench.md
//	cd scripts/benchplot && go run . -in ../../bin/bench.json -table ../../bin/bench.md -out ../../bin/bench.html
//
// `make bench` runs both. It is a module of its own so that the plotting
// library (gonum.org/v1/plot) is no dependency of brokerkit.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"image/color"
	"io"
	"os"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Report is what benchtable -json writes (scripts/benchtable/json.go).
type Report struct {
	Mode       string                        `json:"mode"`
	Latency    map[string]map[string]float64 `json:"latency_ns"`
	Throughput map[string][]Point            `json:"throughput"`
	Positions  map[string][]Point            `json:"positions_ns"`
}

// Point is one (x, y) figure.
type Point struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

func main() {
	in := flag.String("in", "bin/bench.json", "benchtable's -json output")
	table := flag.String("table", "", "benchtable's Markdown output, shown under the plots (optional)")
	out := flag.String("out", "bin/bench.html", "the HTML report to write")
	flag.Parse()
	if err := run(*in, *table, *out); err != nil {
		fmt.Fprintln(os.Stderr, "benchplot:", err)
		os.Exit(1)
	}
}

func run(in, table, out string) error {
	b, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	var md []byte
	if table != "" {
		if md, err = os.ReadFile(table); err != nil {
			return err
		}
	}
	var buf bytes.Buffer
	if err := writeHTML(&buf, rep, string(md)); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

// writeHTML writes the report page: the three plots inline, then the table.
func writeHTML(w io.Writer, rep Report, table string) error {
	plots := []struct {
		title string
		make  func(Report) (*plot.Plot, error)
	}{
		{"Latency of one caller's round trips", latencyPlot},
		{"Throughput against concurrent callers", throughputPlot},
		{"Positions: time per call against payload size", positionsPlot},
	}
	fmt.Fprintf(w, "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>brokerkit make bench</title></head><body>\n")
	fmt.Fprintf(w, "<h1>brokerkit <code>make bench</code> (%s run)</h1>\n", html.EscapeString(rep.Mode))
	for _, p := range plots {
		pl, err := p.make(rep)
		if err != nil {
			return fmt.Errorf("%s: %w", p.title, err)
		}
		fmt.Fprintf(w, "<h2>%s</h2>\n", html.EscapeString(p.title))
		if err := writeSVG(w, pl); err != nil {
			return fmt.Errorf("%s: %w", p.title, err)
		}
	}
	if table != "" {
		fmt.Fprintf(w, "<h2>Tables</h2>\n<pre>%s</pre>\n", html.EscapeString(table))
	}
	_, err := fmt.Fprintf(w, "</body></html>\n")
	return err
}

func writeSVG(w io.Writer, p *plot.Plot) error {
	c := vgsvg.New(7*vg.Inch, 4*vg.Inch)
	p.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return err
	}
	// Drop the XML declaration: the SVG is inline in HTML.
	svg := buf.Bytes()
	if i := bytes.Index(svg, []byte("<svg")); i > 0 {
		svg = svg[i:]
	}
	_, err := w.Write(svg)
	return err
}

// quantiles are the latency percentiles benchtable reports, in order.
var quantiles = []struct {
	key   string
	label string
}{{"p50", "p50"}, {"p90", "p90"}, {"p99", "p99"}, {"p999", "p99.9"}}

// latencyPlot draws each path's percentiles, in µs on a log scale.
func latencyPlot(rep Report) (*plot.Plot, error) {
	p := newPlot("percentile", "round trip (µs, log)")
	p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	labels := make([]string, len(quantiles))
	for i, q := range quantiles {
		labels[i] = q.label
	}
	p.NominalX(labels...)
	var series []named
	for _, path := range sortedKeys(rep.Latency) {
		var xy plotter.XYs
		for i, q := range quantiles {
			if v, ok := rep.Latency[path][q.key]; ok && v > 0 {
				xy = append(xy, plotter.XY{X: float64(i), Y: v / 1e3})
			}
		}
		series = append(series, named{path, xy})
	}
	return p, addLines(p, series)
}

// throughputPlot draws calls per second against callers, both on log scales.
func throughputPlot(rep Report) (*plot.Plot, error) {
	p := newPlot("concurrent callers (log)", "calls/s (log)")
	p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = false, false
	return p, addLines(p, pointSeries(rep.Throughput, 1))
}

// positionsPlot draws ms per Positions call against positions, both on log scales.
func positionsPlot(rep Report) (*plot.Plot, error) {
	p := newPlot("positions (log)", "time per call (ms, log)")
	p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	return p, addLines(p, pointSeries(rep.Positions, 1e-6))
}

func newPlot(x, y string) *plot.Plot {
	p := plot.New()
	p.X.Label.Text, p.Y.Label.Text = x, y
	p.Legend.Top, p.Legend.Left = true, true
	p.Add(plotter.NewGrid())
	return p
}

// named is one line of a plot.
type named struct {
	name string
	xy   plotter.XYs
}

// pointSeries turns benchtable's points into lines, y scaled by yScale; points
// that a log scale cannot show (≤ 0) are left out.
func pointSeries(m map[string][]Point, yScale float64) []named {
	var out []named
	for _, name := range sortedKeys(m) {
		var xy plotter.XYs
		for _, pt := range m[name] {
			if pt.X > 0 && pt.Y > 0 {
				xy = append(xy, plotter.XY{X: pt.X, Y: pt.Y * yScale})
			}
		}
		out = append(out, named{name, xy})
	}
	return out
}

// palette tells the lines apart.
var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xd6, 0x27, 0x28, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0xff, 0x7f, 0x0e, 0xff},
	{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0x7f, 0x7f, 0x7f, 0xff},
}

func addLines(p *plot.Plot, series []named) error {
	drawn := 0
	for i, s := range series {
		if len(s.xy) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(s.xy)
		if err != nil {
			return err
		}
		c := palette[i%len(palette)]
		l.Color, pts.Color = c, c
		pts.Shape = draw.CircleGlyph{}
		p.Add(l, pts)
		p.Legend.Add(s.name, l, pts)
		drawn++
	}
	if drawn == 0 {
		return fmt.Errorf("no figures to plot")
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

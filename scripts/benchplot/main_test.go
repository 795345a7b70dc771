package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestReportHasThreePlotsAndTheTable(t *testing.T) {
	rep := Report{
		Mode:       "busy",
		Latency:    map[string]map[string]float64{"cat": {"p50": 5000, "p90": 9000, "p99": 20000, "p999": 60000}, "stdiojson": {"p50": 15000}},
		Throughput: map[string][]Point{"stdiojson": {{1, 10000}, {64, 90000}, {256, 80000}}, "goplugin": {{1, 5000}}},
		Positions:  map[string][]Point{"inprocess": {{10, 1e5}, {100000, 4e8}}, "stdiojson": {{10, 2e5}, {100000, 5e8}}},
	}
	var out bytes.Buffer
	if err := writeHTML(&out, rep, "| a | <b> |"); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if n := strings.Count(s, "<svg"); n != 3 {
		t.Errorf("%d SVG plots, want 3", n)
	}
	for _, want := range []string{"(busy run)", "cat", "stdiojson", "goplugin", "inprocess", "| a | &lt;b&gt; |"} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(s, "<?xml") {
		t.Error("inline SVG keeps its XML declaration")
	}
}

func TestReportWithoutFiguresFails(t *testing.T) {
	var out bytes.Buffer
	if err := writeHTML(&out, Report{Mode: "idle"}, ""); err == nil {
		t.Error("writeHTML of an empty report succeeded")
	}
}

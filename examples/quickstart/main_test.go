package main

import (
	"bytes"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
	"github.com/brokerkit/brokerkit/transport/stdiojson"
)

// TestMain lets the test binary be its own worker, as the program is.
func TestMain(m *testing.M) {
	stdiojson.MaybeRunWorker(func() broker.Broker { return ibkr.New() })
	os.Exit(m.Run())
}

// TestQuickstartRuns runs the example against the embedded fake gateway.
func TestQuickstartRuns(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), &out, "", 7); err != nil {
		t.Fatal(err)
	}
	s := fakes.DefaultScript()
	for _, want := range append([]string{"server version " + strconv.Itoa(fakes.DefaultServerVersion),
		"APPLE INC: bid 189.49 ask 189.51 last 189.5 (live data)", "24 hourly bars over the last day"}, s.Accounts...) {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if n := strings.Count(out.String(), "\nAAPL bid "); n != 3 {
		t.Errorf("%d live AAPL quotes, want 3:\n%s", n, out.String())
	}
	for _, p := range s.Positions {
		if !strings.Contains(out.String(), p.Quantity.String()+" @ "+p.AvgCost.String()) {
			t.Errorf("output lacks position %s %s @ %s:\n%s", p.Contract.Symbol, p.Quantity, p.AvgCost, out.String())
		}
	}
}

// TestREADMEShowsThisProgram: every Go block of the README's "Using it from Go"
// section is a verbatim excerpt of main.go, so the README never shows code that
// does not compile.
func TestREADMEShowsThisProgram(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(readme), "## Using it from Go")
	if i < 0 {
		t.Fatal(`README has no "## Using it from Go" section`)
	}
	section, _, _ := strings.Cut(string(readme[i:]), "\n## ")
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(section, -1)
	if len(blocks) == 0 {
		t.Fatal(`no Go block under "## Using it from Go"`)
	}
	for _, b := range blocks {
		if !strings.Contains(string(src), b[1]) {
			t.Errorf("README block is not an excerpt of examples/quickstart/main.go:\n%s", b[1])
		}
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(t.Context(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestDemoPrintsTheScript(t *testing.T) {
	code, out, errs := run(t, "demo")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errs)
	}
	s := fakes.DefaultScript()
	for _, want := range append([]string{"Accounts: " + strings.Join(s.Accounts, ", "), "Positions (" + strconv.Itoa(len(s.Positions)) + ")", "NetLiquidation", "Quote", "189.49  189.51  189.5"}, s.Accounts...) {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	for _, p := range s.Positions {
		if !strings.Contains(out, p.Quantity.String()) || !strings.Contains(out, p.Contract.Symbol) {
			t.Errorf("demo output lacks position %s %s", p.Contract.Symbol, p.Quantity)
		}
	}
}

func positionsOf(s fakes.Script) []jsonPosition {
	var out []jsonPosition
	for _, p := range s.Positions {
		out = append(out, toJSONPosition(p))
	}
	return out
}

func TestDemoJSON(t *testing.T) {
	code, out, errs := run(t, "demo", "--json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errs)
	}
	var got jsonReport
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	s := fakes.DefaultScript()
	if got.Accounts == nil || got.Positions == nil || got.Summaries == nil || got.Gateway == nil {
		t.Fatalf("demo --json lacks a part: %s", out)
	}
	if diff := cmp.Diff(s.Accounts, *got.Accounts); diff != "" {
		t.Errorf("accounts (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(positionsOf(s), *got.Positions); diff != "" {
		t.Errorf("positions (-want +got):\n%s", diff)
	}
	if len(*got.Summaries) != len(s.Summary) {
		t.Errorf("summary has %d accounts, want %d", len(*got.Summaries), len(s.Summary))
	}
	if g := *got.Gateway; !g.Embedded || g.Port == 0 || g.Host == "" || g.ServerVersion != fakes.DefaultServerVersion || g.Transport != "inprocess" {
		t.Errorf("gateway = %+v", g)
	}
}

// TestDemoNegotiatedVersion: demo names the server version the session
// negotiated, here the one a script caps its gateway at.
func TestDemoNegotiatedVersion(t *testing.T) {
	for _, v := range []int{fakes.TextServerVersion, fakes.VersionProtobufAccounts} {
		s := fakes.DefaultScript()
		s.ServerVersion = v
		doc, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "script.json")
		if err := os.WriteFile(path, doc, 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errs := run(t, "demo", "--script", path)
		if want := fmt.Sprintf("(server version %d)", v); code != 0 || !strings.Contains(out, want) {
			t.Errorf("demo at %d: exit %d, stdout lacks %q: %s%s", v, code, want, out, errs)
		}
	}
}

// TestPositionsAgainstGateway is the acceptance check: `brokerkit positions --port P`
// against a gateway serving script S prints exactly the positions of S.
func TestPositionsAgainstGateway(t *testing.T) {
	s := fakes.DefaultScript()
	s.Positions = append(s.Positions, broker.Position{Account: s.Accounts[0],
		Contract: broker.Contract{ConID: 42, Symbol: "ÄÖÜ", SecType: "STK", Currency: "EUR", Exchange: "IBIS"},
		Quantity: broker.MustDecimal("12345678.1234567"), AvgCost: broker.MustDecimal("0.0001")})
	gw, err := fakes.NewGateway(s)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	code, out, errs := run(t, "positions", "--port", strconv.Itoa(gw.Port()), "--client-id", "9", "--json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errs)
	}
	var got jsonReport
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.Positions == nil {
		t.Fatalf("%v in %s", err, out)
	}
	if diff := cmp.Diff(positionsOf(s), *got.Positions); diff != "" {
		t.Errorf("positions (-want +got):\n%s", diff)
	}
	for i, q := range []string{"accounts", "summary", "ping"} {
		// A distinct client id each: the gateway may not yet have seen the previous
		// command's socket close (real TWS refuses a reused id the same way).
		id := strconv.Itoa(20 + i)
		if code, out, errs := run(t, q, "--port", strconv.Itoa(gw.Port()), "--client-id", id); code != 0 || out == "" {
			t.Errorf("%s: exit %d, out %q, stderr %s", q, code, out, errs)
		}
	}
}

func TestUnreachableGatewayIsOneLine(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	code, out, errs := run(t, "accounts", "--port", strconv.Itoa(port), "--timeout", "2s")
	if code != 1 || out != "" {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	if strings.Count(strings.TrimSpace(errs), "\n") != 0 || !strings.Contains(errs, "is TWS or IB Gateway running") {
		t.Errorf("stderr is not one line with a hint: %q", errs)
	}
	if addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port)); strings.Count(errs, addr) != 1 {
		t.Errorf("stderr names %s %d times, want once: %q", addr, strings.Count(errs, addr), errs)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"bogus"}, {"demo", "--nope"}, {"demo", "extra"}, {"demo", "--transport", "carrier-pigeon"},
		{"gateway", "--script", "/does/not/exist.json"}, {"positions", "--client-id", "-5"}, {"ping", "--port", "70000"},
		{"accounts", "--timeout", "0s"}, {"summary", "--call-timeout", "-1s"}, {"run", "--client-id", "-5"},
		{"run", "--max-failures", "-1"}, {"run", "--interval", "0s"}, {"version", "extra"}} {
		code, out, errs := run(t, args...)
		if code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
		if out != "" || len(args) > 0 && args[0] != "bogus" && strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("%q: stdout %q, stderr %q: want nothing on stdout, one line on stderr", args, out, errs)
		}
	}
	if code, _, _ := run(t, "demo", "-h"); code != 0 {
		t.Errorf("-h: exit %d", code)
	}
}

func TestGatewayCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := net.Pipe()
	done := make(chan int)
	go func() {
		var errb bytes.Buffer
		done <- Main(ctx, []string{"gateway", "--listen", "127.0.0.1:0", "--script", "../../fakes/testdata/demo.json"}, pw, &errb)
	}()
	buf := make([]byte, 128)
	n, err := pr.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(buf[:n]))
	addr, ok := strings.CutPrefix(line, "listening on ")
	if !ok {
		t.Fatalf("first line %q", line)
	}
	_, port, _ := net.SplitHostPort(addr)
	if code, out, errs := run(t, "accounts", "--port", port); code != 0 || !strings.Contains(out, fakes.DefaultScript().Accounts[0]) {
		t.Errorf("accounts against the gateway command: %d %q %s", code, out, errs)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("gateway exit %d", code)
	}
}

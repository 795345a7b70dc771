package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/fakes"
)

// runProcess runs the command line as a real process (the test binary acting as
// main, stdout guard included) and returns its exit status and outputs. The
// process must end by itself within limit.
func runProcess(t *testing.T, limit time.Duration, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"--"}, args...)...)
	cmd.Env = append(os.Environ(), envBeMain+"=1", "GORACE=atexit_sleep_ms=0")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%q did not end by itself within %v; stderr:\n%s", args, limit, errb.String())
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// gatewayWith serves DefaultScript with faults on 127.0.0.1:0.
func gatewayWith(t *testing.T, f fakes.Faults) *fakes.Gateway {
	t.Helper()
	s := fakes.DefaultScript()
	s.Faults = f
	gw, err := fakes.NewGateway(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	return gw
}

// silentAfterHandshake answers the handshake and the one request the adapter
// makes while connecting, then never sends anything again.
var silentAfterHandshake = fakes.Faults{HalfOpenAfterRequests: 1}

// TestCallTimeout: a gateway that completes the handshake and then goes silent
// must not keep a query running; --call-timeout ends it with exit 1 and one line.
func TestCallTimeout(t *testing.T) {
	gw := gatewayWith(t, silentAfterHandshake)
	for i, q := range []string{"positions", "summary", "ping"} {
		start := time.Now()
		code, out, errs := run(t, q, "--port", strconv.Itoa(gw.Port()), "--client-id", strconv.Itoa(30+i), "--call-timeout", "300ms")
		if code != 1 || out != "" {
			t.Errorf("%s: exit %d, stdout %q, want 1 and nothing", q, code, out)
		}
		if strings.Count(strings.TrimSpace(errs), "\n") != 0 || !strings.Contains(errs, "within 300ms (--call-timeout)") {
			t.Errorf("%s: stderr is not one line naming --call-timeout: %q", q, errs)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s took %v with a 300ms call timeout", q, d)
		}
	}
}

// TestEveryQueryEndsByItself runs the built command against a silent gateway
// with the default timeouts cut short, as a process, over each transport.
func TestEveryQueryEndsByItself(t *testing.T) {
	gw := gatewayWith(t, silentAfterHandshake)
	for i, transport := range transports {
		code, out, errs := runProcess(t, 30*time.Second, "positions", "--json", "--transport", transport,
			"--port", strconv.Itoa(gw.Port()), "--client-id", strconv.Itoa(40+i), "--call-timeout", "500ms")
		if code != 1 || out != "" || !strings.Contains(errs, "--call-timeout") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", transport, code, out, errs)
		}
	}
}

// TestGatewayTextNeverReachesStdout: scmhub prints an undecodable integer token
// to stdout; a hostile gateway sends one that is itself a JSON document. The
// token must reach stderr only, for a query and for run's JSON lines.
func TestGatewayTextNeverReachesStdout(t *testing.T) {
	const token = `{"positions":[{"account":"INJECTED"}]}`
	// CURRENT_TIME with the token where the time belongs (a message id must be
	// an integer: from server version 201 it is a raw 4-byte one).
	faults := fakes.Faults{MalformedAfterRequests: 2, MalformedFields: []string{"49", "1", token}}
	gw := gatewayWith(t, faults)
	code, out, errs := runProcess(t, 30*time.Second, "positions", "--json", "--port", strconv.Itoa(gw.Port()), "--client-id", "50")
	if strings.Contains(out, "INJECTED") || code != 1 || out != "" {
		t.Errorf("positions --json: exit %d, stdout %q", code, out)
	}
	if !strings.Contains(errs, token) {
		t.Errorf("the gateway's token did not reach stderr (was it sent?): %q", errs)
	}

	s := fakes.DefaultScript()
	s.Faults = faults
	doc, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "hostile.json")
	if err := os.WriteFile(script, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runProcess(t, 30*time.Second, "run", "--transport", "inprocess", "--script", script,
		"--interval", "100ms", "--duration", "1500ms")
	if code != 1 {
		t.Errorf("run: exit %d, want 1 (every positions call is answered by the hostile token)", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, line := range lines {
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		var tk tick
		if err := dec.Decode(&tk); err != nil || tk.TS.IsZero() {
			t.Errorf("run printed a line that is not a tick: %q (%v)", line, err)
		}
	}
	if !strings.Contains(errs, token) {
		t.Errorf("run: the gateway's token did not reach stderr: %q", errs)
	}
}

// TestExitCodesOfTheProcess checks exit status and streams of the real process.
func TestExitCodesOfTheProcess(t *testing.T) {
	gw := gatewayWith(t, fakes.Faults{})
	port := strconv.Itoa(gw.Port())
	for _, c := range []struct {
		args       []string
		code       int
		stdout     bool // something on stdout
		stderrLine bool // exactly one line on stderr
	}{
		{[]string{"--help"}, 0, true, false},
		{[]string{"positions", "-h"}, 0, true, false},
		{[]string{}, 2, false, false},
		{[]string{"positions", "--client-id", "-5"}, 2, false, true},
		{[]string{"positions", "--bogus"}, 2, false, true},
		{[]string{"ping", "--port", "1", "--timeout", "2s"}, 1, false, true},
		{[]string{"ping", "--port", port, "--client-id", "60", "--json"}, 0, true, false},
		{[]string{"version"}, 0, true, false},
	} {
		code, out, errs := runProcess(t, 30*time.Second, c.args...)
		if code != c.code || (out != "") != c.stdout || c.stderrLine && strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d", c.args, code, out, errs, c.code)
		}
	}
}

func TestHelpGoesToStdout(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"run", "-h"}, {"positions", "--help"}} {
		code, out, errs := run(t, args...)
		if code != 0 || errs != "" || !strings.Contains(out, "usage: brokerkit") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
	if _, out, _ := run(t, "run", "-h"); !strings.Contains(out, "-max-failures") || !strings.Contains(out, "-call-timeout") {
		t.Errorf("run -h lacks its flags:\n%s", out)
	}
}

func TestVersion(t *testing.T) {
	code, out, errs := run(t, "version", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var v versionInfo
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	if v.Go == "" || v.Version == "" || !strings.HasPrefix(v.Scmhub, "v0.10.") || v.StdiojsonProtocol < 1 || v.GopluginProtocol < 1 ||
		!strings.HasPrefix(v.TWSClientVersions, "v100..v") {
		t.Errorf("version = %+v", v)
	}
	_, text, _ := run(t, "version")
	for _, want := range []string{"brokerkit", v.Go, v.Scmhub, "stdiojson protocol", "goplugin protocol", v.TWSClientVersions} {
		if !strings.Contains(text, want) {
			t.Errorf("version output lacks %q:\n%s", want, text)
		}
	}
}

func TestDNSFailureHasNoTWSHint(t *testing.T) {
	code, _, errs := run(t, "ping", "--host", "no-such-host.invalid", "--timeout", "5s")
	if code != 1 || strings.Contains(errs, "is TWS") || !strings.Contains(errs, "check --host") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
}

// TestTables: numbers right-aligned, no trailing spaces, no blank first line.
func TestTables(t *testing.T) {
	code, out, _ := run(t, "demo")
	if code != 0 {
		t.Fatal(code)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if lines[0] == "" || strings.HasSuffix(out, "\n\n") {
		t.Errorf("blank line at either end:\n%s", out)
	}
	for _, l := range lines {
		if strings.HasSuffix(l, " ") {
			t.Errorf("trailing space in %q", l)
		}
	}
	header := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "ACCOUNT    SYMBOL") })
	if header < 0 {
		t.Fatalf("no positions header:\n%s", out)
	}
	// QUANTITY and AVG COST end where their headers end.
	qEnd := strings.Index(lines[header], "QUANTITY") + len("QUANTITY")
	for _, l := range lines[header+1 : header+1+len(fakes.DefaultScript().Positions)] {
		if l[qEnd-1] == ' ' || !strings.HasSuffix(l, l[strings.LastIndex(l, " ")+1:]) || len(l) != len(lines[header]) {
			t.Errorf("row not right-aligned under the header:\n%s\n%s", lines[header], l)
		}
	}
	_, out, _ = run(t, "positions", "--port", "1", "--timeout", "1s")
	if out != "" {
		t.Errorf("a failed query printed %q", out)
	}
}

// TestJSONMatchesTheWorker: positions and summaries in the CLI's JSON carry
// exactly the fields of the stdiojson worker's answers.
func TestJSONMatchesTheWorker(t *testing.T) {
	gw := gatewayWith(t, fakes.Faults{})
	_, cliOut, errs := run(t, "demo", "--json")
	var cli map[string]any
	if err := json.Unmarshal([]byte(cliOut), &cli); err != nil {
		t.Fatalf("%v: %s %s", err, cliOut, errs)
	}

	ask := workerAsker(t)
	ask(1, `{"id":1,"command":"connect","host":"127.0.0.1","port":`+strconv.Itoa(gw.Port())+`,"client_id":70}`)
	worker := map[string]any{
		"positions": ask(2, `{"id":2,"command":"get_positions"}`)["positions"],
		"summaries": ask(3, `{"id":3,"command":"get_account_summary"}`)["summaries"],
	}
	for _, part := range []string{"positions", "summaries"} {
		want, got := fieldsOf(worker[part]), fieldsOf(cli[part])
		if len(want) == 0 || !slices.Equal(want, got) {
			t.Errorf("%s fields: worker %v, CLI %v", part, want, got)
		}
	}
}

// workerAsker starts this binary as a stdiojson worker, stopped at the end of
// the test, and returns a function that sends one request line and returns the
// data of its successful answer.
func workerAsker(t *testing.T) func(id int, req string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, os.Args[0], "worker")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	// ask sends one request and returns the data of its answer.
	ask := func(id int, req string) map[string]any {
		t.Helper()
		if _, err := io.WriteString(stdin, req+"\n"); err != nil {
			t.Fatal(err)
		}
		for sc.Scan() {
			var resp struct {
				ID     int            `json:"id"`
				Status string         `json:"status"`
				Data   map[string]any `json:"data"`
			}
			if err := json.Unmarshal(sc.Bytes(), &resp); err != nil || resp.ID != id {
				continue // events
			}
			if resp.Status != "success" {
				t.Fatalf("worker: %s", sc.Text())
			}
			return resp.Data
		}
		t.Fatalf("worker ended before answering %s: %v", req, sc.Err())
		return nil
	}
	return ask
}

// fieldsOf returns the sorted set of key paths of the first element of a JSON
// list (maps of tag values are reduced to one tag).
func fieldsOf(v any) []string {
	list, _ := v.([]any)
	if len(list) == 0 {
		return nil
	}
	var out []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		m, ok := v.(map[string]any)
		if !ok {
			out = append(out, prefix)
			return
		}
		if prefix == ".values" {
			for _, tv := range m {
				walk(prefix+".TAG", tv) // one tag stands for all
				return
			}
		}
		for k, kv := range m {
			walk(prefix+"."+k, kv)
		}
	}
	walk("", list[0])
	slices.Sort(out)
	return out
}

// TestREADMECommandLines: every bin/brokerkit line of the README's "Command
// line" and "Market data" sections names a command and flags that exist with
// valid values (each line is parsed with -h appended, which stops before doing
// anything; a pipe and what follows it are not brokerkit's).
func TestREADMECommandLines(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	optional := regexp.MustCompile(`\[[^]]*\]`)
	for _, c := range []struct {
		heading string
		min     int
	}{{"## Command line", 5}, {"### Market data", 5}} {
		i := strings.Index(string(readme), "\n"+c.heading+"\n")
		if i < 0 {
			t.Errorf("README has no %q section", c.heading)
			continue
		}
		section, _, _ := strings.Cut(string(readme[i+1:]), "\n## ")
		section, _, _ = strings.Cut(section, "\n### ")
		n := 0
		for _, line := range strings.Split(section, "\n") {
			line, _, _ = strings.Cut(line, "#")
			line, _, _ = strings.Cut(line, " | ")
			_, cmdline, ok := strings.Cut(line, "bin/brokerkit ")
			if !ok || strings.HasPrefix(line, "make") {
				continue
			}
			args := strings.Fields(optional.ReplaceAllString(cmdline, ""))
			if code, out, errs := run(t, append(args, "-h")...); code != 0 || !strings.HasPrefix(out, "usage: brokerkit "+args[0]) {
				t.Errorf("README line %q: exit %d, stderr %q", strings.TrimSpace(line), code, errs)
			}
			n++
		}
		if n < c.min {
			t.Errorf("found %d bin/brokerkit lines in the README's %q, want the examples", n, c.heading)
		}
	}
}

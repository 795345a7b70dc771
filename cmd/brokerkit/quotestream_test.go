package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// quoteLine decodes one line of `quote --stream` output, failing on anything else.
func quoteLine(t *testing.T, line string) jsonQuoteUpdate {
	t.Helper()
	var u jsonQuoteUpdate
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&u); err != nil {
		t.Fatalf("not a quote line: %q: %v", line, err)
	}
	return u
}

// TestQuoteStreamLines: `quote AAPL MSFT --stream` on a pipe prints JSON
// lines of the gateway's streaming quotes over every transport, and --count
// ends it with status 0.
func TestQuoteStreamLines(t *testing.T) {
	gw := gatewayWith(t, fakes.Faults{})
	for i, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			code, out, errs := runProcess(t, 60*time.Second, "quote", "AAPL", "MSFT", "--stream", "--count", "8",
				"--transport", transport, "--port", strconv.Itoa(gw.Port()), "--client-id", strconv.Itoa(70+i))
			if code != 0 {
				t.Fatalf("exit %d, stderr %s", code, errs)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 8 {
				t.Fatalf("%d lines, want 8:\n%s", len(lines), out)
			}
			seen := map[string]bool{}
			for _, l := range lines {
				u := quoteLine(t, l)
				seen[u.Symbol] = true
				if u.Symbol != u.Quote.Contract.Symbol || u.Gap != "" || u.Quote.MarketDataType != "live" {
					t.Errorf("line %q", l)
				}
				if u.Symbol == "AAPL" && u.Quote.Bid == "0" && u.Quote.Last == "0" {
					t.Errorf("an AAPL line without prices: %q", l)
				}
			}
			if !seen["AAPL"] || !seen["MSFT"] || len(seen) != 2 {
				t.Errorf("symbols %v, want AAPL and MSFT", seen)
			}
		})
	}
}

// TestQuoteStreamEndsOnSignal: without --count the stream runs until SIGINT
// or SIGTERM, and then exits 0.
func TestQuoteStreamEndsOnSignal(t *testing.T) {
	gw := gatewayWith(t, fakes.Faults{})
	for i, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		transport := transports[i%len(transports)+1] // stdiojson, goplugin: a child to leave behind if it went wrong
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "--", "quote", "AAPL", "--stream", "--transport", transport,
				"--port", strconv.Itoa(gw.Port()), "--client-id", strconv.Itoa(75+i))
			cmd.Env = append(os.Environ(), envBeMain+"=1", "GORACE=atexit_sleep_ms=0")
			var errb bytes.Buffer
			cmd.Stderr = &errb
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			sc := bufio.NewScanner(out)
			for range 2 {
				if !sc.Scan() {
					t.Fatalf("the stream ended early; stderr:\n%s", errb.String())
				}
				quoteLine(t, sc.Text())
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			go io.Copy(io.Discard, out)
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			select {
			case err := <-waited:
				if err != nil {
					t.Errorf("exit after %v: %v; stderr:\n%s", sig, err, errb.String())
				}
			case <-time.After(10 * time.Second): // a bound against hangs, not a speed check
				t.Fatalf("quote --stream did not exit after %v", sig)
			}
		})
	}
}

// TestQuoteStreamGapAfterDrop: when the gateway drops the connection, the
// stream goes on by itself: a gap line, then fresh quotes of the new session.
func TestQuoteStreamGapAfterDrop(t *testing.T) {
	gw := gatewayWith(t, fakes.Faults{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		code := Main(ctx, []string{"quote", "AAPL", "--stream", "--transport", "inprocess", "--port", strconv.Itoa(gw.Port()),
			"--client-id", "78"}, pw, io.Discard)
		pw.Close()
		done <- code
	}()
	defer func() {
		cancel()
		go io.Copy(io.Discard, pr)
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("exit %d after cancellation", code)
			}
		case <-time.After(10 * time.Second):
			t.Error("quote --stream did not stop after cancellation")
		}
	}()
	lines := make(chan jsonQuoteUpdate)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var u jsonQuoteUpdate
			if json.Unmarshal(sc.Bytes(), &u) != nil {
				return
			}
			select {
			case lines <- u:
			case <-ctx.Done():
				return
			}
		}
	}()
	next := func(what string) jsonQuoteUpdate {
		t.Helper()
		select {
		case u, ok := <-lines:
			if !ok {
				t.Fatalf("%s: the stream ended", what)
			}
			return u
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: no line in 20s", what)
		}
		panic("unreachable")
	}
	if u := next("the first quote"); u.Gap != "" || u.Quote.Bid == "0" {
		t.Fatalf("first line %+v", u)
	}
	if n := gw.DropConnections(); n != 1 {
		t.Fatalf("dropped %d connections, want 1", n)
	}
	for {
		if u := next("the gap"); u.Gap != "" {
			break
		}
	}
	for {
		u := next("a fresh quote")
		if u.Gap == "" {
			if u.Quote.Bid == "0" {
				t.Errorf("fresh line without a bid: %+v", u)
			}
			return
		}
	}
}

// TestQuoteTable: on a terminal the stream redraws one table of the newest
// quotes, marking a symbol whose stream was interrupted as stale.
func TestQuoteTable(t *testing.T) {
	aapl := broker.Contract{Symbol: "AAPL", SecType: "STK", Exchange: "SMART", Currency: "USD"}
	msft := broker.Contract{Symbol: "MSFT", SecType: "STK", Exchange: "SMART", Currency: "USD"}
	var buf bytes.Buffer
	w := newQuoteWriter(&buf, []broker.Contract{aapl, msft}, false)
	if w.due() != nil {
		t.Fatal("a redraw is due before any quote")
	}
	_ = w.add(0, broker.QuoteUpdate{Quote: broker.Quote{Contract: aapl, Bid: broker.MustDecimal("189.49"), Ask: broker.MustDecimal("189.51")}})
	_ = w.add(0, broker.QuoteUpdate{Quote: broker.Quote{Contract: aapl, Bid: broker.MustDecimal("189.5"), Ask: broker.MustDecimal("189.51")}})
	_ = w.add(1, broker.QuoteUpdate{Quote: broker.Quote{Contract: msft}, Gap: "robust: session lost: worker exited"})
	if buf.Len() != 0 {
		t.Fatalf("drew before the redraw was due: %q", buf.String())
	}
	select {
	case <-w.due():
	case <-time.After(10 * time.Second):
		t.Fatal("no redraw due")
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.HasPrefix(out, "\x1b[H\x1b[2J") || strings.Count(out, "\x1b[2J") != 1 || !strings.Contains(out, "189.5 ") ||
		strings.Contains(out, "189.49") || !strings.Contains(out, "MSFT: stale, reconnecting (robust: session lost: worker exited)") {
		t.Errorf("table:\n%s", out)
	}
	buf.Reset()
	if err := w.flush(); err != nil || buf.Len() != 0 || w.due() != nil {
		t.Errorf("redrew without a change: %q, %v", buf.String(), err)
	}

	var lines bytes.Buffer
	w = newQuoteWriter(&lines, []broker.Contract{aapl}, true)
	_ = w.add(0, broker.QuoteUpdate{Quote: broker.Quote{Contract: aapl, Bid: broker.MustDecimal("1.5")}, Dropped: 3})
	if u := quoteLine(t, lines.String()); u.Symbol != "AAPL" || u.Quote.Bid != "1.5" || u.Dropped != 3 || w.due() != nil {
		t.Errorf("JSON line %+v", u)
	}
	if isTerminal(&lines) {
		t.Error("a buffer is a terminal")
	}
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if isTerminal(null) {
		t.Error("the null device is a terminal")
	}
}

// TestQuoteStreamUsage: --count belongs to --stream, and --stream to quote.
func TestQuoteStreamUsage(t *testing.T) {
	for _, args := range [][]string{{"quote", "AAPL", "--count", "3"}, {"quote", "AAPL", "--stream", "--count", "-1"},
		{"bars", "AAPL", "--stream"}, {"quote", "AAPL", "--stream", "--transport", "carrier-pigeon"}} {
		if code, _, errs := run(t, args...); code != 2 {
			t.Errorf("%q: exit %d, stderr %q; want 2", args, code, errs)
		}
	}
}

// TestRunReportsQuotes: `run --symbols AAPL,MSFT` reports each symbol's live
// bid, ask and last next to its positions, over every transport.
func TestRunReportsQuotes(t *testing.T) {
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			code, out, errs := runProcess(t, 60*time.Second, "run", "--symbols", "AAPL,MSFT", "--transport", transport,
				"--interval", "200ms", "--duration", "3s")
			if code != 0 {
				t.Fatalf("exit %d, stderr %s", code, errs)
			}
			var last tick // the last complete tick (--duration may stop one midway)
			for _, tk := range ticksOf(t, out) {
				if tk.OK {
					last = tk
				}
			}
			if !last.OK || len(last.Positions) == 0 {
				t.Fatalf("last complete tick %+v\n%s", last, out)
			}
			for _, p := range last.Positions {
				if p.Contract.Symbol != "AAPL" && p.Contract.Symbol != "MSFT" {
					t.Errorf("position of %s reported", p.Contract.Symbol)
				}
			}
			if len(last.Quotes) != 2 {
				t.Fatalf("quotes %+v, want AAPL and MSFT", last.Quotes)
			}
			for sym, q := range last.Quotes {
				if q.Bid == "" || q.Bid == "0" || q.Ask == "" || q.Last == "" || q.Error != "" || q.Gap != "" || q.Time == nil {
					t.Errorf("%s: %+v", sym, q)
				}
			}
		})
	}
}

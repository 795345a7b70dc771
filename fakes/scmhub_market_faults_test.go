//go:build !race

// Issue 13 part 2 and the fake's half of part 3: market data faults and IB's
// pacing, seen through scmhub/ibapi.

package fakes_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/fakes"
)

func TestScmhubMarketFaults(t *testing.T) {
	for _, v := range []int{178, 225} {
		t.Run(fmt.Sprint("v", v), func(t *testing.T) {
			for _, code := range []int64{fakes.CodeNotSubscribed, fakes.CodeDelayedAvailable, fakes.CodeMaxTickers,
				fakes.CodeNoSecurityDefinition, fakes.CodeValidationError} {
				s := fakes.DefaultScript()
				s.ServerVersion = v
				s.Faults.Market = fakes.MarketFaults{MarketDataError: code, HistoricalError: fakes.CodeHistoricalPacing,
					ContractError: code}
				g := startGateway(t, s)
				r := newMDRecorder()
				c := connectMD(t, g, r)
				c.ReqMktData(1, stkContract("AAPL"), "", false, false, nil)
				r.waitErr(t, 1, code)
				c.ReqContractDetails(2, stkContract("AAPL"))
				r.waitErr(t, 2, code)
				c.ReqHistoricalData(3, stkContract("AAPL"), "", "1 D", "1 hour", "TRADES", true, 1, false, nil)
				r.waitErr(t, 3, fakes.CodeHistoricalPacing)
				c.ReqCurrentTime()
				r.waitEnd(t, "time")
				if l := r.take(); len(l) != 3 {
					t.Fatalf("fault %d: callbacks %q, want only the three errors", code, l)
				}
				_ = c.Disconnect()
			}

			// 10167 on a live instrument: the warning, then delayed ticks.
			s := fakes.DefaultScript()
			s.ServerVersion = v
			s.Faults.Market = fakes.MarketFaults{MarketDataError: fakes.CodeDisplayingDelayed}
			g := startGateway(t, s)
			r := newMDRecorder()
			c := connectMD(t, g, r)
			c.ReqMktData(4, stkContract("MSFT"), "", true, false, nil)
			r.waitErr(t, 4, fakes.CodeDisplayingDelayed)
			r.waitEnd(t, "snapshot 4")
			if l := r.take(); len(l) < 3 || l[1] != "type 4 3" || !strings.HasPrefix(l[2], "price 4 66 ") {
				t.Fatalf("10167: %q, want the warning, type 3 and delayed ticks", l)
			}
		})
	}
}

func TestScmhubMaxTickers(t *testing.T) {
	s := fakes.DefaultScript()
	s.Faults.Market.MaxTickers = 2
	g := startGateway(t, s)
	r := newMDRecorder()
	c := connectMD(t, g, r)
	for id := int64(1); id <= 2; id++ {
		c.ReqMktData(id, stkContract("IBM"), "", false, false, nil) // delayed-only: 10089, not a line
		r.waitErr(t, id, fakes.CodeDelayedAvailable)
	}
	c.ReqMktData(3, stkContract("AAPL"), "", false, false, nil)
	c.ReqMktData(4, stkContract("MSFT"), "", false, false, nil)
	c.ReqMktData(5, stkContract("SPY"), "", false, false, nil)
	r.waitErr(t, 5, fakes.CodeMaxTickers)
	c.ReqMktData(6, stkContract("SPY"), "", true, false, nil) // snapshots take no line
	r.waitEnd(t, "snapshot 6")
	c.CancelMktData(3)
	c.ReqMktData(7, stkContract("SPY"), "", false, false, nil)
	c.ReqMktData(4, stkContract("SPY"), "", false, false, nil)
	r.waitErr(t, 4, fakes.CodeDuplicateTicker)
}

// lines counts the log lines of reqID starting with prefix.
func (r *mdRecorder) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.log {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// waitCount waits until count(prefix) reaches n.
func (r *mdRecorder) waitCount(t *testing.T, prefix string, n int) {
	t.Helper()
	deadline := time.Now().Add(hangLimit)
	for r.count(prefix) < n {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d %q lines (have %d)", n, prefix, r.count(prefix))
		}
		time.Sleep(5 * time.Millisecond) // polling the recorder, bounded by the deadline
	}
}

func TestScmhubSlowFirstTickAndSilentStream(t *testing.T) {
	s := fakes.DefaultScript()
	for i := range s.Instruments {
		if s.Instruments[i].Contract.Symbol == "SPY" {
			s.Instruments[i].TicksPerSecond = 2000
		}
	}
	const delay, steps = 200 * time.Millisecond, 5
	s.Faults.Market = fakes.MarketFaults{FirstTickDelay: delay, StreamStopsAfterTicks: steps}
	g := startGateway(t, s)
	r := newMDRecorder()
	c := connectMD(t, g, r)
	start := time.Now()
	c.ReqMktData(1, stkContract("SPY"), "", false, false, nil)
	r.waitCount(t, "price 1 1 ", 1)
	if d := time.Since(start); d < delay {
		t.Fatalf("first tick after %v, want at least %v", d, delay)
	}
	initial := len(wantSnapshot(1, instrument(s, "SPY"), false, 1)) - 1 // without MARKET_DATA_TYPE
	// Wait until the log stands still across two CURRENT_TIME round trips
	// 100 ms apart (at 2000 steps/s a live stream sends ~200 steps meanwhile).
	deadline := time.Now().Add(hangLimit)
	for prev := -1; ; {
		c.ReqCurrentTime()
		r.waitEnd(t, "time")
		n := r.count("")
		if n == prev {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stream did not go silent")
		}
		prev = n
		time.Sleep(100 * time.Millisecond) // the observation window, bounded by the deadline
	}
	// A step sends at most 4 callbacks (last price and size, volume, time).
	if n := r.count("") - 1; n > 1+initial+4*steps || n <= 1+initial {
		t.Fatalf("%d callbacks: want the type, %d first ticks and 1..%d steps' worth", n, initial, steps)
	}
	if !c.IsConnected() {
		t.Fatal("a silent stream must not end the session")
	}
}

func TestScmhubPacing(t *testing.T) {
	s := fakes.DefaultScript()
	s.Pacing = &fakes.Pacing{MessagesPerSecond: 10, HistoricalRequests: 3, HistoricalWindow: time.Minute,
		IdenticalWithin: time.Minute}
	g := startGateway(t, s)
	r := newMDRecorder()
	c := connectMD(t, g, r)

	hist := func(id int64, bar string) {
		c.ReqHistoricalData(id, stkContract("AAPL"), "20261201 21:00:00 UTC", "1 D", bar, "TRADES", true, 1, false, nil)
	}
	hist(1, "1 hour")
	r.waitEnd(t, "bars 1")
	hist(2, "1 hour") // identical within IdenticalWithin
	r.waitErr(t, 2, fakes.CodeHistoricalPacing)
	hist(3, "30 mins")
	r.waitEnd(t, "bars 3")
	hist(4, "15 mins")
	r.waitEnd(t, "bars 4")
	hist(5, "5 mins") // the 4th admitted within the window
	r.waitErr(t, 5, fakes.CodeHistoricalPacing)

	// 11 messages within a second on a new connection (the window is per
	// connection; another client id, as the first may not be released yet):
	// error 100 and the connection closes.
	_ = c.Disconnect()
	r = newMDRecorder()
	c = connectMDAs(t, g, r, 2)
	for range 11 {
		c.ReqCurrentTime()
	}
	e := recv(t, r.errs, "error 100")
	if e.Code != fakes.CodeMaxRate {
		t.Fatalf("error %+v, want 100", e)
	}
	deadline := time.Now().Add(hangLimit)
	for c.IsConnected() {
		if time.Now().After(deadline) {
			t.Fatal("still connected after error 100")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPacingOffByDefault(t *testing.T) {
	g := startGateway(t, fakes.DefaultScript())
	r := newMDRecorder()
	c := connectMD(t, g, r)
	for range 60 { // more than IB's 50 per second, fewer than the recorder buffers
		c.ReqCurrentTime()
	}
	for range 60 {
		r.waitEnd(t, "time")
	}
	if !c.IsConnected() {
		t.Fatal("disconnected without Script.Pacing")
	}
}

// TestScmhubStreamRate: a quote scripted at 5000 steps/s reaches scmhub at
// thousands of callbacks per second, never faster than the script allows.
func TestScmhubStreamRate(t *testing.T) {
	s := fakes.DefaultScript()
	const rate = 5000
	for i := range s.Instruments {
		if s.Instruments[i].Contract.Symbol == "SPY" {
			s.Instruments[i].TicksPerSecond = rate
		}
	}
	g := startGateway(t, s)
	r := newMDRecorder()
	c := connectMD(t, g, r)
	start := time.Now()
	c.ReqMktData(1, stkContract("SPY"), "", false, false, nil)
	r.waitCount(t, "", 2000)
	c.CancelMktData(1)
	c.ReqCurrentTime()
	r.waitEnd(t, "time")
	el := time.Since(start)
	n := r.count("")
	t.Logf("%d callbacks in %v: %.0f/s", n, el, float64(n)/el.Seconds())
	// A step yields at most 4 callbacks; one period may run up to pumpStep late.
	if limit := 30 + int(4*rate*(el.Seconds()+0.01)); n > limit {
		t.Fatalf("%d callbacks in %v, above the scripted rate's %d", n, el, limit)
	}
}

package fakes_test

import (
	"strconv"
	"sync"
	"testing"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// TestNotify1101ForgetsStreams: 1101 makes the gateway forget the streams of
// every connection (nothing of them follows the notice on the wire, and
// MarketDataLines drops to 0), 1102 keeps them; the client subscribes again
// and its stream flows.
func TestNotify1101ForgetsStreams(t *testing.T) {
	s := fakes.DefaultScript()
	s.ServerVersion = 193
	for i := range s.Instruments {
		if s.Instruments[i].Contract.Symbol == "SPY" {
			s.Instruments[i].TicksPerSecond = 2000
		}
	}
	g := startGateway(t, s)
	c := connectRaw(t, g, 5)
	c.send(mktDataText(7, "SPY", false)...)
	c.send(mktDataText(8, "AAPL", false)...)
	if err := g.WaitMarketDataLines(ctxLimit(t), 2); err != nil {
		t.Fatal(err)
	}
	c.send("49", "1") // its answer follows the first ticks of both
	for f := c.read(); f[0] != "49"; f = c.read() {
	}
	if g.Notify(broker.IBCodeRestoredDataMaintained, "") != 1 || g.MarketDataLines() != 2 {
		t.Fatalf("1102 changed the lines: %d", g.MarketDataLines())
	}
	if g.Notify(broker.IBCodeRestoredDataLost, "") != 1 {
		t.Fatal("1101 reached no connection")
	}
	if err := g.WaitMarketDataLines(ctxLimit(t), 0); err != nil {
		t.Fatal(err)
	}
	for f := c.read(); !(f[0] == "4" && f[3] == "1101"); f = c.read() {
		if f[0] != "1" && f[0] != "2" && f[0] != "46" && f[0] != "45" && f[0] != "4" && f[0] != "58" && f[0] != "81" {
			t.Fatalf("unexpected frame %q before 1101", f)
		}
	}
	c.send("49", "1")
	if f := c.read(); f[0] != "49" {
		t.Fatalf("frame %q after 1101, want only CURRENT_TIME: the streams were forgotten", f)
	}
	c.send(mktDataText(9, "SPY", false)...)
	for moves := 0; moves < 10; {
		if f := c.read(); f[0] == "1" && f[2] == "9" {
			moves++
		}
	}
	if g.MarketDataLines() != 1 {
		t.Errorf("lines after subscribing again: %d", g.MarketDataLines())
	}
	c.send("2", "2", "9")
	if err := g.WaitMarketDataLines(ctxLimit(t), 0); err != nil {
		t.Fatal(err)
	}
}

// TestTickHookAndStepInBidSize: with StepInBidSize every step ends with the
// step's number as the bid size, and the tick hook reports each step once, in
// order, with the connection's client id and the request's id, at or after the
// write; the walk itself is the same as without (deterministic).
func TestTickHookAndStepInBidSize(t *testing.T) {
	var mu sync.Mutex
	var writes []fakes.TickWrite
	hook := func(w fakes.TickWrite) {
		mu.Lock()
		writes = append(writes, w)
		mu.Unlock()
	}
	run := func(step bool, opts ...fakes.Option) []string {
		s := fakes.DefaultScript()
		s.ServerVersion = 193
		for i := range s.Instruments {
			if s.Instruments[i].Contract.Symbol == "SPY" {
				s.Instruments[i].TicksPerSecond = 1000
				s.Instruments[i].StepInBidSize = step
			}
		}
		g := startGateway(t, s, opts...)
		c := connectRaw(t, g, 6)
		c.send(mktDataText(7, "SPY", false)...)
		var prices []string
		for len(prices) < 30 {
			f := c.read()
			switch {
			case f[0] == "1" && f[2] == "7" && len(prices) < 30:
				prices = append(prices, f[3]+"="+f[4])
			case step && f[0] == "2" && f[2] == "7" && f[3] == "0" && f[4] != "1200":
				mu.Lock()
				seen := int64(len(writes))
				mu.Unlock()
				if n, err := strconv.ParseInt(f[4], 10, 64); err != nil || n < 1 || n > seen+1 {
					t.Fatalf("step bid size %q, %d steps reported", f[4], seen)
				}
			}
		}
		return prices[1:] // the first ticks are the initial quote
	}
	plain := run(false)
	stepped := run(true, fakes.WithTickHook(hook))
	if len(plain) != len(stepped) {
		t.Fatal("different lengths")
	}
	for i := range plain {
		if plain[i] != stepped[i] {
			t.Fatalf("the walk changed with StepInBidSize at %d: %q vs %q", i, plain[i], stepped[i])
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(writes) < 10 {
		t.Fatalf("%d steps reported", len(writes))
	}
	for i, w := range writes {
		if w.Step != int64(i+1) || w.ReqID != 7 || w.ClientID != 6 || w.ConID != 756733 || w.At.IsZero() ||
			(i > 0 && w.At.Before(writes[i-1].At)) {
			t.Fatalf("write %d: %+v", i, w)
		}
	}
}

// TestPartlyNotSubscribedWarns: fault 10090 is a warning for the request,
// followed by its live data, as IB sends it.
func TestPartlyNotSubscribedWarns(t *testing.T) {
	s := fakes.DefaultScript()
	s.ServerVersion = 193
	s.Faults.Market.MarketDataError = fakes.CodePartlyNotSubscribed
	g := startGateway(t, s)
	c := connectRaw(t, g, 5)
	c.send(mktDataText(7, "AAPL", true)...)
	if f := c.read(); f[0] != "4" || f[2] != "7" || f[3] != "10090" {
		t.Fatalf("first answer %q, want the warning 10090 for request 7", f)
	}
	for f := c.read(); f[0] != "57"; f = c.read() { // TICK_SNAPSHOT_END
		if f[0] == "4" {
			t.Fatalf("an error after the warning: %q", f)
		}
	}
}

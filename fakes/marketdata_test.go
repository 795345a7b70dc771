package fakes_test

import (
	"strconv"
	"testing"

	"github.com/brokerkit/brokerkit/fakes"
)

// mktDataText is REQ_MKT_DATA at version 193 for a SMART stock.
func mktDataText(reqID int, symbol string, snapshot bool) []string {
	snap := "0"
	if snapshot {
		snap = "1"
	}
	return []string{"1", "11", strconv.Itoa(reqID), "0", symbol, "STK", "", "", "", "", "SMART", "", "USD", "", "",
		"0", "", snap, "0", ""}
}

// TestStreamCancelAndHaltRaw drives a moving stream over the raw wire (and so
// under -race, unlike the scmhub tests): ticks flow, SetHalted stops the walk
// with TICK_GENERIC 49=1, resuming restarts it, and after CANCEL_MKT_DATA
// nothing of the stream follows the next CURRENT_TIME.
func TestStreamCancelAndHaltRaw(t *testing.T) {
	s := fakes.DefaultScript()
	s.ServerVersion = 193
	var spy int64
	for i := range s.Instruments {
		if s.Instruments[i].Contract.Symbol == "SPY" {
			s.Instruments[i].TicksPerSecond = 2000
			spy = s.Instruments[i].Contract.ConID
		}
	}
	g := startGateway(t, s)
	c := dialRaw(t, g)
	c.hello(fakes.Handshake{MinVersion: 100, MaxVersion: 193})
	c.send("71", "2", "5", "")
	for range 5 { // accounts, next id, three farm notices
		c.read()
	}
	c.send(mktDataText(7, "SPY", false)...)
	moves := 0
	for moves < 50 {
		f := c.read()
		if f[0] == "1" && f[2] == "7" && (f[3] == "1" || f[3] == "2") {
			moves++
		}
	}
	if n := g.SetHalted(spy, true); n != 1 {
		t.Fatalf("SetHalted told %d subscriptions, want 1", n)
	}
	for f := c.read(); !(f[0] == "45" && f[2] == "7" && f[3] == "49"); f = c.read() {
		if f[0] != "1" && f[0] != "2" && f[0] != "46" {
			t.Fatalf("unexpected frame %q before the halt", f)
		}
	}
	// Halted: nothing moves; the next answer is CURRENT_TIME's.
	c.send("49", "1")
	if f := c.read(); f[0] != "49" {
		t.Fatalf("frame %q while halted, want CURRENT_TIME", f)
	}
	g.SetHalted(spy, false)
	c.expect("45", "6", "7", "49", "0")
	for moves = 0; moves < 10; {
		if f := c.read(); f[0] == "1" && f[2] == "7" {
			moves++
		}
	}
	c.send("2", "2", "7")
	c.send("49", "1")
	for f := c.read(); f[0] != "49"; f = c.read() {
		if f[2] != "7" {
			t.Fatalf("unexpected frame %q", f)
		}
	}
	c.send("49", "1")
	if f := c.read(); f[0] != "49" {
		t.Fatalf("frame %q after the cancel was answered, want only CURRENT_TIME", f)
	}
	// A snapshot over the same connection still works, and ends.
	c.send(mktDataText(8, "AAPL", true)...)
	for f := c.read(); f[0] != "57"; f = c.read() {
		if f[0] == "4" {
			t.Fatalf("error %q for a snapshot", f)
		}
	}
}

package fakes_test

import (
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/fakes"
)

// requestsOf counts the requests with message id id the gateway has read.
func requestsOf(g *fakes.Gateway, id int) int {
	n := 0
	for _, c := range g.Connections() {
		for _, r := range c.Requests {
			if r.ID == id {
				n++
			}
		}
	}
	return n
}

// TestStallResume: while stalled the gateway records requests but holds
// their replies; Resume sends them, in order.
func TestStallResume(t *testing.T) {
	g := startGateway(t, fakes.DefaultScript())
	c := connectRaw(t, g, 1)
	g.Stall()
	g.Stall() // idempotent
	c.send("49", "1")
	waitFor(t, "REQ_CURRENT_TIME recorded", func() bool { return requestsOf(g, 49) == 1 })
	c.expectSilence(100 * time.Millisecond)
	g.Resume()
	if f := c.read(); f[0] != "49" {
		t.Fatalf("after Resume: got %q, want CURRENT_TIME", f)
	}
	g.Resume() // idempotent
	c.send("49", "1")
	if f := c.read(); f[0] != "49" {
		t.Fatalf("after Resume, a new request: got %q, want CURRENT_TIME", f)
	}
}

// TestStallThenClose: a held reply does not keep Close waiting, and a
// connection closed by its client while stalled is seen closed after Resume.
func TestStallThenClose(t *testing.T) {
	g := startGateway(t, fakes.DefaultScript())
	c := connectRaw(t, g, 1)
	g.Stall()
	c.send("49", "1")
	waitFor(t, "REQ_CURRENT_TIME recorded", func() bool { return requestsOf(g, 49) == 1 })
	_ = c.nc.Close()
	g.Resume()
	waitClosedRecord(t, g)

	c2 := connectRaw(t, g, 2)
	g.Stall()
	c2.send("49", "1")
	waitFor(t, "second REQ_CURRENT_TIME recorded", func() bool { return requestsOf(g, 49) == 2 })
	done := make(chan error, 1)
	go func() { done <- g.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(hangLimit):
		t.Fatalf("Close of a stalled gateway did not return within %v", hangLimit)
	}
}

// TestStallSkipsUnanswered: a request without reply (CANCEL_POSITIONS) is not
// held, so the gateway goes on reading the next one while stalled.
func TestStallSkipsUnanswered(t *testing.T) {
	g := startGateway(t, fakes.DefaultScript())
	c := connectRaw(t, g, 1)
	g.Stall()
	c.send("64", "1")
	c.send("49", "1")
	waitFor(t, "REQ_CURRENT_TIME read behind the cancel", func() bool { return requestsOf(g, 49) == 1 })
	g.Resume()
	if f := c.read(); f[0] != "49" {
		t.Fatalf("after Resume: got %q, want CURRENT_TIME", f)
	}
}

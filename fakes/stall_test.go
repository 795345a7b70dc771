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
// connection closed by its client while stalled is seen closed at once, before
// Resume (the connection goes on reading behind its held reply).
func TestStallThenClose(t *testing.T) {
	g := startGateway(t, fakes.DefaultScript())
	c := connectRaw(t, g, 1)
	g.Stall()
	c.send("49", "1")
	waitFor(t, "REQ_CURRENT_TIME recorded", func() bool { return requestsOf(g, 49) == 1 })
	_ = c.nc.Close()
	waitClosedRecord(t, g)
	g.Resume()

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

// TestStallReadsBehindHeldReply: a reply held by a Stall does not stop the
// connection reading: a request that follows one whose reply is held is
// still read and recorded (so a test can wait for it), and on Resume both
// replies go out in request order. A real gateway that stops answering still
// reads its socket. Regression: the connection used to wait for Resume before
// reading on, so a conformance case that stalled the gateway just after it had
// read a request (a Ping released by an earlier Ping's late answer, ADR 0007)
// never saw its own request arrive.
func TestStallReadsBehindHeldReply(t *testing.T) {
	g := startGateway(t, fakes.DefaultScript())
	c := connectRaw(t, g, 1)
	g.Stall()
	c.send("49", "1")
	c.send("62", "1", "7", "All", "NetLiquidation")
	waitFor(t, "REQ_ACCOUNT_SUMMARY read behind a held CURRENT_TIME", func() bool { return requestsOf(g, 62) == 1 })
	c.expectSilence(100 * time.Millisecond)
	g.Resume()
	if f := c.read(); f[0] != "49" {
		t.Fatalf("after Resume: got %q first, want CURRENT_TIME", f)
	}
	for {
		f := c.read()
		if f[0] == "64" { // ACCOUNT_SUMMARY_END
			break
		}
		if f[0] != "63" {
			t.Fatalf("after Resume: got %q, want ACCOUNT_SUMMARY rows then their end", f)
		}
	}
	c.send("49", "1")
	if f := c.read(); f[0] != "49" {
		t.Fatalf("after the held replies, a new request: got %q, want CURRENT_TIME", f)
	}
}

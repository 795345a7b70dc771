package fakes_test

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/fakes"
)

// TestRecordsBounded: the gateway remembers the latest requests of a
// connection within RecordLimits (count and bytes), and the latest closed
// connections only; its heap stays flat when big frames pass through.
func TestRecordsBounded(t *testing.T) {
	lim := fakes.RecordLimits{Requests: 10, Bytes: 64 << 10, Closed: 3}
	g := startGateway(t, fakes.DefaultScript(), fakes.WithRecordLimits(lim))

	c := connectRaw(t, g, 1)
	for range 50 {
		c.send("49", "1")
		c.read()
	}
	recs := g.Connections()
	if n := len(recs[0].Requests); n != lim.Requests {
		t.Errorf("recorded %d requests, want the latest %d", n, lim.Requests)
	}
	if got, want := recs[0].DroppedRequests, 51-lim.Requests; got != want { // START_API + 50
		t.Errorf("DroppedRequests = %d, want %d", got, want)
	}

	// 20 frames of 1 MiB (an unknown message, answered with error 321): at
	// most Bytes stay recorded.
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	big := strings.Repeat("x", 1<<20)
	for range 20 {
		c.send("999", big)
	}
	for range 20 {
		if f := c.read(); f[0] != "4" || f[3] != "321" {
			t.Fatalf("got %.80q, want ERR_MSG 321 for the unknown message", f)
		}
	}
	c.send("49", "1")
	if f := c.read(); f[0] != "49" { // every big frame has been read and recorded by now
		t.Fatalf("got %.80q, want CURRENT_TIME", f)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 8<<20 {
		t.Errorf("heap grew by %d bytes after 20 MiB of frames, want under 8 MiB", grown)
	}
	size := 0
	for _, r := range g.Connections()[0].Requests {
		for _, f := range r.Fields {
			size += len(f) + 1
		}
	}
	if size > lim.Bytes {
		t.Errorf("recorded %d bytes of fields, want at most %d", size, lim.Bytes)
	}

	// Closed connections beyond Closed are forgotten; live ones are kept.
	_ = c.nc.Close()
	for i := range 10 {
		connectRaw(t, g, int64(10+i)).nc.Close()
	}
	connectRaw(t, g, 99)
	waitFor(t, "closed records pruned", func() bool { return len(g.Connections()) == lim.Closed+1 })
	recs = g.Connections()
	if last := recs[len(recs)-1]; last.Closed || last.ClientID != 99 {
		t.Errorf("last record %+v, want the live connection of client 99", last)
	}
}

// TestHandshakeTimeout: a connection that never sends its handshake, or never
// sends START_API, is closed after the handshake timeout.
func TestHandshakeTimeout(t *testing.T) {
	g := startGateway(t, fakes.DefaultScript(), fakes.WithHandshakeTimeout(100*time.Millisecond))
	silent := dialRaw(t, g)
	silent.expectClosed()

	noStart := dialRaw(t, g)
	noStart.hello(textRange)
	noStart.expectClosed()
	waitFor(t, "both refused", func() bool {
		n := 0
		for _, r := range g.Connections() {
			if r.Refused == "handshake timeout" {
				n++
			}
		}
		return n == 2
	})

	// A client that completes START_API is not bound by it.
	ok := connectRaw(t, g, 1)
	ok.expectSilence(300 * time.Millisecond)
	ok.send("49", "1")
	ok.read()
}

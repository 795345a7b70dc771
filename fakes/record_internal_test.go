package fakes

import (
	"net"
	"runtime"
	"testing"
)

// TestRecordPastTheLimitIsAmortized: once a connection's record is full, a
// request drops the oldest without copying the kept ones each time (which cost
// Requests × the size of a Request per request, ADR 0018), and the record still
// holds the latest Requests requests.
func TestRecordPastTheLimitIsAmortized(t *testing.T) {
	g, err := NewGateway(DefaultScript())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	a, b := net.Pipe()
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	c := newConn(g, a)
	lim := g.opts.records.Requests
	fields := []string{"49", "1"}
	for range 2 * lim {
		c.record(fields, false)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range lim {
		c.record(fields, false)
	}
	runtime.ReadMemStats(&after)
	// A Request is 80 bytes; copying the kept ones was lim × 80 bytes per request.
	if per := (after.TotalAlloc - before.TotalAlloc) / uint64(lim); per > 1024 {
		t.Errorf("record past the limit allocated %d bytes per request, want under 1 KiB (amortized)", per)
	}
	c.record([]string{"49", "last"}, false)
	g.mu.Lock()
	defer g.mu.Unlock()
	r := c.rec
	if len(r.Requests) != lim {
		t.Fatalf("record holds %d requests, want the limit %d", len(r.Requests), lim)
	}
	if got := r.Requests[lim-1].Fields[1]; got != "last" {
		t.Errorf("newest recorded request's field = %q, want %q", got, "last")
	}
	if want := 3*lim + 1 - lim; r.DroppedRequests != want {
		t.Errorf("DroppedRequests = %d, want %d", r.DroppedRequests, want)
	}
}

package stdiojson

import (
	"context"
	"fmt"
	"runtime/metrics"
	"testing"
)

// goroutinesCreated is the number of goroutines this process has started.
func goroutinesCreated(t *testing.T) uint64 {
	t.Helper()
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		t.Fatalf("runtime/metrics has no %s", s[0].Name)
	}
	return s[0].Value.Uint64()
}

// TestServeReusesHandlersForConcurrentRequests: a worker that had 64 requests
// in flight keeps their handler goroutines for the next 64, instead of starting
// (and growing the stack of) a goroutine for most requests, which was a quarter
// of the worker's CPU with 64 callers (ADR 0018).
func TestServeReusesHandlersForConcurrentRequests(t *testing.T) {
	b := newMemBroker(0)
	p := startServe(t, t.Context(), b)
	defer p.stop(t)
	p.send(t, `{"command":"connect"}`)
	p.recv(t)
	const inflight, rounds = 64, 10
	id := 0
	// round r sends inflight requests that block until a last one releases them.
	round := func(r int) {
		lines := make([]string, inflight)
		for i := range lines {
			id++
			lines[i] = fmt.Sprintf(`{"id":%d,"command":"get_account_summary","tags":["wait:r%d"]}`, id, r)
		}
		p.send(t, lines...)
		ctx, cancel := context.WithTimeout(t.Context(), hangBound)
		defer cancel()
		if err := b.WaitBlocked(ctx, (r+1)*inflight); err != nil {
			t.Fatal(err)
		}
		id++
		p.send(t, fmt.Sprintf(`{"id":%d,"command":"get_account_summary","tags":["release:r%d"]}`, id, r))
		for range inflight + 1 {
			if m := p.recv(t); m["status"] != "success" {
				t.Fatalf("answer %v, want success", m)
			}
		}
	}
	round(0)
	before := goroutinesCreated(t)
	for r := 1; r <= rounds; r++ {
		round(r)
	}
	if per := float64(goroutinesCreated(t)-before) / rounds; per > inflight/4 {
		t.Errorf("%.1f goroutines started per round of %d concurrent requests, want at most %d (handlers reused)", per, inflight+1, inflight/4)
	}
}

package testbroker

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// UnreadQuotes checks a transport's slow-consumer policy from the host's
// side. ch is a fresh stream of AAPL opened on b, whose far side is a Broker
// of this package: while the far side ticks AAPL ticks times ("ticks:" tag)
// and nobody reads ch, calls on b (Ping) are answered within a second or
// two, and the host's heap grows by at most a few MiB; reading ch then
// reaches the newest tick in a few reads, with every value counted (taken or
// Dropped): the first quote and each tick.
func UnreadQuotes(t testing.TB, ctx context.Context, b broker.Broker, ch <-chan broker.QuoteUpdate, ticks int) {
	t.Helper()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	done := make(chan error, 1)
	go func() { _, err := b.AccountSummary(ctx, "ticks:AAPL:"+strconv.Itoa(ticks)); done <- err }()
	var slowest time.Duration
	pings := 0
	for ticking := true; ticking; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			ticking = false
		default:
			start := time.Now()
			if err := b.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			slowest = max(slowest, time.Since(start))
			pings++
		}
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d pings answered while %d ticks streamed unread: slowest %v; host heap grew %d KiB", pings, ticks, slowest, grew>>10)
	if slowest > 2*time.Second {
		t.Errorf("a ping took %v while the stream was unread", slowest)
	}
	if grew > 4<<20 {
		t.Errorf("host heap grew %d KiB with the stream unread, want bounded", grew>>10)
	}

	newest := TickQuote(ticks).Bid
	var seen int64
	reads := 0
	for {
		var u broker.QuoteUpdate
		var ok bool
		select {
		case u, ok = <-ch:
		case <-ctx.Done():
			t.Fatalf("no newest quote after %d read(s): %v", reads, ctx.Err())
		}
		if !ok {
			t.Fatal("stream closed")
		}
		reads++
		seen += 1 + u.Dropped
		if u.Quote.Bid.Equal(newest) {
			break
		}
	}
	t.Logf("the newest quote after %d read(s)", reads)
	if seen != int64(ticks)+1 { // the first quote and every tick
		t.Errorf("values taken plus Dropped = %d, want %d", seen, ticks+1)
	}
	if reads > 3 {
		t.Errorf("%d reads to reach the newest quote: the host did not conflate", reads)
	}
}

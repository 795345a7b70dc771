package fakes_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

var memAAPL = broker.Contract{Symbol: "AAPL", SecType: "STK", Exchange: "SMART", Currency: "USD"}

// recvQuote takes the next value of ch, failing the test after hangLimit.
func recvQuote(t *testing.T, ch <-chan broker.QuoteUpdate) (broker.QuoteUpdate, bool) {
	t.Helper()
	select {
	case u, ok := <-ch:
		return u, ok
	case <-time.After(hangLimit):
		t.Fatal("no quote update in time")
		return broker.QuoteUpdate{}, false
	}
}

// ignoreTimes compares quotes without the times a Broker stamps.
func ignoreTimes(q broker.Quote) broker.Quote {
	q.Time, q.LastTime = time.Time{}, time.Time{}
	return q
}

func TestMemorySubscribeQuotesAgreesWithSnapshot(t *testing.T) {
	m := connectedMemory(t, fakes.DefaultScript())
	ctx := t.Context()
	ch, err := m.SubscribeQuotes(ctx, memAAPL)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := recvQuote(t, ch)
	snap, err := m.Snapshot(ctx, memAAPL)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ignoreTimes(snap), ignoreTimes(first.Quote)); diff != "" || first.Gap != "" || first.Dropped != 0 {
		t.Fatalf("first update %+v differs from Snapshot (-snapshot +stream):\n%s", first, diff)
	}

	d := broker.MustDecimal
	q := fakes.InstrumentQuote{Bid: d("190.01"), Ask: d("190.03"), Last: d("190.02"), BidSize: d("7"), AskSize: d("8"),
		LastSize: d("1"), Close: d("188.2"), Volume: d("45210035.5")}
	if n, err := m.SetQuote(memAAPL, q); n != 1 || err != nil {
		t.Fatalf("SetQuote = %d, %v; want 1 stream reached", n, err)
	}
	tick, _ := recvQuote(t, ch)
	snap, _ = m.Snapshot(ctx, memAAPL)
	if !snap.Bid.Equal(d("190.01")) || !snap.Volume.Equal(d("45210035.5")) {
		t.Fatalf("Snapshot after SetQuote = %+v, want the new quote", snap)
	}
	if diff := cmp.Diff(ignoreTimes(snap), ignoreTimes(tick.Quote)); diff != "" || tick.Dropped != 0 {
		t.Fatalf("tick %+v differs from Snapshot (-snapshot +stream):\n%s", tick, diff)
	}
	if tick.Quote.Contract != memAAPL {
		t.Errorf("tick names %+v, want the contract as the caller named it", tick.Quote.Contract)
	}

	// SetScript: a change of the quote is a tick, no change is none.
	s := m.Script()
	m.SetScript(s)
	s.Instruments[0].Quote.Last = d("191")
	m.SetScript(s)
	tick, _ = recvQuote(t, ch)
	if !tick.Quote.Last.Equal(d("191")) || tick.Dropped != 0 {
		t.Fatalf("after SetScript: %+v, want last 191 and nothing dropped", tick)
	}
}

// TestMemoryQuotesConflate: a subscriber that does not read finds the newest
// quote and the count of what it missed; a gap marker is never lost.
func TestMemoryQuotesConflate(t *testing.T) {
	m := connectedMemory(t, fakes.DefaultScript())
	ch, err := m.SubscribeQuotes(t.Context(), memAAPL)
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	for i := 1; i <= n; i++ {
		if i == n/2 {
			if k, err := m.QuoteGap(memAAPL, "test: session lost"); k != 1 || err != nil {
				t.Fatalf("QuoteGap = %d, %v", k, err)
			}
		}
		if _, err := m.SetQuote(memAAPL, fakes.InstrumentQuote{Bid: broker.DecimalFromInt(int64(i))}); err != nil {
			t.Fatal(err)
		}
	}
	u, _ := recvQuote(t, ch)
	// The first value (the snapshot), the gap and n ticks are n+2 values: n+1 dropped.
	if !u.Quote.Bid.Equal(broker.DecimalFromInt(n)) || u.Dropped != n+1 || u.Gap != "test: session lost" {
		t.Fatalf("got bid %s dropped %d gap %q; want bid %d dropped %d and the gap", u.Quote.Bid, u.Dropped, u.Gap, n, n+1)
	}
}

func TestMemoryQuoteStreamEnds(t *testing.T) {
	m := connectedMemory(t, fakes.DefaultScript())
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := m.SubscribeQuotes(ctx, memAAPL)
	if err != nil {
		t.Fatal(err)
	}
	ch2, err := m.SubscribeQuotes(t.Context(), memAAPL)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.QuoteStreams(); got != 2 {
		t.Fatalf("QuoteStreams = %d, want 2", got)
	}
	cancel()
	for _, ok := recvQuote(t, ch); ok; _, ok = recvQuote(t, ch) {
	}
	if got := m.QuoteStreams(); got != 1 {
		t.Fatalf("after cancel QuoteStreams = %d, want 1", got)
	}
	short, stop := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer stop()
	if err := m.WaitQuoteStreams(short, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitQuoteStreams(0) with one live: %v", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- m.WaitQuoteStreams(t.Context(), 0) }()
	if err := m.Disconnect(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	for _, ok := recvQuote(t, ch2); ok; _, ok = recvQuote(t, ch2) {
	}
	if _, err := m.SubscribeQuotes(t.Context(), memAAPL); !errors.Is(err, broker.ErrNotConnected) {
		t.Fatalf("without a session: %v, want ErrNotConnected", err)
	}
	if _, err := m.Connect(t.Context(), broker.ConnectParams{}); err != nil {
		t.Fatal(err)
	}
	ch3, err := m.SubscribeQuotes(t.Context(), memAAPL)
	if err != nil {
		t.Fatal(err)
	}
	_ = m.Close()
	for _, ok := recvQuote(t, ch3); ok; _, ok = recvQuote(t, ch3) {
	}
	if _, err := m.SubscribeQuotes(t.Context(), memAAPL); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
}

func TestMemorySubscribeQuotesFailsLikeSnapshot(t *testing.T) {
	m := connectedMemory(t, fakes.DefaultScript())
	ctx := t.Context()
	for _, c := range []broker.Contract{
		{Symbol: "IBM", SecType: "STK", Exchange: "SMART", Currency: "USD"}, // delayed only: 10089 under live
		{Symbol: "NOPE", SecType: "STK", Exchange: "SMART", Currency: "USD"},
		{},
	} {
		_, serr := m.Snapshot(ctx, c)
		_, qerr := m.SubscribeQuotes(ctx, c)
		if serr == nil || qerr == nil || serr.Error() != qerr.Error() {
			t.Errorf("%+v: Snapshot %v, SubscribeQuotes %v; want the same error", c, serr, qerr)
		}
	}
	if _, err := m.SetQuote(broker.Contract{Symbol: "NOPE"}, fakes.InstrumentQuote{}); !errors.Is(err, broker.ErrNotFound) {
		t.Errorf("SetQuote of an unknown instrument: %v, want ErrNotFound", err)
	}
	if _, err := m.QuoteGap(memAAPL, ""); !errors.Is(err, broker.ErrInvalidArgument) {
		t.Errorf("QuoteGap without a reason: %v, want ErrInvalidArgument", err)
	}
	// Delayed data: the stream serves the type set before it opened.
	if err := m.SetMarketDataType(ctx, broker.MarketDataDelayed); err != nil {
		t.Fatal(err)
	}
	ibm := broker.Contract{Symbol: "IBM", SecType: "STK", Exchange: "SMART", Currency: "USD"}
	ch, err := m.SubscribeQuotes(ctx, ibm)
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := recvQuote(t, ch); u.Quote.DataType != broker.MarketDataDelayed {
		t.Fatalf("delayed-only stream: %+v, want delayed data", u)
	}
}

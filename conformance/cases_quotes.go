// Quote stream cases (broker.QuoteStreamer, docs/adr/0017-quote-streams.md):
// values, cancellation on the wire, errors, Close, slow subscribers.

package conformance

import (
	"context"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/brokerkit/brokerkit/broker"
)

// staticQuoteConID is StandardScript's static instrument with sub-cent prices
// and a non-ASCII symbol: its stream must converge to its script quote exactly.
const staticQuoteConID = 14096

// quoteStreamer returns b as a broker.QuoteStreamer, or skips the case
// naming the missing capability.
func quoteStreamer(t TB, b broker.Broker) broker.QuoteStreamer {
	t.Helper()
	qs, ok := b.(broker.QuoteStreamer)
	if !ok {
		t.Skipf("the Broker does not implement broker.QuoteStreamer")
	}
	return qs
}

// quoteMatches reports whether got is want asked as asked, times aside.
func quoteMatches(asked broker.Contract, want, got broker.Quote) bool {
	want.Time, want.LastTime, want.Contract = got.Time, got.LastTime, asked
	return cmp.Equal(want, got)
}

// awaitQuote reads ch until a value's quote equals want (times aside, checked
// as sameQuote does) within CallTimeout, and returns that value.
func awaitQuote(t TB, ch <-chan broker.QuoteUpdate, asked broker.Contract, want broker.Quote, what string) broker.QuoteUpdate {
	t.Helper()
	deadline := time.After(CallTimeout)
	var last broker.QuoteUpdate
	for {
		select {
		case u, open := <-ch:
			if !open {
				t.Fatalf("%s: the stream closed before a value equal to the script's; last %+v", what, last.Quote)
			}
			last = u
			if quoteMatches(asked, want, u.Quote) {
				sameQuote(t, what, asked, want, u.Quote)
				return u
			}
		case <-deadline:
			w := want
			w.Time, w.LastTime, w.Contract = last.Quote.Time, last.Quote.LastTime, asked
			t.Fatalf("%s: no value equal to the script's within %v; last (-script +got):\n%s", what, CallTimeout,
				cmp.Diff(w, last.Quote))
		}
	}
}

// awaitClosed fails unless ch is closed within d (values before are drained).
func awaitClosed[T any](t TB, ch <-chan T, d time.Duration, what string) {
	t.Helper()
	if !drained(ch, d) {
		t.Fatalf("%s: the stream's channel is still open after %v", what, d)
	}
}

// TestQuoteStream: a static instrument's stream converges to exactly the
// quote Snapshot returns (the script's), without a gap; when ctx is
// cancelled the channel is closed promptly and the subscription is cancelled
// on the gateway (its market data line ends), while another stream of the same
// contract goes on.
func TestQuoteStream(t TB, newBroker Factory, f Features) {
	s, env, b := connectedStandard(t, newBroker, f)
	qs := quoteStreamer(t, b)
	ctx, cancel := callCtx(t)
	defer cancel()
	c := broker.Contract{ConID: staticQuoteConID}
	snap, err := b.Snapshot(ctx, c)
	if err != nil {
		t.Fatalf("Snapshot(%+v): %v", c, err)
	}
	want, _ := instrument(t, s, staticQuoteConID).SnapshotAs(broker.MarketDataLive, time.Now())
	sameQuote(t, "Snapshot", c, want, snap)

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	ch, err := qs.SubscribeQuotes(sctx, c)
	if err != nil {
		t.Fatalf("SubscribeQuotes(%+v): %v", c, err)
	}
	other, err := qs.SubscribeQuotes(ctx, c)
	if err != nil {
		t.Fatalf("second SubscribeQuotes(%+v): %v", c, err)
	}
	u := awaitQuote(t, ch, c, want, "the stream's first values")
	if u.Gap != "" {
		t.Errorf("a value of a fresh stream has gap %q", u.Gap)
	}
	awaitQuote(t, other, c, want, "the second stream")
	lines := env.Gateway.MarketDataLines()
	if lines < 1 {
		t.Fatalf("the gateway holds %d market data lines for two live streams", lines)
	}

	stop()
	awaitClosed(t, ch, 2*PromptBound, "after its ctx was cancelled")
	if lines > 1 { // a line per stream: the cancelled one's ends (one shared line stays)
		if err := env.Gateway.WaitMarketDataLines(ctx, lines-1); err != nil {
			t.Errorf("the cancel did not reach the gateway: %v", err)
		}
	}
	select {
	case _, open := <-other:
		if !open {
			t.Errorf("cancelling one stream closed another of the same contract")
		}
	default:
	}
	if _, err := b.Snapshot(ctx, c); err != nil {
		t.Errorf("Snapshot after a cancelled stream: %v", err)
	}
}

// TestQuoteStreamCancelReachesGateway: the only stream of a contract, once
// its ctx is cancelled, is closed and cancelled on the gateway: no market
// data line is left.
func TestQuoteStreamCancelReachesGateway(t TB, newBroker Factory, f Features) {
	_, env, b := connectedStandard(t, newBroker, f)
	qs := quoteStreamer(t, b)
	ctx, cancel := callCtx(t)
	defer cancel()
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	ch, err := qs.SubscribeQuotes(sctx, standardAAPL)
	if err != nil {
		t.Fatalf("SubscribeQuotes(AAPL): %v", err)
	}
	if err := env.Gateway.WaitMarketDataLines(ctx, 1); err != nil {
		t.Fatalf("the subscription never reached the gateway: %v", err)
	}
	stop()
	awaitClosed(t, ch, 2*PromptBound, "after its ctx was cancelled")
	if err := env.Gateway.WaitMarketDataLines(ctx, 0); err != nil {
		t.Errorf("the cancelled stream is still subscribed on the gateway: %v", err)
	}
}

// TestQuoteStreamErrors: SubscribeQuotes fails like Snapshot, with the
// port's sentinels and IB's codes: an unknown contract is ErrNotFound (200),
// a delayed-only one under live data and a refused subscription
// ErrNotSubscribed (10089, 354), one line too many ErrPacing (101), a
// contract naming nothing ErrInvalidArgument, and no session ErrNotConnected;
// warning 10090 (part of the data not subscribed) is no error.
func TestQuoteStreamErrors(t TB, newBroker Factory, f Features) {
	s := StandardScript()
	s.Faults.Market.MaxTickers = 1
	env := newEnv(t, f, s)
	b := newBroker(t, env)
	qs := quoteStreamer(t, b)
	ctx, cancel := callCtx(t)
	defer cancel()
	if !f.Reconnects {
		_, err := qs.SubscribeQuotes(ctx, standardAAPL)
		wantIs(t, "SubscribeQuotes without a session", err, broker.ErrNotConnected)
	}
	connect(t, b, env.Params)
	code := func(what string, err error, target error, ib int64) {
		t.Helper()
		if wantIs(t, what, err, target) && broker.IBCode(err) != ib {
			t.Errorf("%s: IB code %d, want %d", what, broker.IBCode(err), ib)
		}
	}
	_, err := qs.SubscribeQuotes(ctx, broker.Contract{Symbol: "NOSUCH", SecType: "STK"})
	code("SubscribeQuotes(NOSUCH)", err, broker.ErrNotFound, broker.IBCodeNoSecurityDefinition)
	_, err = qs.SubscribeQuotes(ctx, broker.Contract{Symbol: "IBM", SecType: "STK", Currency: "USD"})
	code("SubscribeQuotes(IBM) under live data", err, broker.ErrNotSubscribed, broker.IBCodeDelayedAvailable)
	_, err = qs.SubscribeQuotes(ctx, broker.Contract{SecType: "STK"})
	wantIs(t, "SubscribeQuotes(no symbol)", err, broker.ErrInvalidArgument)
	if _, err := qs.SubscribeQuotes(ctx, standardAAPL); err != nil {
		t.Fatalf("SubscribeQuotes(AAPL): %v", err)
	}
	_, err = qs.SubscribeQuotes(ctx, broker.Contract{ConID: staticQuoteConID})
	code("SubscribeQuotes beyond the gateway's lines", err, broker.ErrPacing, broker.IBCodeMaxTickers)
	s2 := s.Clone()
	s2.Faults.Market.MarketDataError = broker.IBCodeMarketDataNotSubscribed
	env.Gateway.SetScript(s2)
	_, err = qs.SubscribeQuotes(ctx, standardAAPL)
	code("SubscribeQuotes under error 354", err, broker.ErrNotSubscribed, broker.IBCodeMarketDataNotSubscribed)
	// Warning 10090 (part of the data not subscribed) is no error: the rest flows.
	s2.Faults.Market.MarketDataError, s2.Faults.Market.MaxTickers = broker.IBCodePartlyNotSubscribed, 0
	env.Gateway.SetScript(s2)
	c := broker.Contract{ConID: staticQuoteConID}
	ch, err := qs.SubscribeQuotes(ctx, c)
	if err != nil {
		t.Fatalf("SubscribeQuotes after warning 10090: %v", err)
	}
	want, _ := instrument(t, s, staticQuoteConID).SnapshotAs(broker.MarketDataLive, time.Now())
	awaitQuote(t, ch, c, want, "a stream after warning 10090")
}

// TestQuoteStreamClose: Close closes every quote stream's channel, and
// SubscribeQuotes after Close fails with ErrClosed.
func TestQuoteStreamClose(t TB, newBroker Factory, f Features) {
	_, _, b := connectedStandard(t, newBroker, f)
	qs := quoteStreamer(t, b)
	ctx, cancel := callCtx(t)
	defer cancel()
	ch, err := qs.SubscribeQuotes(ctx, standardAAPL)
	if err != nil {
		t.Fatalf("SubscribeQuotes(AAPL): %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	awaitClosed(t, ch, CallTimeout, "after Close")
	_, err = qs.SubscribeQuotes(ctx, standardAAPL)
	wantIs(t, "SubscribeQuotes after Close", err, broker.ErrClosed)
}

// TestQuoteStreamSlowSubscriber: a subscriber that never reads a fast stream
// slows no other call nor another stream, and the value it finally takes is
// the newest state with a count of what it missed.
func TestQuoteStreamSlowSubscriber(t TB, newBroker Factory, f Features) {
	s := StandardScript()
	for i := range s.Instruments {
		if s.Instruments[i].Contract.ConID == 265598 {
			s.Instruments[i].TicksPerSecond = 2000
		}
	}
	env := newEnv(t, f, s)
	b := newBroker(t, env)
	qs := quoteStreamer(t, b)
	connect(t, b, env.Params)
	ctx, cancel := callCtx(t)
	defer cancel()
	slow, err := qs.SubscribeQuotes(ctx, standardAAPL)
	if err != nil {
		t.Fatalf("SubscribeQuotes(AAPL): %v", err)
	}
	c := broker.Contract{ConID: staticQuoteConID}
	want, _ := instrument(t, s, staticQuoteConID).SnapshotAs(broker.MarketDataLive, time.Now())
	start := time.Now()
	for i := range 20 {
		cctx, ccancel := context.WithTimeout(ctx, 4*PromptBound)
		_, err := b.Snapshot(cctx, c)
		ccancel()
		if err != nil {
			t.Fatalf("Snapshot %d beside a subscriber that does not read: %v", i, err)
		}
	}
	fast, err := qs.SubscribeQuotes(ctx, c)
	if err != nil {
		t.Fatalf("SubscribeQuotes beside a subscriber that does not read: %v", err)
	}
	awaitQuote(t, fast, c, want, "a stream beside a subscriber that does not read")
	if err := b.Ping(ctx); err != nil {
		t.Errorf("Ping beside a subscriber that does not read: %v", err)
	}
	t.Logf("20 snapshots, a stream and a ping in %v beside a stream of 2000 ticks/s left unread", time.Since(start))
	select {
	case u, open := <-slow:
		if !open {
			t.Fatalf("the unread stream was closed")
		}
		if u.Dropped == 0 {
			t.Errorf("the unread stream's value counts no dropped change after %v at 2000 ticks/s", time.Since(start))
		}
	case <-time.After(CallTimeout):
		t.Fatalf("the unread stream holds no value")
	}
}

// TestQuoteStreamLost: when the gateway loses the session's market data (IB
// 1101: it forgets every line) or drops the session, a Broker that does not
// restore sessions closes the stream's channel (after 1101 the session
// itself goes on: a new stream works); one that does (Features.Reconnects)
// keeps the channel open, sends a value with a gap first, subscribes again
// (the gateway holds the line again) and the script's quote follows.
func TestQuoteStreamLost(t TB, newBroker Factory, f Features) {
	s, env, b := connectedStandard(t, newBroker, f)
	qs := quoteStreamer(t, b)
	ctx, cancel := context.WithTimeout(t.Context(), 6*CallTimeout)
	defer cancel()
	c := broker.Contract{ConID: staticQuoteConID}
	want, _ := instrument(t, s, staticQuoteConID).SnapshotAs(broker.MarketDataLive, time.Now())
	subscribe := func(when string) <-chan broker.QuoteUpdate {
		t.Helper()
		ch, err := qs.SubscribeQuotes(ctx, c)
		if err != nil {
			t.Fatalf("SubscribeQuotes(%+v) %s: %v", c, when, err)
		}
		awaitQuote(t, ch, c, want, "a stream "+when)
		return ch
	}
	ch := subscribe("before any loss")
	for _, loss := range []struct {
		what string
		do   func() int
	}{
		{"IB 1101", func() int { return env.Gateway.Notify(broker.IBCodeRestoredDataLost, "") }},
		{"a gateway drop", env.Gateway.DropConnections},
	} {
		if n := loss.do(); n < 1 {
			t.Fatalf("%s reached no connection", loss.what)
		}
		if !f.Reconnects {
			awaitClosed(t, ch, CallTimeout, "after "+loss.what)
			if loss.what == "IB 1101" {
				ch = subscribe("after IB 1101")
			}
			continue
		}
		u := awaitGap(t, ch, "after "+loss.what)
		if !quoteMatches(c, want, u.Quote) {
			awaitQuote(t, ch, c, want, "the stream after "+loss.what+" and its gap")
		}
		if err := env.Gateway.WaitMarketDataLines(ctx, 1); err != nil {
			t.Fatalf("the stream was not subscribed again after %s: %v", loss.what, err)
		}
	}
}

// awaitGap reads ch until a value carries a gap, within 2*CallTimeout (a
// Broker may take a reconnection to notice), and returns it.
func awaitGap(t TB, ch <-chan broker.QuoteUpdate, what string) broker.QuoteUpdate {
	t.Helper()
	deadline := time.After(2 * CallTimeout)
	for {
		select {
		case u, open := <-ch:
			if !open {
				t.Fatalf("%s: the stream closed, though the Broker restores sessions", what)
			}
			if u.Gap != "" {
				return u
			}
		case <-deadline:
			t.Fatalf("%s: no value with a gap within %v", what, 2*CallTimeout)
		}
	}
}

// quoteStreamCases are the cases of quote streams, in Cases' order.
func quoteStreamCases() []Case {
	return []Case{
		{"QuoteStream", TestQuoteStream},
		{"QuoteStreamCancel", TestQuoteStreamCancelReachesGateway},
		{"QuoteStreamErrors", TestQuoteStreamErrors},
		{"QuoteStreamClose", TestQuoteStreamClose},
		{"QuoteStreamSlowSubscriber", TestQuoteStreamSlowSubscriber},
		{"QuoteStreamLost", TestQuoteStreamLost},
	}
}

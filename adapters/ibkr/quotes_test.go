package ibkr_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

var esz6 = broker.Contract{Symbol: "ES", SecType: "FUT", Expiry: "20261218", Exchange: "CME", Currency: "USD"}

// instrument returns the script's instrument with con id conID.
func instrument(t *testing.T, s fakes.Script, conID int64) fakes.Instrument {
	t.Helper()
	for _, in := range s.Instruments {
		if in.Contract.ConID == conID {
			return in
		}
	}
	t.Fatalf("no instrument %d in the script", conID)
	return fakes.Instrument{}
}

// untilQuote reads ch until a value's quote equals want (Time and LastTime
// aside), or fails at the deadline or when ch closes; it returns that value.
func untilQuote(t *testing.T, ch <-chan broker.QuoteUpdate, want broker.Quote) broker.QuoteUpdate {
	t.Helper()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	var last broker.QuoteUpdate
	for {
		select {
		case u, ok := <-ch:
			if !ok {
				t.Fatalf("stream closed; last value %+v, want %+v", last.Quote, want)
			}
			last = u
			q := u.Quote
			q.Time, q.LastTime = want.Time, want.LastTime
			if q == want {
				return u
			}
		case <-deadline.C:
			t.Fatalf("no value equal to the script's:\n last %+v\n want %+v", last.Quote, want)
		}
	}
}

// waitClosed fails unless ch is closed within the deadline (values before
// the close are drained).
func waitClosed(t *testing.T, ch <-chan broker.QuoteUpdate, what string) {
	t.Helper()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline.C:
			t.Fatalf("%s: stream still open", what)
		}
	}
}

// TestSubscribeQuotes: a static instrument's stream converges to exactly the
// script's quote (as Snapshot returns it), one value per tick, at each
// server version of the matrix (text, raw ids, protobuf market data from 206;
// 120 has no TICK_REQ_PARAMS: MARKET_DATA_TYPE is the first answer);
// cancelling ctx closes the channel and sends CANCEL_MKT_DATA for that id.
func TestSubscribeQuotes(t *testing.T) {
	for _, v := range append(serverVersions, 120, 205, 206) {
		t.Run(strconv.Itoa(v), func(t *testing.T) {
			s := fakes.DefaultScript()
			s.ServerVersion = v
			g, a, ctx := connected(t, s)
			if cs := g.Connections(); cs[len(cs)-1].ServerVersion != v {
				t.Fatalf("the session is at server version %d, want %d", cs[len(cs)-1].ServerVersion, v)
			}
			snap, err := a.Snapshot(ctx, esz6)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := instrument(t, s, 495512563).SnapshotAs(broker.MarketDataLive, snap.Time)
			want.Contract, want.LastTime = esz6, snap.LastTime
			if snap != want {
				t.Fatalf("snapshot:\n got %+v\nwant %+v", snap, want)
			}
			subCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			before := time.Now()
			ch, err := a.SubscribeQuotes(subCtx, esz6)
			if err != nil {
				t.Fatal(err)
			}
			req, err := g.WaitRequests(ctx, fakes.MsgReqMktData, 2)
			if err != nil {
				t.Fatal(err)
			}
			u := untilQuote(t, ch, want)
			if u.Gap != "" || u.Quote.Time.Before(before) || time.Since(u.Quote.Time) > time.Minute ||
				time.Since(u.Quote.LastTime) > time.Minute {
				t.Errorf("value %+v: gap or times wrong", u)
			}
			id := requestID(t, req, v)
			cancel()
			waitClosed(t, ch, "after cancel")
			cm, err := g.WaitRequest(ctx, fakes.MsgCancelMktData)
			if err != nil {
				t.Fatal(err)
			}
			if got := requestID(t, cm, v); got != id {
				t.Errorf("CANCEL_MKT_DATA for %d, the stream was %d", got, id)
			}
			if n := g.RequestCount(fakes.MsgCancelMktData); n != 1 {
				t.Errorf("%d cancels, want 1", n)
			}
		})
	}
}

// requestID is the request id of a REQ_MKT_DATA or CANCEL_MKT_DATA as the
// gateway recorded it (text layout: id, version, request id).
func requestID(t *testing.T, r fakes.Request, v int) int64 {
	t.Helper()
	if len(r.Fields) < 3 {
		t.Fatalf("request %+v at %d: too short", r, v)
	}
	id, err := strconv.ParseInt(r.Fields[2], 10, 64)
	if err != nil {
		t.Fatalf("request %+v at %d: %v", r, v, err)
	}
	return id
}

// TestSubscribeQuotesErrors: IB's refusals are SubscribeQuotes' errors, with
// the port's sentinels, and no channel is left behind.
func TestSubscribeQuotesErrors(t *testing.T) {
	for _, c := range []struct {
		code int64
		want error
	}{{200, broker.ErrNotFound}, {354, broker.ErrNotSubscribed}, {10089, broker.ErrNotSubscribed}, {101, broker.ErrPacing}} {
		t.Run(strconv.FormatInt(c.code, 10), func(t *testing.T) {
			s := fakes.DefaultScript()
			s.Faults.Market.MarketDataError = c.code
			_, a, ctx := connected(t, s)
			ch, err := a.SubscribeQuotes(ctx, aapl)
			if !errors.Is(err, c.want) || broker.IBCode(err) != c.code || ch != nil {
				t.Errorf("got %v (IB %d), channel %v; want %v", err, broker.IBCode(err), ch, c.want)
			}
			if err := a.Ping(ctx); err != nil {
				t.Errorf("session after the refusal: %v", err)
			}
		})
	}
	t.Run("max tickers", func(t *testing.T) {
		s := fakes.DefaultScript()
		s.Faults.Market.MaxTickers = 1
		_, a, ctx := connected(t, s)
		if _, err := a.SubscribeQuotes(ctx, esz6); err != nil {
			t.Fatal(err)
		}
		if _, err := a.SubscribeQuotes(ctx, esz6); !errors.Is(err, broker.ErrPacing) {
			t.Errorf("second line beyond MaxTickers 1: %v", err)
		}
		if _, err := a.SubscribeQuotes(ctx, broker.Contract{Symbol: "NOPE"}); !errors.Is(err, broker.ErrNotFound) {
			t.Errorf("unknown symbol: %v", err)
		}
		if _, err := a.SubscribeQuotes(ctx, broker.Contract{}); !errors.Is(err, broker.ErrInvalidArgument) {
			t.Errorf("no instrument: %v", err)
		}
	})
	t.Run("10090 warns", func(t *testing.T) { // part of the data not subscribed: the rest flows
		s := fakes.DefaultScript()
		s.Faults.Market.MarketDataError = fakes.CodePartlyNotSubscribed
		_, a, ctx := connected(t, s)
		snap, err := a.Snapshot(ctx, esz6)
		if err != nil {
			t.Fatalf("Snapshot after warning 10090: %v", err)
		}
		ch, err := a.SubscribeQuotes(ctx, esz6)
		if err != nil {
			t.Fatalf("SubscribeQuotes after warning 10090: %v", err)
		}
		snap.LastTime = time.Time{}
		untilQuote(t, ch, snap)
	})
	t.Run("no session", func(t *testing.T) {
		a := newAdapter(t)
		if _, err := a.SubscribeQuotes(ctxFor(t), aapl); !errors.Is(err, broker.ErrNotConnected) {
			t.Errorf("without a session: %v", err)
		}
		_ = a.Close()
		if _, err := a.SubscribeQuotes(ctxFor(t), aapl); !errors.Is(err, broker.ErrClosed) {
			t.Errorf("after Close: %v", err)
		}
	})
}

// TestSubscribeQuotesEnds: Close, the gateway dropping the session and IB
// 1101 (market data lost) close the channels; 1102 (data maintained) does not.
func TestSubscribeQuotesEnds(t *testing.T) {
	setup := func(t *testing.T) (*fakes.Gateway, *ibkr.Adapter, <-chan broker.QuoteUpdate) {
		g, a, ctx := connected(t, fakes.DefaultScript())
		ch, err := a.SubscribeQuotes(ctx, aapl)
		if err != nil {
			t.Fatal(err)
		}
		return g, a, ch
	}
	t.Run("close", func(t *testing.T) {
		_, a, ch := setup(t)
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		waitClosed(t, ch, "after Close")
	})
	t.Run("drop", func(t *testing.T) {
		g, _, ch := setup(t)
		g.DropConnections()
		waitClosed(t, ch, "after the gateway dropped")
	})
	t.Run("1101", func(t *testing.T) {
		g, a, ch := setup(t)
		other, err := a.SubscribeQuotes(ctxFor(t), esz6)
		if err != nil {
			t.Fatal(err)
		}
		events, err := a.Subscribe(ctxFor(t))
		if err != nil {
			t.Fatal(err)
		}
		if g.Notify(broker.IBCodeRestoredDataMaintained, "") != 1 {
			t.Fatal("1102 reached no connection")
		}
		waitEvent(t, events, broker.IBCodeRestoredDataMaintained)
		if _, ok := <-other; !ok { // the static stream's first value, not a close
			t.Fatal("1102 closed the stream")
		}
		if g.Notify(broker.IBCodeRestoredDataLost, "") != 1 {
			t.Fatal("1101 reached no connection")
		}
		waitClosed(t, ch, "after 1101")
		waitClosed(t, other, "after 1101")
		if err := a.Ping(ctxFor(t)); err != nil {
			t.Errorf("the session after 1101: %v", err)
		}
		if err := g.WaitMarketDataLines(ctxFor(t), 0); err != nil {
			t.Errorf("the gateway after 1101: %v", err)
		}
		again, err := a.SubscribeQuotes(ctxFor(t), esz6) // what robust does on the same session
		if err != nil {
			t.Fatalf("subscribing again after 1101: %v", err)
		}
		if _, ok := <-again; !ok {
			t.Error("the new stream closed")
		}
		if n := g.MarketDataLines(); n != 1 {
			t.Errorf("%d lines after subscribing again, want 1", n)
		}
	})
}

// waitEvent reads events until one has code.
func waitEvent(t *testing.T, events <-chan broker.Event, code int64) {
	t.Helper()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case e := <-events:
			if e.Code == code {
				return
			}
		case <-deadline.C:
			t.Fatalf("no event with code %d", code)
		}
	}
}

// TestSubscribeQuotesSlowSubscriber: a subscriber that never reads a moving
// stream holds one value (the newest, counting what it missed) and slows
// nobody: other calls answer meanwhile; a slow first tick does not hold
// SubscribeQuotes.
func TestSubscribeQuotesSlowSubscriber(t *testing.T) {
	s := fakes.DefaultScript()
	for i := range s.Instruments {
		if s.Instruments[i].Contract.ConID == 265598 {
			s.Instruments[i].TicksPerSecond = 2000
		}
	}
	_, a, ctx := connected(t, s)
	ch, err := a.SubscribeQuotes(ctx, aapl)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := a.Snapshot(ctx, esz6); err != nil {
			t.Fatal(err)
		}
	}
	if len(ch) != 1 || cap(ch) != 1 {
		t.Fatalf("channel holds %d of %d", len(ch), cap(ch))
	}
	if u := <-ch; u.Dropped == 0 {
		t.Errorf("a value after 20 snapshots at 2000 ticks/s dropped nothing: %+v", u)
	}

	t.Run("slow first tick", func(t *testing.T) {
		s := fakes.DefaultScript()
		s.Faults.Market.FirstTickDelay = time.Hour
		_, a, ctx := connected(t, s)
		ch, err := a.SubscribeQuotes(ctx, esz6)
		if err != nil {
			t.Fatal(err)
		}
		if len(ch) != 0 {
			t.Errorf("a value before the first tick: %+v", <-ch)
		}
	})
}

// TestSubscribeQuotesPerTick: each tick of a moving quote is one value (taken
// or counted as dropped), in the gateway's order: with the step number as the
// bid size (fakes.Instrument.StepInBidSize), the steps a reader sees never go
// back, and values plus drops are at least two per step (each step is one tick
// of the walk or more, then its bid size); the gateway's tick hook reports
// every step the reader saw.
func TestSubscribeQuotesPerTick(t *testing.T) {
	s := fakes.DefaultScript()
	for i := range s.Instruments {
		if s.Instruments[i].Contract.ConID == 265598 {
			s.Instruments[i].TicksPerSecond = 500
			s.Instruments[i].StepInBidSize = true
		}
	}
	var mu sync.Mutex
	written := map[int64]time.Time{}
	g, err := fakes.NewGateway(s, fakes.WithTickHook(func(w fakes.TickWrite) {
		mu.Lock()
		written[w.Step] = w.At
		mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	a := newAdapter(t)
	ctx := ctxFor(t)
	if _, err := a.Connect(ctx, params(g)); err != nil {
		t.Fatal(err)
	}
	ch, err := a.SubscribeQuotes(ctx, aapl)
	if err != nil {
		t.Fatal(err)
	}
	var values, dropped, step int64
	for step < 200 {
		u, ok := <-ch
		if !ok {
			t.Fatal("stream closed")
		}
		values++
		dropped += u.Dropped
		n, err := strconv.ParseInt(u.Quote.BidSize.String(), 10, 64)
		if err != nil || n < step && n != 300 { // 300: the script's size, before the first step
			t.Fatalf("bid size %s after step %d", u.Quote.BidSize, step)
		}
		if n == 300 {
			continue
		}
		step = n
	}
	if values+dropped < 2*step { // a step is its walk's tick(s) and the step's bid size
		t.Errorf("%d values and %d dropped for %d steps: some ticks were not published", values, dropped, step)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := int64(1); i < step; i++ { // the hook of a step runs before the next step is written
		if written[i].IsZero() {
			t.Errorf("the tick hook never reported step %d", i)
		}
	}
}

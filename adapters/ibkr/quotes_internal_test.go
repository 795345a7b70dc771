package ibkr

import (
	"errors"
	"testing"

	"github.com/scmhub/ibapi"

	"github.com/brokerkit/brokerkit/broker"
)

// TestQuoteStreamCallbacks drives a stream's callbacks directly: the first
// answer starts it, each tick of the quote's fields is one value (the
// unread ones counted as dropped), ticks of other types and a market data
// type before any value are none, a later change of type is one, and an
// error for the request closes the channel.
func TestQuoteStreamCallbacks(t *testing.T) {
	s := newTestSession(t)
	q := &quoteSub{snap: snapReq{q: broker.Quote{Contract: broker.Contract{ConID: 1}}},
		ch: make(chan broker.QuoteUpdate, 1), started: make(chan struct{})}
	s.byID[7] = q
	s.TickReqParams(7, 0.01, "9c0001", 3)
	if !isClosed(q.started) || len(q.ch) != 0 {
		t.Fatalf("after TICK_REQ_PARAMS: started %v, %d values", isClosed(q.started), len(q.ch))
	}
	s.MarketDataType(7, 1)
	s.TickPrice(7, ibapi.BID, 189.49, ibapi.TickAttrib{})
	s.TickSize(7, ibapi.BID_SIZE, ibapi.StringToDecimal("300"))
	s.TickString(7, ibapi.LAST_TIMESTAMP, "1764601200")
	s.TickGeneric(7, ibapi.HALTED, 0)
	s.TickPrice(7, ibapi.TickType(37), 1, ibapi.TickAttrib{}) // mark price: not a field of the quote
	s.TickGeneric(7, ibapi.TickType(23), 1)                   // option historical volatility: neither
	s.TickSize(7, ibapi.ASK_SIZE, ibapi.StringToDecimal("200.5"))
	u := <-q.ch
	want := broker.Quote{Contract: broker.Contract{ConID: 1}, Bid: broker.MustDecimal("189.49"),
		BidSize: broker.MustDecimal("300"), AskSize: broker.MustDecimal("200.5"), DataType: broker.MarketDataLive,
		LastTime: u.Quote.LastTime, Time: u.Quote.Time}
	if u.Quote != want || u.Dropped != 4 || u.Gap != "" || u.Quote.LastTime.Unix() != 1764601200 || u.Quote.Time.IsZero() {
		t.Fatalf("value %+v, want %+v with 4 dropped (five ticks of the quote)", u, want)
	}
	s.MarketDataType(7, 2)
	if u := <-q.ch; u.Quote.DataType != broker.MarketDataFrozen || u.Dropped != 0 {
		t.Fatalf("after MARKET_DATA_TYPE 2: %+v", u)
	}
	s.MarketDataType(7, 2)
	if len(q.ch) != 0 {
		t.Fatal("an unchanged market data type was published")
	}
	s.Error(7, 0, broker.IBCodeDisplayingDelayed, "warning", "")
	s.Error(7, 0, broker.IBCodeMarketDataNotSubscribed, "not subscribed", "")
	if _, open := <-q.ch; open {
		t.Fatal("the channel is open after an error for its request")
	}
	if _, ok := s.byID[7]; ok {
		t.Fatal("the ended stream is still in byID")
	}
	s.TickPrice(7, ibapi.BID, 1, ibapi.TickAttrib{}) // a late tick of the ended stream: ignored, no panic
}

// TestQuoteStreamBadTick: a tick that cannot be converted ends the stream
// (its channel closed, its line cancelled from another goroutine); as the
// first answer it is SubscribeQuotes' error (broker.ErrProtocol).
func TestQuoteStreamBadTick(t *testing.T) {
	s := newTestSession(t)
	q := &quoteSub{ch: make(chan broker.QuoteUpdate, 1), started: make(chan struct{})}
	s.byID[8] = q
	s.TickString(8, ibapi.LAST_TIMESTAMP, "not a time")
	s.bg.Wait()
	if _, open := <-q.ch; open || !errors.Is(q.err, broker.ErrProtocol) {
		t.Fatalf("after a bad tick: channel open %v, err %v", open, q.err)
	}
}

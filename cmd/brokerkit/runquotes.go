package main

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/robust"
)

// The quotes `brokerkit run --symbols` reports next to the positions: one
// stream per symbol through robust (which keeps it across lost sessions and
// marks the gap), subscribed at the first tick that can and again at the next
// tick after a stream ended; each tick reports the newest values.

// jsonTickQuote is a symbol's quote in a tick: the newest bid, ask and last
// (decimal text, empty until the stream has delivered one), when it came, and
// why it is stale (gap: the stream was interrupted and has not delivered since)
// or missing (error: the subscription failed; the next tick tries again).
type jsonTickQuote struct {
	Bid   string     `json:"bid"`
	Ask   string     `json:"ask"`
	Last  string     `json:"last"`
	Time  *time.Time `json:"time,omitempty"`
	Gap   string     `json:"gap,omitempty"`
	Error string     `json:"error,omitempty"`
}

// quoteBoard holds the streams of run's symbols and their newest values.
type quoteBoard struct {
	symbols []string
	life    context.Context // the streams' lifetime: run's
	wg      sync.WaitGroup

	mu     sync.Mutex
	open   map[string]bool
	latest map[string]jsonTickQuote
}

func newQuoteBoard(life context.Context, symbols []string) *quoteBoard {
	sort.Strings(symbols)
	return &quoteBoard{symbols: symbols, life: life, open: map[string]bool{}, latest: map[string]jsonTickQuote{}}
}

// ensure subscribes every symbol without an open stream, each request bounded
// by --call-timeout; a refusal is that symbol's error until the next tick.
func (q *quoteBoard) ensure(ctx context.Context, rb *robust.Broker, c *connFlags) {
	for _, sym := range q.symbols {
		q.mu.Lock()
		open := q.open[sym]
		q.mu.Unlock()
		if open {
			continue
		}
		var ch <-chan broker.QuoteUpdate
		err := c.call(ctx, "quote "+sym, func(cctx context.Context) (err error) {
			ch, err = subscribeWithin(cctx, q.life, rb, broker.Contract{Symbol: sym, SecType: "STK", Exchange: "SMART", Currency: "USD"})
			return err
		})
		q.mu.Lock()
		if err != nil {
			v := q.latest[sym]
			v.Error = describe(err)
			q.latest[sym] = v
			q.mu.Unlock()
			continue
		}
		q.open[sym] = true
		q.mu.Unlock()
		q.wg.Add(1)
		go q.follow(sym, ch)
	}
}

// follow records the values of sym's stream until it ends.
func (q *quoteBoard) follow(sym string, ch <-chan broker.QuoteUpdate) {
	defer q.wg.Done()
	for u := range ch {
		q.mu.Lock()
		v := q.latest[sym]
		v.Error, v.Gap = "", u.Gap
		if u.Quote != (broker.Quote{Contract: u.Quote.Contract}) { // not a bare gap marker: fresh values
			v.Bid, v.Ask, v.Last, v.Gap = u.Quote.Bid.String(), u.Quote.Ask.String(), u.Quote.Last.String(), ""
			if !u.Quote.Time.IsZero() {
				ts := u.Quote.Time.UTC()
				v.Time = &ts
			}
		}
		q.latest[sym] = v
		q.mu.Unlock()
	}
	q.mu.Lock()
	q.open[sym] = false
	if q.life.Err() == nil {
		v := q.latest[sym]
		v.Error = "the quote stream ended; subscribing again at the next tick"
		q.latest[sym] = v
	}
	q.mu.Unlock()
}

// report returns each symbol's newest quote.
func (q *quoteBoard) report() map[string]jsonTickQuote {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make(map[string]jsonTickQuote, len(q.symbols))
	for _, sym := range q.symbols {
		out[sym] = q.latest[sym]
	}
	return out
}

// wait waits for the streams' goroutines, which end with life or robust's Close.
func (q *quoteBoard) wait() { q.wg.Wait() }

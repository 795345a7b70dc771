package fakes

import (
	"context"
	"fmt"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// Live control and observation of market data streams, for the tests of quote
// streams and their re-subscription (docs/adr/0017-quote-streams.md): IB 1101
// forgets a connection's streams (Notify), MarketDataLines counts them, and
// WithTickHook reports when each random-walk step was written.

// TickWrite is one random-walk step of a streaming subscription as the gateway
// wrote it.
type TickWrite struct {
	ClientID int64     // the client id of the connection
	ReqID    int64     // the subscription's request id
	ConID    int64     // the instrument's con id
	Step     int64     // 1, 2, ... per subscription (the bid size with Instrument.StepInBidSize)
	At       time.Time // just before the step's last message was written (with StepInBidSize, its bid size)
}

// WithTickHook has the gateway call f after writing each random-walk step of
// a streaming subscription (before it writes the next one). f runs on the connection's pump with its market
// data lock held: it must return quickly and must not call the Gateway. The
// hook only observes; what the gateway sends is unchanged.
func WithTickHook(f func(TickWrite)) Option { return func(o *options) { o.tickHook = f } }

// notify sends ERR_MSG id -1 with code; 1101 first forgets the connection's
// market data streams, under the lock the pump sends with, so that no tick of
// a forgotten stream follows the notice.
func (c *conn) notify(code int64, msg string) error {
	if code != broker.IBCodeRestoredDataLost {
		return c.sendError(-1, code, msg)
	}
	defer c.g.noteMarketChange()
	m := c.market()
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, s := range m.subs {
		if !s.snapshot {
			delete(m.subs, id)
		}
	}
	return c.sendError(-1, code, msg)
}

// noteMarketChange wakes the waiters of WaitMarketDataLines (a subscription
// was made, cancelled or forgotten). It must not be called with a market lock held.
func (g *Gateway) noteMarketChange() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.broadcastLocked()
}

// WaitMarketDataLines waits until the live connections hold exactly n
// streaming market data subscriptions (MarketDataLines): after a cancel, 0;
// after a re-subscription, the number subscribed again. It fails with ctx's
// error if ctx is done first, or with an error matching broker.ErrClosed if
// the gateway is closed first.
func (g *Gateway) WaitMarketDataLines(ctx context.Context, n int) error {
	for {
		g.mu.Lock()
		closed, ch := g.closed, g.changed
		g.mu.Unlock()
		got := g.MarketDataLines()
		if got == n {
			return nil
		}
		if closed {
			return fmt.Errorf("fakes: wait for %d market data lines (have %d): gateway %w", n, got, broker.ErrClosed)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("fakes: wait for %d market data lines (have %d): %w", n, got, ctx.Err())
		}
	}
}

// MarketDataLines returns how many streaming market data subscriptions the
// live connections hold: requested and neither cancelled nor forgotten (1101).
// A test reads it to see a cancel or a re-subscription take effect.
func (g *Gateway) MarketDataLines() int {
	n := 0
	for _, c := range g.live(false) {
		m := c.market()
		m.mu.Lock()
		for _, s := range m.subs {
			if !s.snapshot {
				n++
			}
		}
		m.mu.Unlock()
	}
	return n
}

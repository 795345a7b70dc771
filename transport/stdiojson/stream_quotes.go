package stdiojson

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/brokerkit/brokerkit/broker"
)

// Quote streams (broker.QuoteStreamer over the protocol; PROTOCOL.md "Quote
// streams"): subscribe_quotes opens a stream whose event lines carry one
// contract's quote, a gap reason when there is one, and how many changes were
// conflated away before it.
//
// The slow-consumer policy: the worker never blocks on a quote. Its forwarder
// takes the newest value of the Broker's channel (which conflates, counting
// what it drops), waits until the output queue holds at most quoteBacklog
// bytes, takes the newest again and writes it. A host that reads slowly or
// not at all thus holds the worker's memory at the Broker's one value per
// stream plus quoteBacklog, and answers to other requests wait behind at most
// quoteBacklog bytes of quotes. The host conflates again (broker.Conflate
// into a channel of capacity 1), adding the worker's count to its own.

// CommandSubscribeQuotes opens a stream of one contract's quotes.
const CommandSubscribeQuotes = "subscribe_quotes"

const eventQuote = "quote" // "quote": the top of book; "gap", "dropped"

// quoteBacklog bounds the output queued ahead of a quote line, in bytes.
const quoteBacklog = 32 << 10

// wireQuoteEvent is one event line of a quote stream.
type wireQuoteEvent struct {
	Event        string    `json:"event"`
	Subscription string    `json:"subscription"`
	Quote        wireQuote `json:"quote"`
	Gap          string    `json:"gap,omitempty"`
	Dropped      int64     `json:"dropped"`
}

// subscribeQuotes opens a quote stream of req's contract.
func (s *server) subscribeQuotes(req wireRequest) (any, error) {
	qs, ok := s.b.(broker.QuoteStreamer)
	if !ok {
		return nil, fmt.Errorf("%w: the worker's Broker does not stream quotes", broker.ErrUnsupported)
	}
	c, err := requestContract(&req)
	if err != nil {
		return nil, err
	}
	return s.openStream(req, func(ctx context.Context, sub string) (func(), error) {
		ch, err := qs.SubscribeQuotes(ctx, c)
		if err != nil {
			return nil, err
		}
		return func() { s.forwardQuotes(ctx, sub, ch) }, nil
	})
}

// forwardQuotes writes the newest value of ch whenever the output has room,
// until ch is closed.
func (s *server) forwardQuotes(ctx context.Context, sub string, ch <-chan broker.QuoteUpdate) {
	for u := range ch {
		if !s.out.awaitRoom(ctx, quoteBacklog) {
			for range ch { // the stream is ending or the output failed: wait for the Broker to close it
			}
			return
		}
		u, open := newestQuote(ch, u)
		s.sendStreamEvent(wireQuoteEvent{Event: eventQuote, Subscription: sub, Quote: toWireQuote(u.Quote), Gap: u.Gap,
			Dropped: u.Dropped})
		if !open {
			return
		}
	}
}

// newestQuote merges into u what waits in ch, as broker.Conflate would have,
// without blocking; open is false if ch turned out closed.
func newestQuote(ch <-chan broker.QuoteUpdate, u broker.QuoteUpdate) (_ broker.QuoteUpdate, open bool) {
	for {
		select {
		case v, ok := <-ch:
			if !ok {
				return u, false
			}
			v.Dropped += u.Dropped + 1
			if v.Gap == "" {
				v.Gap = u.Gap
			}
			u = v
		default:
			return u, true
		}
	}
}

// ---- host ----

var _ broker.QuoteStreamer = (*Client)(nil)

// SubscribeQuotes implements broker.QuoteStreamer over the worker's
// subscribe_quotes. Values are conflated twice, by the worker and here; Dropped
// counts both. The channel is closed when ctx is done (the worker is told to
// unsubscribe), when the worker ends the stream, when it dies, and on Close.
func (c *Client) SubscribeQuotes(ctx context.Context, ct broker.Contract) (<-chan broker.QuoteUpdate, error) {
	st := &clientStream{quotes: make(chan broker.QuoteUpdate, 1)}
	if err := c.openStream(ctx, CommandSubscribeQuotes, "q", st, &wireRequest{Contract: toWireContract(ct)}); err != nil {
		return nil, err
	}
	return st.quotes, nil
}

// quoteEvent delivers a quote line to its stream; a malformed one is logged
// and dropped.
func (c *Client) quoteEvent(in wireInbound) {
	u, err := decodeQuoteEvent(in)
	if err != nil {
		c.log.Warn("ignoring malformed quote", "subscription", in.Subscription, "error", err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.streams[in.Subscription]; st != nil && st.quotes != nil {
		broker.Conflate(st.quotes, u)
	}
}

// decodeQuoteEvent reads a quote line's update; errors wrap broker.ErrProtocol.
func decodeQuoteEvent(in wireInbound) (broker.QuoteUpdate, error) {
	var w wireQuote
	if err := json.Unmarshal(in.Quote, &w); err != nil {
		return broker.QuoteUpdate{}, fmt.Errorf("%w: quote: %v", broker.ErrProtocol, err)
	}
	if in.Dropped < 0 {
		return broker.QuoteUpdate{}, fmt.Errorf("%w: dropped %d", broker.ErrProtocol, in.Dropped)
	}
	q, err := fromWireQuote(w, in.Gap != "")
	if err != nil {
		return broker.QuoteUpdate{}, err
	}
	return broker.QuoteUpdate{Quote: q, Gap: in.Gap, Dropped: in.Dropped}, nil
}

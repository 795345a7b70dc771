package ibkr

import (
	"context"
	"fmt"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// Quote streams (broker.QuoteStreamer, docs/adr/0017-quote-streams.md). Each
// SubscribeQuotes is one streaming REQ_MKT_DATA under its own request id, kept
// in byID like a snapshot: the same request builder, pacing slot, error
// routing (200, 354, 10089, 101 fail it; warnings 10167 and 10090 do not) and tick accumulation
// (snapReq). Subscribers of the same contract are not merged: each holds its
// own market data line, so that each sees the market data type set when it
// subscribed, its errors and its cancellation are its own, and cancelling it
// is one CANCEL_MKT_DATA on the wire. Every tick of the quote's fields hands
// the subscriber the whole quote (broker.Conflate into a channel of capacity
// 1: a subscriber that does not read costs one value, and the callback never
// blocks). The channel is closed when the subscriber's ctx is done (and the
// line cancelled), when the gateway ends the request with an error, when a
// tick cannot be converted (the line is cancelled), when the gateway reports
// 1101 (its market data subscriptions are lost: a decorator subscribes again)
// and when the session ends (Close included).

var _ broker.QuoteStreamer = (*Adapter)(nil)

// quoteSub is one streaming REQ_MKT_DATA in byID. Guarded by s.mu.
type quoteSub struct {
	snap    snapReq // the quote so far: the ticks as a snapshot accumulates them
	ch      chan broker.QuoteUpdate
	started chan struct{} // closed at the gateway's first answer, or at finish
	err     error         // why it finished before it started
	sent    bool          // a value has been published
	stop    func() bool   // stops the ctx watch; nil until SubscribeQuotes returns
}

// startLocked records the gateway's first answer for the request.
func (q *quoteSub) startLocked() {
	if !isClosed(q.started) {
		close(q.started)
	}
}

// finish ends the stream: a SubscribeQuotes still waiting fails with err, a
// subscriber finds its channel closed.
func (q *quoteSub) finish(err error) {
	if !isClosed(q.started) {
		q.err = err
		if q.err == nil {
			q.err = fmt.Errorf("ibkr: quote stream ended before its first answer: %w", broker.ErrProtocol)
		}
		close(q.started)
	}
	if q.stop != nil {
		q.stop()
	}
	close(q.ch)
}

// SubscribeQuotes implements broker.QuoteStreamer with a streaming
// REQ_MKT_DATA under a fresh request id (see quotes.go). It returns once the
// gateway has answered (TICK_REQ_PARAMS, MARKET_DATA_TYPE or a first tick), so
// that IB's refusals are its errors: 200 broker.ErrNotFound, 354 and 10089
// broker.ErrNotSubscribed, 101 (too many market data lines) broker.ErrPacing.
// The wait for a message slot and for the answer counts against ctx; if ctx
// ends first the request is cancelled on the wire.
func (a *Adapter) SubscribeQuotes(ctx context.Context, c broker.Contract) (<-chan broker.QuoteUpdate, error) {
	if err := checkContract(c); err != nil {
		return nil, err
	}
	s, id, err := a.startPaced(ctx)
	if err != nil {
		return nil, err
	}
	q := &quoteSub{snap: snapReq{q: broker.Quote{Contract: c}}, ch: make(chan broker.QuoteUpdate, 1),
		started: make(chan struct{})}
	if err := s.startMktData(ctx, "quote stream", id, q, c, false, q.started); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if q.err != nil {
		return nil, fmt.Errorf("ibkr: quote stream: %w", q.err)
	}
	if s.byID[id] == q { // else it has ended already: the channel is closed
		q.stop = context.AfterFunc(ctx, func() { s.cancelQuote(id, q) })
	}
	return q.ch, nil
}

// cancelQuote ends the stream under id when its subscriber's ctx is done, and
// cancels it on the wire unless it has ended already.
func (s *session) cancelQuote(id int64, q *quoteSub) {
	s.mu.Lock()
	if s.byID[id] != q {
		s.mu.Unlock()
		return
	}
	delete(s.byID, id)
	q.finish(nil)
	s.mu.Unlock()
	_ = s.sendLocked(cancelMktData(id))
}

// publishQuoteLocked hands the stream's quote, as of now, to its subscriber. A
// tick that could not be converted ends the stream instead, and has the line
// cancelled from another goroutine (callbacks never send).
func (s *session) publishQuoteLocked(id int64, q *quoteSub) {
	if err := q.snap.err; err != nil {
		s.log.Warn("quote stream ended by a tick that cannot be converted", "req_id", id, "error", err)
		delete(s.byID, id)
		q.finish(err)
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			_ = s.sendLocked(cancelMktData(id))
		}()
		return
	}
	u := broker.QuoteUpdate{Quote: q.snap.q}
	u.Quote.Time = time.Now().UTC()
	broker.Conflate(q.ch, u)
	q.sent = true
}

// endQuotesLocked ends every quote stream of the session with err: the
// session is over, or the gateway has lost its market data subscriptions
// (1101) and will send nothing more for them.
func (s *session) endQuotesLocked(err error) {
	for id, r := range s.byID {
		if q, ok := r.(*quoteSub); ok {
			delete(s.byID, id)
			q.finish(err)
		}
	}
}

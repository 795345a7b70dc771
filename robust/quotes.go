package robust

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// Quote streams survive sessions, as the account updates stream does, and say
// so: when the session a subscription was made on is lost (the gateway
// dropped, the worker died) or the gateway reports IB 1101 (connectivity
// restored, market data lost), the Broker stops reading the inner stream,
// sends a gap marker on the caller's channel and subscribes again, on the new
// session or, after a 1101, on the same one. A subscription remembers the
// session it was made on (its generation and the count of 1101s seen), and
// the forwarder, the channel's only sender, never reads the old inner stream
// once it has sent the marker: no value of an old session can follow it.

// Gap reasons: the prefix of QuoteUpdate.Gap in the markers this Broker sends
// (a session loss is followed by ": " and its cause).
const (
	GapSessionLost = "robust: session lost"
	GapDataLost    = "robust: IB 1101: connectivity restored, market data lost"
	GapStreamEnded = "robust: the inner quote stream ended"
)

var _ broker.QuoteStreamer = (*Broker)(nil)

// streamKey is what a subscription was made on: the session's generation and
// the number of IB 1101s the Broker had seen by then.
type streamKey struct{ gen, dataLost uint64 }

// SubscribeQuotes implements broker.QuoteStreamer over the inner Broker's
// stream. The channel stays open across lost sessions and IB 1101: a gap
// marker (QuoteUpdate.Gap says why, Quote is zero but for Contract; it may be
// merged into the first fresh value by conflation) comes first, then the new
// subscription's values, and nothing from the old one. IB 1102 (data
// maintained) changes nothing. A first request that finds the session lost
// is made again on the restored one (up to WithMaxAttempts times in all,
// within ctx). The channel is closed when ctx is done, on
// Disconnect, on Close, or when a new subscription is refused for good
// (ErrNotFound, ErrNotSubscribed, ErrInvalidArgument, ErrUnsupported); other
// refusals are retried with backoff. A restored session starts with live
// market data, as every new session does (SetMarketDataType is not
// replayed): a stream subscribed under delayed data is subscribed again under
// live data, and one of an instrument with delayed data only then ends with
// ErrNotSubscribed. An inner Broker without the capability fails with
// broker.ErrUnsupported.
func (b *Broker) SubscribeQuotes(ctx context.Context, c broker.Contract) (<-chan broker.QuoteUpdate, error) {
	in, gen, err := b.acquire(ctx)
	if err != nil {
		var p permanentError
		if errors.As(err, &p) {
			err = p.err
		}
		return nil, err
	}
	k, ok := b.keyOf(in, gen)
	for attempt := 1; ; attempt++ {
		if !ok { // the session was lost meanwhile: its replacement serves the caller
			if in, k, ok = b.sessionFor(ctx, k, false); !ok {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				return nil, broker.ErrNotConnected
			}
		}
		ch, cancel, err := subscribeQuotesInner(ctx, b.root, in, c)
		if err == nil {
			return b.startForwarding(ctx, c, ch, cancel, k)
		}
		// A session found lost by this request is restored and asked again,
		// as a call would be retried; any other refusal is the caller's.
		if !b.observe(in, k.gen, err, false) || ctx.Err() != nil || attempt >= b.cfg.maxAttempts {
			return nil, err
		}
		ok = false
	}
}

// startForwarding starts the forwarder of a new subscription.
func (b *Broker) startForwarding(ctx context.Context, c broker.Contract, ch <-chan broker.QuoteUpdate,
	cancel context.CancelFunc, k streamKey) (<-chan broker.QuoteUpdate, error) {
	return startStream(b, 1, cancel, func(out chan broker.QuoteUpdate) {
		b.forwardQuotes(ctx, c, out, ch, cancel, k)
	})
}

// keyOf returns the key of session gen, served by in, and whether it is
// still the current session.
func (b *Broker) keyOf(in broker.Broker, gen uint64) (streamKey, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return streamKey{gen, b.dataLost}, b.sessionOK && b.inner == in && b.gen == gen
}

// subscribeQuotesInner subscribes in under a context that ends with ctx or root.
func subscribeQuotesInner(ctx, root context.Context, in broker.Broker, c broker.Contract) (<-chan broker.QuoteUpdate, context.CancelFunc, error) {
	qs, ok := in.(broker.QuoteStreamer)
	if !ok {
		return nil, nil, fmt.Errorf("robust: %w: the inner Broker does not stream quotes", broker.ErrUnsupported)
	}
	return innerStream(ctx, root, func(sctx context.Context) (<-chan broker.QuoteUpdate, error) {
		return qs.SubscribeQuotes(sctx, c)
	})
}

// forwardQuotes copies the inner stream to out, conflated, until the
// subscription's session no longer serves it; then it sends a gap marker and
// subscribes again, until ctx ends, no session will come or a subscription is
// refused for good.
func (b *Broker) forwardQuotes(ctx context.Context, c broker.Contract, out chan broker.QuoteUpdate,
	ch <-chan broker.QuoteUpdate, cancel context.CancelFunc, k streamKey) {
	defer b.wg.Done()
	defer close(out)
	ended := 0 // inner streams in a row that the inner Broker ended without a value
	for {
		reason, same, got := b.pumpQuotes(ctx, out, ch, k)
		cancel()
		if reason == "" {
			return
		}
		// From here on the old inner stream is never read again.
		broker.Conflate(out, broker.QuoteUpdate{Quote: broker.Quote{Contract: c}, Gap: reason})
		b.log.Debug("quote stream interrupted; subscribing again", "symbol", c.Symbol, "con_id", c.ConID, "gap", reason)
		switch {
		case got:
			ended = 0
		case reason == GapStreamEnded:
			ended++
		}
		refused := 0 // subscriptions in a row refused
		for {
			// The same session is asked again at once, unless it refused the
			// last request or ended the last stream before any value: then
			// after a backoff that grows while that goes on.
			if n := max(refused, ended); same && n > 0 {
				if sleep(ctx, b.cfg.clock, b.cfg.backoff.Delay(n, b.cfg.rand()), b.closing) != nil {
					return
				}
			}
			in, nk, ok := b.sessionFor(ctx, k, same)
			if !ok {
				return
			}
			k = nk
			var err error
			ch, cancel, err = subscribeQuotesInner(ctx, b.root, in, c)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			if refusedForGood(err) {
				b.log.Warn("quote stream ends: the session refused it", "symbol", c.Symbol, "con_id", c.ConID, "error", err)
				return
			}
			refused++
			// A lost session waits for the next one; any other refusal
			// (pacing, a timeout) is asked again of the same session.
			same = !b.observe(in, k.gen, err, false)
		}
	}
}

// refusedForGood reports whether a subscription refused with err would be
// refused again by any session.
func refusedForGood(err error) bool {
	return errors.Is(err, broker.ErrNotFound) || errors.Is(err, broker.ErrNotSubscribed) ||
		errors.Is(err, broker.ErrInvalidArgument) || errors.Is(err, broker.ErrUnsupported)
}

// pumpQuotes copies ch to out while the session of k serves it. It returns
// the gap's reason ("" when ctx is done or no session will come), whether the
// next subscription may be made on k's own session (after a 1101 or the end
// of the inner stream), and whether any value was copied.
func (b *Broker) pumpQuotes(ctx context.Context, out chan broker.QuoteUpdate, ch <-chan broker.QuoteUpdate,
	k streamKey) (reason string, same, got bool) {
	reason, same, done, changed := b.staleness(k)
	for reason == "" && !done {
		select {
		case <-ctx.Done():
			return "", false, got
		case <-changed:
			reason, same, done, changed = b.staleness(k)
		case u, open := <-ch:
			if open {
				broker.Conflate(out, u)
				got = true
				continue
			}
			if ctx.Err() != nil {
				return "", false, got
			}
			// The inner Broker ended the stream. If it did so because the
			// session ended or the gateway lost market data (IB 1101), the
			// news is on its way: wait a moment for it, so that a single
			// re-subscription, with the right reason, answers both.
			b.settle(ctx, changed)
			if reason, same, done, _ = b.staleness(k); reason == "" && !done {
				reason, same = GapStreamEnded, true
			}
		}
	}
	if done {
		return "", false, got
	}
	return reason, same, got
}

// streamEndGrace is how long a quote stream that the inner Broker ended
// waits for news of the session before it is asked again (see pumpQuotes).
const streamEndGrace = 100 * time.Millisecond

// settle waits until changed is closed, for streamEndGrace at most.
func (b *Broker) settle(ctx context.Context, changed <-chan struct{}) {
	t := b.cfg.clock.NewTimer(streamEndGrace)
	defer t.Stop()
	select {
	case <-changed:
	case <-t.C():
	case <-ctx.Done():
	case <-b.closing:
	}
}

// staleness says why subscriptions made at k no longer receive fresh data (""
// while they do), whether k's session still serves new ones, and whether no
// session will ever come (Disconnect, Close); changed is closed on the next
// change.
func (b *Broker) staleness(k streamKey) (reason string, same, done bool, changed <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed || !b.wanted:
		return "", false, true, nil
	case !b.sessionOK || b.gen != k.gen:
		cause := "session replaced"
		if b.cause != nil {
			cause = b.cause.Error()
		}
		return GapSessionLost + ": " + cause, false, false, b.changed
	case b.dataLost != k.dataLost:
		return GapDataLost, true, false, b.changed
	}
	return "", false, false, b.changed
}

// sessionFor waits for a session to subscribe on: one newer than k's or, if
// same, k's own if it still serves. ok is false once ctx is done or no session
// will come (Disconnect, Close).
func (b *Broker) sessionFor(ctx context.Context, k streamKey, same bool) (broker.Broker, streamKey, bool) {
	for {
		b.mu.Lock()
		switch {
		case b.closed || !b.wanted:
			b.mu.Unlock()
			return nil, streamKey{}, false
		case b.sessionOK && b.inner != nil && (same || b.gen != k.gen):
			in, nk := b.inner, streamKey{b.gen, b.dataLost}
			b.mu.Unlock()
			return in, nk, true
		}
		changed := b.changed
		b.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, streamKey{}, false
		}
	}
}

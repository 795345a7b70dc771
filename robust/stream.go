package robust

import (
	"context"
	"errors"
	"fmt"

	"github.com/brokerkit/brokerkit/broker"
)

// The account updates stream survives reconnections: when the inner Broker's
// channel closes because its session ended, the Broker subscribes again on
// the next session and keeps the caller's channel open, as it keeps event
// subscriptions.

var _ broker.AccountStreamer = (*Broker)(nil)

// SubscribeAccountUpdates implements broker.AccountStreamer over the inner
// Broker's stream. The channel stays open across restored sessions (the first
// state of each new session follows); it is closed when ctx is done, on
// Disconnect, on Close, or if a new session refuses the subscription (the
// account is no longer managed, say). An inner Broker without the capability
// fails with broker.ErrUnsupported.
func (b *Broker) SubscribeAccountUpdates(ctx context.Context, account string) (<-chan broker.AccountUpdate, error) {
	in, gen, err := b.acquire(ctx)
	if err != nil {
		return nil, err
	}
	ch, cancel, err := subscribeInner(ctx, b.root, in, account)
	if err != nil {
		return nil, err
	}
	return startStream(b, 1, cancel, func(out chan broker.AccountUpdate) {
		b.forwardAccount(ctx, account, out, ch, cancel, gen)
	})
}

// startStream starts forward, the goroutine that feeds a new subscriber's
// channel of capacity n, unless b is closed (then cancel ends the inner
// stream and the subscription fails with broker.ErrClosed). Close waits for
// forward to return.
func startStream[T any](b *Broker, n int, cancel context.CancelFunc, forward func(out chan T)) (<-chan T, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		cancel()
		return nil, broker.ErrClosed
	}
	b.wg.Add(1)
	b.mu.Unlock()
	out := make(chan T, n)
	go forward(out)
	return out, nil
}

// subscribeInner subscribes in under a context that ends with ctx or root.
func subscribeInner(ctx, root context.Context, in broker.Broker, account string) (<-chan broker.AccountUpdate, context.CancelFunc, error) {
	as, ok := in.(broker.AccountStreamer)
	if !ok {
		return nil, nil, fmt.Errorf("robust: %w: the inner Broker does not stream account updates", broker.ErrUnsupported)
	}
	return innerStream(ctx, root, func(sctx context.Context) (<-chan broker.AccountUpdate, error) {
		return as.SubscribeAccountUpdates(sctx, account)
	})
}

// innerStream opens an inner stream with open under a context that ends with
// ctx or root (Close), and returns what ends it.
func innerStream[T any](ctx, root context.Context, open func(context.Context) (<-chan T, error)) (<-chan T, context.CancelFunc, error) {
	sctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(root, cancel)
	ch, err := open(sctx)
	if err != nil {
		stop()
		cancel()
		return nil, nil, err
	}
	return ch, func() { stop(); cancel() }, nil
}

// forwardAccount copies the inner stream to out, newest first, subscribing
// again after each new session, until ctx ends or no session will come.
func (b *Broker) forwardAccount(ctx context.Context, account string, out chan broker.AccountUpdate,
	ch <-chan broker.AccountUpdate, cancel context.CancelFunc, gen uint64) {
	defer b.wg.Done()
	defer close(out)
	for {
		for u := range ch {
			broker.Latest(out, u)
		}
		cancel()
		for {
			in, g, ok := b.nextSession(ctx, gen)
			if !ok {
				return
			}
			gen = g
			var err error
			ch, cancel, err = subscribeInner(ctx, b.root, in, account)
			if err == nil {
				break
			}
			if !errors.Is(err, broker.ErrNotConnected) && !errors.Is(err, broker.ErrUnavailable) {
				b.log.Warn("account updates stream ends: the new session refused it", "account", account, "error", err)
				return
			}
			// that session is already gone: wait for the next
		}
	}
}

// nextSession waits for a session newer than gen and returns its inner
// Broker; ok is false once ctx is done, the Broker is closed or the session is
// no longer wanted (Disconnect).
func (b *Broker) nextSession(ctx context.Context, gen uint64) (broker.Broker, uint64, bool) {
	for {
		b.mu.Lock()
		switch {
		case b.closed || !b.wanted:
			b.mu.Unlock()
			return nil, 0, false
		case b.sessionOK && b.inner != nil && b.gen != gen:
			in, g := b.inner, b.gen
			b.mu.Unlock()
			return in, g, true
		}
		changed := b.changed
		b.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, 0, false
		}
	}
}

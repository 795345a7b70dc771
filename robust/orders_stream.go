package robust

import (
	"context"
	"errors"
	"fmt"

	"github.com/brokerkit/brokerkit/broker"
)

// The order event stream survives reconnections like the account updates
// stream (stream.go): the caller's channel stays open, the Broker subscribes
// again on each new session and says so with an OrderEventGap.

var _ broker.OrderStreamer = (*Broker)(nil)

// GapSessionRestored is the Gap of the OrderEventGap sent when the order
// stream continues on a restored session.
const GapSessionRestored = "robust: session restored; order events of the lost session may be missing: re-read OpenOrders, CompletedOrders and Executions"

// SubscribeOrders implements broker.OrderStreamer over the inner Broker's
// stream. The channel (of capacity broker.OrderEventBuffer) stays open across
// restored sessions: each new session's events follow an OrderEventGap whose
// Gap is GapSessionRestored. It is closed when ctx is done, on Disconnect, on
// Close, or if a new session refuses the subscription. Events are queued, not
// dropped: a subscriber that does not read holds up this stream, and the inner
// Broker's queue overflows into its own OrderEventGap. An inner Broker without
// the capability fails with broker.ErrUnsupported.
func (b *Broker) SubscribeOrders(ctx context.Context) (<-chan broker.OrderEvent, error) {
	in, gen, err := b.acquire(ctx)
	if err != nil {
		return nil, err
	}
	ch, cancel, err := subscribeOrdersInner(ctx, b.root, in)
	if err != nil {
		return nil, err
	}
	return startStream(b, broker.OrderEventBuffer, cancel, func(out chan broker.OrderEvent) {
		b.forwardOrders(ctx, out, ch, cancel, gen)
	})
}

// subscribeOrdersInner subscribes in under a context that ends with ctx or root.
func subscribeOrdersInner(ctx, root context.Context, in broker.Broker) (<-chan broker.OrderEvent, context.CancelFunc, error) {
	os, ok := in.(broker.OrderStreamer)
	if !ok {
		return nil, nil, fmt.Errorf("robust: %w: the inner Broker does not stream order events", broker.ErrUnsupported)
	}
	return innerStream(ctx, root, os.SubscribeOrders)
}

// forwardOrders copies the inner stream to out, subscribing again after each
// new session, until ctx ends or no session will come.
func (b *Broker) forwardOrders(ctx context.Context, out chan broker.OrderEvent, ch <-chan broker.OrderEvent,
	cancel context.CancelFunc, gen uint64) {
	defer b.wg.Done()
	defer close(out)
	send := func(e broker.OrderEvent) bool {
		select {
		case out <- e:
			return true
		case <-ctx.Done():
		case <-b.closing:
		}
		return false
	}
	for {
		for e := range ch {
			if !send(e) {
				cancel()
				return
			}
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		for {
			in, g, ok := b.nextSession(ctx, gen)
			if !ok {
				return
			}
			gen = g
			var err error
			ch, cancel, err = subscribeOrdersInner(ctx, b.root, in)
			if err == nil {
				break
			}
			if !errors.Is(err, broker.ErrNotConnected) && !errors.Is(err, broker.ErrUnavailable) {
				b.log.Warn("order stream ends: the new session refused it", "error", err)
				return
			}
		}
		if !send(broker.OrderEvent{Kind: broker.OrderEventGap, Gap: GapSessionRestored}) {
			cancel()
			return
		}
	}
}

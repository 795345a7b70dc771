// Mutants that break Subscribe: lost or filtered events, ignored contexts, channels that outlive Close.

package mutants

import (
	"context"
	"errors"

	"github.com/brokerkit/brokerkit/broker"
)

// forward copies in to a new channel until in closes, then closes it.
func forward(in <-chan broker.Event, keep func(broker.Event) bool) <-chan broker.Event {
	out := make(chan broker.Event, 64)
	go func() {
		defer close(out)
		for e := range in {
			if keep(e) {
				select {
				case out <- e:
				default:
				}
			}
		}
	}()
	return out
}

// filterEvents hides events of one kind.
type filterEvents struct {
	broker.Broker
	hide broker.EventKind
}

func (b filterEvents) Subscribe(ctx context.Context) (<-chan broker.Event, error) {
	in, err := b.Broker.Subscribe(ctx)
	if err != nil {
		return nil, err
	}
	return forward(in, func(e broker.Event) bool { return e.Kind != b.hide }), nil
}

// subscribeIgnoresCtx subscribes for the Broker's lifetime, not ctx's.
type subscribeIgnoresCtx struct{ broker.Broker }

func (b subscribeIgnoresCtx) Subscribe(ctx context.Context) (<-chan broker.Event, error) {
	return b.Broker.Subscribe(context.WithoutCancel(ctx))
}

// subscriptionOutlivesClose keeps the channel open after Close until ctx is done.
type subscriptionOutlivesClose struct{ broker.Broker }

func (b subscriptionOutlivesClose) Subscribe(ctx context.Context) (<-chan broker.Event, error) {
	in, err := b.Broker.Subscribe(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan broker.Event, 64)
	go func() {
		defer close(out)
		for e := range in {
			select {
			case out <- e:
			default:
			}
		}
		<-ctx.Done()
	}()
	return out, nil
}

// blockingDelivery delivers every event with a blocking send under a lock
// that calls also take: one subscriber that does not read stalls the Broker.
type blockingDelivery struct {
	broker.Broker
	sem chan struct{}
}

func (b *blockingDelivery) Subscribe(ctx context.Context) (<-chan broker.Event, error) {
	in, err := b.Broker.Subscribe(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan broker.Event)
	go func() {
		defer close(out)
		for e := range in {
			b.sem <- struct{}{}
			select {
			case out <- e:
			case <-ctx.Done():
			}
			<-b.sem
		}
	}()
	return out, nil
}

func (b *blockingDelivery) Ping(ctx context.Context) error {
	select {
	case b.sem <- struct{}{}:
		<-b.sem
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.Broker.Ping(ctx)
}

// subscribeAfterClose returns a closed channel instead of ErrClosed.
type subscribeAfterClose struct{ broker.Broker }

func (b subscribeAfterClose) Subscribe(ctx context.Context) (<-chan broker.Event, error) {
	ch, err := b.Broker.Subscribe(ctx)
	if errors.Is(err, broker.ErrClosed) {
		c := make(chan broker.Event)
		close(c)
		return c, nil
	}
	return ch, err
}

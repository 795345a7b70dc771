// Mutants that break quote streams (broker.QuoteStreamer): values, the end
// of a stream with its ctx or with Close, cancellation on the wire, errors,
// conflation.

package mutants

import (
	"context"
	"errors"
	"fmt"

	"github.com/brokerkit/brokerkit/broker"
)

// quoteEdit rewrites the inner Broker's quote streams.
type quoteEdit struct {
	broker.Broker
	done <-chan struct{} // the case's end: release what the mutant holds
	mode int
	sem  chan struct{} // quoteBlocking: held while a value waits for its reader
}

const (
	quoteCents                   = iota // prices rounded to cents
	quoteIgnoresCtx                     // the channel stays open after ctx is done
	quoteNoWireCancel                   // the channel closes with ctx, the subscription stays on the gateway
	quoteOutlivesClose                  // the channel stays open after Close
	quoteBlocking                       // each value waits for its reader, under a lock Snapshot takes
	quoteUncounted                      // values replaced without counting them
	quoteMaxTickersNotSubscribed        // IB 101 reported as ErrNotSubscribed
)

func newQuoteEdit(b broker.Broker, env Env, mode int) broker.Broker {
	return &quoteEdit{Broker: b, done: env.Done, mode: mode, sem: make(chan struct{}, 1)}
}

func (b *quoteEdit) SubscribeQuotes(ctx context.Context, c broker.Contract) (<-chan broker.QuoteUpdate, error) {
	qs := b.Broker.(broker.QuoteStreamer)
	switch b.mode {
	case quoteMaxTickersNotSubscribed:
		ch, err := qs.SubscribeQuotes(ctx, c)
		if errors.Is(err, broker.ErrPacing) {
			return nil, fmt.Errorf("mutant: max tickers: %w", broker.ErrNotSubscribed)
		}
		return ch, err
	case quoteCents, quoteUncounted:
		in, err := qs.SubscribeQuotes(ctx, c)
		if err != nil {
			return nil, err
		}
		out := make(chan broker.QuoteUpdate, 1)
		go func() {
			defer close(out)
			for u := range in {
				if b.mode == quoteCents {
					u.Quote = roundCents(u.Quote)
					broker.Conflate(out, u)
				} else {
					u.Dropped = 0
					broker.Latest(out, u)
				}
			}
		}()
		return out, nil
	}
	// The rest subscribe for the case's lifetime and end the stream their own way.
	inCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	in, err := qs.SubscribeQuotes(inCtx, c)
	if err != nil {
		cancel()
		return nil, err
	}
	var out chan broker.QuoteUpdate
	if b.mode == quoteBlocking {
		out = make(chan broker.QuoteUpdate)
	} else {
		out = make(chan broker.QuoteUpdate, 1)
	}
	go func() {
		defer cancel()
		closeOnCtx := b.mode == quoteNoWireCancel || b.mode == quoteBlocking
		for {
			select {
			case u, open := <-in:
				if !open {
					switch b.mode {
					case quoteOutlivesClose:
						<-b.done // the Broker has ended the stream: keep the channel open
						return
					case quoteIgnoresCtx:
						in = nil
						continue
					}
					close(out)
					return
				}
				if b.mode != quoteBlocking {
					broker.Conflate(out, u)
					continue
				}
				b.sem <- struct{}{}
				select {
				case out <- u:
				case <-ctx.Done():
				case <-b.done:
				}
				<-b.sem
			case <-ctx.Done():
				if closeOnCtx {
					close(out)
					<-b.done // the subscription stays until the case ends
					return
				}
				if b.mode == quoteOutlivesClose {
					close(out)
					return
				}
				ctx = context.Background() // quoteIgnoresCtx: forget it
			case <-b.done:
				return
			}
		}
	}()
	return out, nil
}

// Snapshot waits for the lock a blocked quote delivery holds (quoteBlocking).
func (b *quoteEdit) Snapshot(ctx context.Context, c broker.Contract) (broker.Quote, error) {
	if b.mode == quoteBlocking {
		select {
		case b.sem <- struct{}{}:
			<-b.sem
		case <-ctx.Done():
			return broker.Quote{}, ctx.Err()
		}
	}
	return b.Broker.Snapshot(ctx, c)
}

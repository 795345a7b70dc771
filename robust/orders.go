package robust

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/brokerkit/brokerkit/broker"
)

// Orders: PlaceOrder exactly once by its key, ModifyOrder and CancelOrder
// never repeated blindly (docs/adr/0016 and the package doc, "Orders").
// A send's outcome is one of three (sendOutcome); an unknown one is resolved
// by reading the gateway's state on the restored session (orders_lookup.go)
// before anything is sent again.

var _ broker.OrderTrader = (*Broker)(nil)

// sendOutcome is what an inner Broker's order call says about the gateway.
type sendOutcome int

const (
	sentDone    sendOutcome = iota // it succeeded: the gateway acknowledged it
	sentRefused                    // a definite refusal: nothing was done, repeating it would be refused again
	sentUnknown                    // it may or may not have reached the gateway
)

// classifySend says what err, returned by an inner Broker's PlaceOrder,
// ModifyOrder or CancelOrder, means for the order. Unknown are:
// broker.ErrOutcomeUnknown; ErrNotConnected, ErrUnavailable and ErrClosed
// (the session or the worker ended during the call: a transport cannot tell
// whether the worker had written the order before it died, and an inner
// Broker may report a socket that dropped mid-call as not connected);
// ErrTimeout and the context's errors (the call was abandoned, not answered);
// and every error that is none of the refusals below (ErrProtocol, an
// unmapped I/O error). Refusals are ErrRejected, ErrReadOnly,
// ErrInvalidArgument, ErrUnsupported, ErrNotFound, and any other error that
// carries an IB code: the gateway answered about this very order.
func classifySend(err error) sendOutcome {
	switch {
	case err == nil:
		return sentDone
	case errors.Is(err, broker.ErrOutcomeUnknown),
		errors.Is(err, broker.ErrNotConnected),
		errors.Is(err, broker.ErrUnavailable),
		errors.Is(err, broker.ErrClosed),
		errors.Is(err, broker.ErrTimeout),
		errors.Is(err, context.Canceled),
		errors.Is(err, context.DeadlineExceeded):
		return sentUnknown
	case errors.Is(err, broker.ErrRejected),
		errors.Is(err, broker.ErrReadOnly),
		errors.Is(err, broker.ErrInvalidArgument),
		errors.Is(err, broker.ErrUnsupported),
		errors.Is(err, broker.ErrNotFound),
		broker.IBCode(err) != 0:
		return sentRefused
	}
	return sentUnknown
}

// unknownOutcome builds the error of an order call that gives up while the
// order may exist: it matches broker.ErrOutcomeUnknown and cause.
func unknownOutcome(what string, cause error) error {
	if errors.Is(cause, broker.ErrOutcomeUnknown) {
		return fmt.Errorf("robust: %s: %w", what, cause)
	}
	return fmt.Errorf("robust: %s: %w: %w", what, broker.ErrOutcomeUnknown, cause)
}

// sendOrder makes one attempt of an order call on the current session, under
// the breaker and the attempt timeout, and never repeats it. sent reports
// whether an inner Broker was called (robust knows nothing reached the
// gateway otherwise); clientID is the session's client id; err is the inner
// Broker's own error when it was called.
func sendOrder[T any](b *Broker, ctx context.Context, op broker.Op, f func(context.Context, broker.OrderTrader) (T, error)) (v T, sent bool, clientID int64, err error) {
	var inner error
	v, err = do(b, ctx, op, b.cfg.attemptTimeout, func(actx context.Context) (T, error) {
		var zero T
		in, gen, cid, err := b.acquireClient(actx)
		if err != nil {
			return zero, err
		}
		ot, ok := in.(broker.OrderTrader)
		if !ok {
			return zero, permanent(fmt.Errorf("robust: %w: the inner Broker does not trade", broker.ErrUnsupported))
		}
		sent, clientID = true, cid
		v, inner = f(actx, ot)
		if inner != nil {
			if classifySend(inner) == sentUnknown {
				b.observe(in, gen, inner, timedOut(actx))
			}
			if timedOut(actx) && ctx.Err() == nil && !errors.Is(inner, broker.ErrTimeout) {
				inner = fmt.Errorf("%w: %s attempt timed out after %v (%w)", broker.ErrTimeout, op, b.cfg.attemptTimeout, inner)
			}
			return zero, inner // op is not idempotent: do never repeats it
		}
		return v, nil
	})
	if sent && err != nil && inner != nil {
		err = inner
	}
	return v, sent, clientID, err
}

// acquireClient is acquire that also returns the session's client id.
func (b *Broker) acquireClient(ctx context.Context) (broker.Broker, uint64, int64, error) {
	in, gen, err := b.acquire(ctx)
	if err != nil {
		return nil, 0, 0, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gen != gen {
		return nil, 0, 0, fmt.Errorf("%w: the session changed", broker.ErrNotConnected)
	}
	return in, gen, b.clientID, nil
}

// ModifyOrder sends new terms for the open order id once. It is never
// repeated blindly: when the outcome is unknown, the session is restored and
// the order read back. Open with r's terms, the modification took effect and
// the order is returned; open with other terms, it did not, and the terms are
// sent once more (at most WithMaxAttempts sends in all); terminal or absent,
// it fails with broker.ErrNotFound. It fails with the inner Broker's refusal
// as is (IB 103, an id whose order is no longer open, as broker.ErrNotFound),
// and with an error matching broker.ErrOutcomeUnknown when it gives up while
// the modification may have taken effect.
func (b *Broker) ModifyOrder(ctx context.Context, orderID int64, r broker.OrderRequest) (broker.PlacedOrder, error) {
	if err := r.Validate(); err != nil {
		return broker.PlacedOrder{}, err
	}
	if err := b.orderPrecheck(); err != nil {
		return broker.PlacedOrder{}, err
	}
	what := fmt.Sprintf("modify order %d", orderID)
	var last error
	for sends := 1; ; sends++ {
		po, sent, _, err := sendOrder(b, ctx, broker.OpModifyOrder,
			func(ctx context.Context, ot broker.OrderTrader) (broker.PlacedOrder, error) {
				return ot.ModifyOrder(ctx, orderID, r)
			})
		switch {
		case err == nil:
			b.keys.modified(orderID, r)
			return po, nil
		case !sent && last == nil:
			return broker.PlacedOrder{}, err
		case !sent || classifySend(err) == sentUnknown:
			if last == nil || sent {
				last = err
			}
		case broker.IBCode(err) == broker.IBCodeDuplicateOrderID:
			// IB's answer to new terms for an id whose order is no longer open
			// (an inner Broker of a new session cannot know it is final).
			return broker.PlacedOrder{}, fmt.Errorf("robust: %s: %w: the order is no longer open (%w)", what, broker.ErrNotFound, err)
		default: // refused
			return broker.PlacedOrder{}, err
		}
		if ctx.Err() != nil {
			return broker.PlacedOrder{}, unknownOutcome(what, last)
		}
		b.log.Warn("order modification with an unknown outcome: reading the order back", "order_id", orderID, "error", last)
		o, state, lerr := b.findID(ctx, orderID)
		switch {
		case lerr != nil:
			return broker.PlacedOrder{}, unknownOutcome(what+": read it back", lerr)
		case state == orderAbsent:
			return broker.PlacedOrder{}, fmt.Errorf("robust: %s: %w: no order %d after an unknown outcome (%v)", what, broker.ErrNotFound, orderID, last)
		case state == orderTerminal:
			return broker.PlacedOrder{}, fmt.Errorf("robust: %s: %w: the order is %s", what, broker.ErrNotFound, o.Status)
		case hasTerms(o, r):
			b.keys.modified(orderID, r)
			po := placedFrom(o)
			po.Key = r.Key
			return po, nil
		case sends >= b.cfg.maxAttempts:
			return broker.PlacedOrder{}, unknownOutcome(fmt.Sprintf("giving up after %d send(s) to %s", sends, what), last)
		}
	}
}

// hasTerms reports whether the open order o has the terms r asks for.
func hasTerms(o broker.Order, r broker.OrderRequest) bool {
	return o.TotalQuantity.Cmp(r.Quantity) == 0 && o.LimitPrice.Cmp(r.LimitPrice) == 0 &&
		o.AuxPrice.Cmp(r.AuxPrice) == 0 && o.OrderType == r.OrderType &&
		(r.TIF == "" || o.TIF == "" || strings.EqualFold(o.TIF, r.TIF))
}

// CancelOrder asks for the cancellation of the order id once. It is never
// repeated blindly: when the outcome is unknown, the session is restored and
// the order read back. Terminal (cancelled, filled, inactive), the cancel is
// done and it returns nil; still open, the cancel is sent once more (at most
// WithMaxAttempts sends in all); absent, it fails with broker.ErrNotFound. It
// fails with the inner Broker's refusal as is, and with an error matching
// broker.ErrOutcomeUnknown when it gives up while the order may still work.
func (b *Broker) CancelOrder(ctx context.Context, orderID int64) error {
	if err := b.orderPrecheck(); err != nil {
		return err
	}
	what := fmt.Sprintf("cancel order %d", orderID)
	var last error
	for sends := 1; ; sends++ {
		_, sent, _, err := sendOrder(b, ctx, broker.OpCancelOrder,
			func(ctx context.Context, ot broker.OrderTrader) (struct{}, error) {
				return struct{}{}, ot.CancelOrder(ctx, orderID)
			})
		switch {
		case err == nil:
			return nil
		case !sent && last == nil:
			return err
		case !sent || classifySend(err) == sentUnknown:
			if last == nil || sent {
				last = err
			}
		case last == nil: // refused at the first send: the gateway's answer
			return err
		default:
			// Refused after an unknown send: the first cancel may have done it
			// (IB refuses to cancel a cancelled order); read the order back.
		}
		if ctx.Err() != nil {
			return unknownOutcome(what, last)
		}
		b.log.Warn("order cancel with an unknown outcome: reading the order back", "order_id", orderID, "error", last)
		o, state, lerr := b.findID(ctx, orderID)
		switch {
		case lerr != nil:
			return unknownOutcome(what+": read it back", lerr)
		case state == orderTerminal:
			b.log.Info("order is final after an unknown cancel", "order_id", orderID, "status", o.Status)
			return nil
		case state == orderAbsent:
			return fmt.Errorf("robust: %s: %w: no order %d after an unknown outcome (%v)", what, broker.ErrNotFound, orderID, last)
		case sends >= b.cfg.maxAttempts:
			return unknownOutcome(fmt.Sprintf("giving up after %d send(s) to %s", sends, what), last)
		}
	}
}

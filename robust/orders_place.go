package robust

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/brokerkit/brokerkit/broker"
)

// PlaceOrder exactly once by key: one call in flight per key (the others
// wait for its outcome), the orders placed remembered, and every unknown
// outcome resolved by looking the key up before the order is sent again.

// rememberedOrders bounds how many placed orders a Broker remembers by key;
// older ones are forgotten first (the lookup before placing still finds them
// at the gateway).
const rememberedOrders = 10000

// orderKeys is the Broker's table of keys. The zero value is ready to use.
type orderKeys struct {
	mu      sync.Mutex
	flights map[string]*flight             // PlaceOrders in progress, by key
	placed  map[string]broker.PlacedOrder  // orders this Broker placed or found, by key
	reqs    map[string]broker.OrderRequest // the request of each order of placed
	fifo    []string                       // keys of placed, oldest first
	ids     map[int64]broker.PlacedOrder   // the orders of placed, by order id
	unknown map[string]int64               // keys whose last send had an unknown outcome: the client id it was sent with
}

// flight is one PlaceOrder in progress; done is closed when po and err are set.
type flight struct {
	req     broker.OrderRequest
	done    chan struct{}
	po      broker.PlacedOrder
	err     error
	waiters int // calls that joined it (guarded by orderKeys.mu)
}

// join returns the order already placed under r.Key, or the flight to wait
// for, or a new flight that the caller leads (leader true) and must finish.
// It fails with ErrInvalidArgument if the order or flight of the key has
// other terms than r.
func (k *orderKeys) join(r broker.OrderRequest) (po broker.PlacedOrder, known bool, f *flight, leader bool, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	other := func(q broker.OrderRequest, id int64) error {
		if sameTerms(q, r) {
			return nil
		}
		return fmt.Errorf("%w: order key %s was placed with other terms (order %d)", broker.ErrInvalidArgument, r.Key, id)
	}
	if po, ok := k.placed[r.Key]; ok {
		return po, true, nil, false, other(k.reqs[r.Key], po.OrderID)
	}
	if f, ok := k.flights[r.Key]; ok {
		if err := other(f.req, 0); err != nil {
			return broker.PlacedOrder{}, false, nil, false, err
		}
		f.waiters++
		return broker.PlacedOrder{}, false, f, false, nil
	}
	if k.flights == nil {
		k.flights = map[string]*flight{}
	}
	f = &flight{req: r, done: make(chan struct{})}
	k.flights[r.Key] = f
	return broker.PlacedOrder{}, false, f, true, nil
}

// sameTerms reports whether q and r ask for the same order.
func sameTerms(q, r broker.OrderRequest) bool {
	q.TIF, r.TIF = strings.ToUpper(q.TIF), strings.ToUpper(r.TIF)
	return q == r
}

// finish ends the flight of key with its outcome and remembers a placed order.
func (k *orderKeys) finish(key string, f *flight, po broker.PlacedOrder, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.flights, key)
	f.po, f.err = po, err
	close(f.done)
	if err != nil {
		return
	}
	delete(k.unknown, key)
	if k.placed == nil {
		k.placed = map[string]broker.PlacedOrder{}
	}
	if _, ok := k.placed[key]; !ok {
		k.fifo = append(k.fifo, key)
	}
	if k.ids == nil {
		k.ids = map[int64]broker.PlacedOrder{}
		k.reqs = map[string]broker.OrderRequest{}
	}
	po.Existing = false
	k.placed[key] = po
	k.reqs[key] = f.req
	k.ids[po.OrderID] = po
	for len(k.fifo) > rememberedOrders {
		delete(k.ids, k.placed[k.fifo[0]].OrderID)
		delete(k.placed, k.fifo[0])
		delete(k.reqs, k.fifo[0])
		k.fifo = k.fifo[1:]
	}
}

// modified records r as the terms of the order id after a ModifyOrder, so
// that a PlaceOrder of its key with the new terms is the same order.
func (k *orderKeys) modified(id int64, r broker.OrderRequest) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if po, ok := k.ids[id]; ok && po.Key == r.Key {
		k.reqs[r.Key] = r
	}
}

// byID returns the order this Broker placed or found with order id id.
func (k *orderKeys) byID(id int64) (broker.PlacedOrder, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	po, ok := k.ids[id]
	return po, ok
}

// suspect returns the client id an unknown send of key used, if any.
func (k *orderKeys) suspect(key string) (int64, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	id, ok := k.unknown[key]
	return id, ok
}

func (k *orderKeys) markUnknown(key string, clientID int64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.unknown == nil {
		k.unknown = map[string]int64{}
	}
	k.unknown[key] = clientID
}

// PlaceOrder places r exactly once by r.Key (see the package doc, "Orders"):
//
//   - An order this Broker already placed or found under r.Key is returned
//     with Existing set, and nothing is sent; if r has other terms than the
//     request it was placed with (or last modified to by ModifyOrder),
//     PlaceOrder fails with ErrInvalidArgument.
//   - Concurrent calls with the same key share one outcome: one of them sends,
//     the others wait for it (and get Existing set); the same rule of terms
//     applies. An order found at the gateway by a lookup is taken as is.
//   - Unless WithLookupBeforePlace(false), the key is first looked up at the
//     gateway (OpenOrders, CompletedOrders, Executions); found, that order is
//     returned with Existing set.
//   - The order is sent once. If the send's outcome is unknown (see
//     classifySend: the worker died, the session dropped, the call timed out),
//     the session is restored and the key looked up again: found, that order
//     is returned with Existing set; not found, the order is sent once more,
//     and so on, at most WithMaxAttempts sends in all, within ctx.
//
// It fails with the inner Broker's refusal (ErrRejected, ErrReadOnly,
// ErrInvalidArgument, ...) as is; with ErrNotConnected, ErrUnavailable or
// ErrCircuitOpen when nothing could be sent; and with an error matching
// broker.ErrOutcomeUnknown when it gives up (ctx done, attempts spent, the
// lookup failed) while the order may exist. A later PlaceOrder with the same
// key resolves that before sending anything.
func (b *Broker) PlaceOrder(ctx context.Context, r broker.OrderRequest) (broker.PlacedOrder, error) {
	if err := r.Validate(); err != nil {
		return broker.PlacedOrder{}, err
	}
	if err := b.orderPrecheck(); err != nil {
		return broker.PlacedOrder{}, err
	}
	for {
		po, known, f, leader, err := b.keys.join(r)
		switch {
		case err != nil:
			return broker.PlacedOrder{}, err
		case known:
			po.Existing = true
			return po, nil
		case leader:
			po, err := b.place(ctx, r)
			b.keys.finish(r.Key, f, po, err)
			return po, err
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return broker.PlacedOrder{}, unknownOutcome("order "+r.Key+" is being placed by another call", ctx.Err())
		}
		if f.err == nil {
			po := f.po
			po.Existing = true
			return po, nil
		}
		if !errors.Is(f.err, broker.ErrOutcomeUnknown) {
			return broker.PlacedOrder{}, f.err
		}
		// The leader gave up with the outcome unknown (its context ended, say):
		// this call takes over, looking the key up first.
	}
}

// orderPrecheck refuses order calls without a wanted session, as call does.
func (b *Broker) orderPrecheck() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return broker.ErrClosed
	case !b.wanted:
		b.calls.Add(1)
		return broker.ErrNotConnected
	}
	return nil
}

// place is the leader's work for r.Key; see PlaceOrder.
func (b *Broker) place(ctx context.Context, r broker.OrderRequest) (broker.PlacedOrder, error) {
	suspectID, maybe := b.keys.suspect(r.Key) // maybe: an earlier send may have reached the gateway
	lookup := maybe || b.cfg.lookupBeforePlace
	var last error
	for sends := 0; ; {
		if lookup {
			before := b.Stats().ClientID
			po, found, err := b.findKey(ctx, r.Key)
			switch {
			case err != nil && maybe:
				return broker.PlacedOrder{}, unknownOutcome("look order "+r.Key+" up", err)
			case err != nil:
				return broker.PlacedOrder{}, fmt.Errorf("robust: look order %s up before placing it: %w", r.Key, err)
			case found:
				b.log.Info("order found at the gateway by its key", "key", r.Key, "order_id", po.OrderID, "status", po.Status)
				po.Existing = true
				return po, nil
			case maybe && (before != suspectID || b.Stats().ClientID != suspectID):
				// IB lists open orders per client id: the order may be invisible here.
				return broker.PlacedOrder{}, unknownOutcome(fmt.Sprintf("order %s may exist under client id %d, "+
					"not listed to client id %d", r.Key, suspectID, b.Stats().ClientID), errors.New("not placed again"))
			}
			maybe, lookup = false, false
		}
		if sends >= b.cfg.maxAttempts {
			if maybe {
				return broker.PlacedOrder{}, unknownOutcome(fmt.Sprintf("giving up after %d send(s) of order %s", sends, r.Key), last)
			}
			return broker.PlacedOrder{}, fmt.Errorf("giving up after %d attempt(s): %w", sends, last)
		}
		sends++
		po, sent, clientID, err := sendOrder(b, ctx, broker.OpPlaceOrder,
			func(ctx context.Context, ot broker.OrderTrader) (broker.PlacedOrder, error) {
				return ot.PlaceOrder(ctx, r)
			})
		last = err
		switch {
		case err == nil:
			po.Key, po.Existing = r.Key, false
			return po, nil
		case sent && classifySend(err) == sentRefused:
			return broker.PlacedOrder{}, err
		case sent:
			b.log.Warn("order sent with an unknown outcome: restoring the session and looking its key up", "key", r.Key, "error", err)
			b.keys.markUnknown(r.Key, clientID)
			suspectID, maybe, lookup = clientID, true, true
			if ctx.Err() != nil {
				return broker.PlacedOrder{}, unknownOutcome("place order "+r.Key, err)
			}
			continue
		}
		// Nothing was sent (no session within the attempt, the breaker, ctx),
		// and every earlier send is resolved: a plain error.
		if ctx.Err() != nil || b.isClosed() || !retryable(err) {
			return broker.PlacedOrder{}, err
		}
		if serr := sleep(ctx, b.cfg.clock, b.cfg.backoff.Delay(sends, b.cfg.rand()), b.closing); serr != nil {
			if errors.Is(serr, errStopped) {
				return broker.PlacedOrder{}, broker.ErrClosed
			}
			return broker.PlacedOrder{}, canceled(serr, sends, last)
		}
	}
}

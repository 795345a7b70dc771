package mutants

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// The order mutants: each is an OrderTrader and OrderStreamer that forwards
// to the wrapped Broker's but breaks one sentence of their contract
// (broker/orders.go) the way a plausible bug would.

// orders forwards the order capabilities of the wrapped Broker.
type orders struct{ broker.Broker }

func (b orders) trader() broker.OrderTrader { return b.Broker.(broker.OrderTrader) }

func (b orders) PlaceOrder(ctx context.Context, r broker.OrderRequest) (broker.PlacedOrder, error) {
	return b.trader().PlaceOrder(ctx, r)
}

func (b orders) ModifyOrder(ctx context.Context, id int64, r broker.OrderRequest) (broker.PlacedOrder, error) {
	return b.trader().ModifyOrder(ctx, id, r)
}

func (b orders) CancelOrder(ctx context.Context, id int64) error {
	return b.trader().CancelOrder(ctx, id)
}

func (b orders) SubscribeOrders(ctx context.Context) (<-chan broker.OrderEvent, error) {
	return b.Broker.(broker.OrderStreamer).SubscribeOrders(ctx)
}

// ordersReadWrite connects every session read-write: ConnectParams.ReadOnly
// is dropped on the way, so orders reach the gateway.
type ordersReadWrite struct{ orders }

func (b ordersReadWrite) Connect(ctx context.Context, p broker.ConnectParams) (broker.ConnectInfo, error) {
	p.ReadOnly = false
	return b.Broker.Connect(ctx, p)
}

// retriesNewKey retries a placement whose outcome is unknown under a fresh
// key, as a naive retry loop that "makes keys unique" would: the first order
// may exist, and now there are two.
type retriesNewKey struct{ orders }

func (b retriesNewKey) PlaceOrder(ctx context.Context, r broker.OrderRequest) (broker.PlacedOrder, error) {
	p, err := b.trader().PlaceOrder(ctx, r)
	if err != nil && (errors.Is(err, broker.ErrOutcomeUnknown) || ctx.Err() != nil) {
		retry, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		r.Key += "-retry"
		return b.trader().PlaceOrder(retry, r)
	}
	return p, err
}

// reusesIDs places every new key after the first under the first order's id,
// as a client whose id counter never advances would: the gateway takes it as
// a modification of the earlier order.
type reusesIDs struct {
	orders
	mu    sync.Mutex
	first *broker.PlacedOrder
	seen  map[string]bool
}

func (b *reusesIDs) PlaceOrder(ctx context.Context, r broker.OrderRequest) (broker.PlacedOrder, error) {
	b.mu.Lock()
	first, seen := b.first, b.seen[r.Key]
	b.seen[r.Key] = true
	b.mu.Unlock()
	if first == nil || seen || first.Key == r.Key {
		p, err := b.trader().PlaceOrder(ctx, r)
		if err == nil {
			b.mu.Lock()
			if b.first == nil {
				b.first = &p
			}
			b.mu.Unlock()
		}
		return p, err
	}
	under := r
	under.Key = first.Key // the adapter keeps an order's key
	p, err := b.trader().ModifyOrder(ctx, first.OrderID, under)
	p.Key = r.Key
	return p, err
}

// placesKeyTwice places a key seen before again, under a variant of it, as a
// client that "deduplicates" by appending a counter would.
type placesKeyTwice struct {
	orders
	mu   *sync.Mutex
	seen map[string]int
}

func (b placesKeyTwice) PlaceOrder(ctx context.Context, r broker.OrderRequest) (broker.PlacedOrder, error) {
	b.mu.Lock()
	n := b.seen[r.Key]
	b.seen[r.Key]++
	b.mu.Unlock()
	if n > 0 {
		r.Key = fmt.Sprintf("%s.%d", r.Key, n)
	}
	return b.trader().PlaceOrder(ctx, r)
}

// rejectionAsText flattens a rejection to text: the caller cannot tell it
// from an order whose fate is unknown.
type rejectionAsText struct{ orders }

func (b rejectionAsText) PlaceOrder(ctx context.Context, r broker.OrderRequest) (broker.PlacedOrder, error) {
	p, err := b.trader().PlaceOrder(ctx, r)
	if errors.Is(err, broker.ErrRejected) {
		return p, fmt.Errorf("mutant: order failed: %v", err)
	}
	return p, err
}

// cancelUnknownOK reports the cancel of an order the gateway does not know
// as done.
type cancelUnknownOK struct{ orders }

func (b cancelUnknownOK) CancelOrder(ctx context.Context, id int64) error {
	if err := b.trader().CancelOrder(ctx, id); !errors.Is(err, broker.ErrNotFound) {
		return err
	}
	return nil
}

// modifyNoop answers ModifyOrder without sending it.
type modifyNoop struct{ orders }

func (b modifyNoop) ModifyOrder(_ context.Context, id int64, r broker.OrderRequest) (broker.PlacedOrder, error) {
	return broker.PlacedOrder{OrderID: id, Key: r.Key, Status: "Submitted"}, nil
}

// dropsFills forwards status events only: fills are lost.
type dropsFills struct{ orders }

func (b dropsFills) SubscribeOrders(ctx context.Context) (<-chan broker.OrderEvent, error) {
	in, err := b.orders.SubscribeOrders(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan broker.OrderEvent, broker.OrderEventBuffer)
	go func() { // ends when the wrapped channel closes (ctx, Close, session end)
		defer close(out)
		for e := range in {
			if e.Kind != broker.OrderEventFill {
				select {
				case out <- e:
				default:
				}
			}
		}
	}()
	return out, nil
}

// orderMutants lists the order mutants.
func orderMutants() []Mutant {
	w := func(f func(orders) broker.Broker) func(broker.Broker, Env) broker.Broker {
		return func(b broker.Broker, _ Env) broker.Broker { return f(orders{b}) }
	}
	return []Mutant{
		{"a new order placed under an earlier order's id", "order-place", []string{"OrderPlace", "OrderKeyReuse"},
			w(func(o orders) broker.Broker { return &reusesIDs{orders: o, seen: map[string]bool{}} })},
		{"a key seen before placed again under a variant", "order-key", []string{"OrderKeyReuse"}, w(func(o orders) broker.Broker {
			return placesKeyTwice{orders: o, mu: &sync.Mutex{}, seen: map[string]int{}}
		})},
		{"orders sent in a read-only session", "order-readonly", []string{"OrderReadOnly"}, w(func(o orders) broker.Broker { return ordersReadWrite{o} })},
		{"rejection flattened to text", "order-rejected", []string{"OrderReject"}, w(func(o orders) broker.Broker { return rejectionAsText{o} })},
		{"placement of unknown outcome retried under a new key", "order-outcome", []string{"OrderCancelMid"}, w(func(o orders) broker.Broker { return retriesNewKey{o} })},
		{"ModifyOrder sends nothing", "order-modify", []string{"OrderLimitFill"}, w(func(o orders) broker.Broker { return modifyNoop{o} })},
		{"cancel of an unknown order succeeds", "order-cancel", []string{"OrderCancel"}, w(func(o orders) broker.Broker { return cancelUnknownOK{o} })},
		{"fills not reported as events", "order-events", []string{"OrderPlace"}, w(func(o orders) broker.Broker { return dropsFills{o} })},
	}
}

package ibkr_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/scmhub/ibapi"

	"github.com/brokerkit/brokerkit/adapters/ibkr"
	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// The server versions the order tests run at: ib_async's (text), the first
// raw-id one (text orders), and the newest (protobuf orders).
var orderVersions = []int{178, fakes.VersionRawIDs, fakes.DefaultServerVersion}

func orderScript(v int) fakes.Script {
	s := fakes.DefaultScript()
	s.ServerVersion = v
	s.Quotes = []fakes.Quote{{Symbol: "AAPL", ConID: 265598, Price: broker.MustDecimal("190.5"), Commission: broker.MustDecimal("1.25")}}
	return s
}

var aaplStock = broker.Contract{Symbol: "AAPL", SecType: "STK", Exchange: "SMART", Currency: "USD"}

func market(key, qty string) broker.OrderRequest {
	return broker.OrderRequest{Key: key, Contract: aaplStock, Action: broker.ActionBuy, Quantity: broker.MustDecimal(qty),
		OrderType: broker.OrderMarket}
}

func limit(key, qty, px string) broker.OrderRequest {
	r := market(key, qty)
	r.OrderType, r.LimitPrice = broker.OrderLimit, broker.MustDecimal(px)
	return r
}

// gatewayOrder returns the fake's order of that key, failing unless there is
// exactly one.
func gatewayOrder(t *testing.T, g *fakes.Gateway, key string) fakes.Order {
	t.Helper()
	var found []fakes.Order
	for _, o := range g.Orders() {
		if o.OrderRef == key {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("gateway holds %d orders of key %s: %+v", len(found), key, found)
	}
	return found[0]
}

// awaitEvent reads events until one satisfies ok.
func awaitEvent(t *testing.T, ch <-chan broker.OrderEvent, what string, ok func(broker.OrderEvent) bool) broker.OrderEvent {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e, open := <-ch:
			if !open {
				t.Fatalf("order events closed before %s", what)
			}
			if ok(e) {
				return e
			}
		case <-timeout:
			t.Fatalf("no order event: %s", what)
		}
	}
}

func TestPlaceOrderMarketFill(t *testing.T) {
	for _, v := range orderVersions {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			g, a, ctx := connected(t, orderScript(v))
			events, err := a.SubscribeOrders(ctx)
			if err != nil {
				t.Fatal(err)
			}
			p, err := a.PlaceOrder(ctx, market("mkt-1", "10"))
			if err != nil {
				t.Fatal(err)
			}
			if p.OrderID <= 0 || p.Key != "mkt-1" || p.Existing || p.Status == "" {
				t.Errorf("placed %+v", p)
			}
			o := gatewayOrder(t, g, "mkt-1")
			if o.ID != p.OrderID || o.PermID != p.PermID {
				t.Errorf("gateway order %d/%d, placed %+v", o.ID, o.PermID, p)
			}
			fill := awaitEvent(t, events, "the fill", func(e broker.OrderEvent) bool { return e.Kind == broker.OrderEventFill })
			if fill.Order.OrderID != p.OrderID || fill.Order.OrderRef != "mkt-1" || fill.Fill.OrderRef != "mkt-1" ||
				fill.Fill.Shares.String() != "10" || fill.Fill.Price.String() != "190.5" {
				t.Errorf("fill event %+v %+v", fill, *fill.Fill)
			}
			comm := awaitEvent(t, events, "the commission", func(e broker.OrderEvent) bool { return e.Kind == broker.OrderEventFill })
			if comm.Fill.ExecID != fill.Fill.ExecID || comm.Fill.Commission.String() != "1.25" {
				t.Errorf("commission event %+v", *comm.Fill)
			}
			awaitEvent(t, events, "Filled", func(e broker.OrderEvent) bool {
				return e.Kind == broker.OrderEventStatus && e.Order.OrderID == p.OrderID && e.Order.Status == broker.StatusFilled &&
					e.Order.Filled.String() == "10"
			})
			execs, err := a.Executions(ctx, broker.ExecutionFilter{})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, x := range execs {
				if x.OrderRef == "mkt-1" && x.OrderID == p.OrderID {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d executions of key mkt-1 in %+v", n, execs)
			}
		})
	}
}

func TestLimitOrderFillsOnPriceCancelAndModify(t *testing.T) {
	for _, v := range orderVersions {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			g, a, ctx := connected(t, orderScript(v))
			events, err := a.SubscribeOrders(ctx)
			if err != nil {
				t.Fatal(err)
			}
			p, err := a.PlaceOrder(ctx, limit("lmt-1", "5", "180"))
			if err != nil {
				t.Fatal(err)
			}
			if p.Status != fakes.StatusSubmitted {
				t.Errorf("status %q, want Submitted", p.Status)
			}
			// Modify: same id, new price; the key must stay.
			if _, err := a.ModifyOrder(ctx, p.OrderID, limit("other", "5", "181")); !errors.Is(err, broker.ErrInvalidArgument) {
				t.Errorf("modify with another key: %v, want ErrInvalidArgument", err)
			}
			m, err := a.ModifyOrder(ctx, p.OrderID, limit("lmt-1", "5", "182"))
			if err != nil || m.OrderID != p.OrderID {
				t.Fatalf("modify: %+v, %v", m, err)
			}
			if o := gatewayOrder(t, g, "lmt-1"); o.Modifications != 1 || o.LmtPrice.String() != "182" {
				t.Errorf("after modify: %d modifications, limit %s", o.Modifications, o.LmtPrice)
			}
			if _, err := a.ModifyOrder(ctx, 999999, limit("lmt-1", "5", "182")); !errors.Is(err, broker.ErrNotFound) {
				t.Errorf("modify of an unknown order: %v, want ErrNotFound", err)
			}
			// The price crosses: the order fills.
			if n := g.SetPrice("AAPL", broker.MustDecimal("181.5")); n != 1 {
				t.Fatalf("SetPrice made %d executions", n)
			}
			awaitEvent(t, events, "Filled", func(e broker.OrderEvent) bool {
				return e.Kind == broker.OrderEventStatus && e.Order.OrderID == p.OrderID && e.Order.Status == broker.StatusFilled
			})
			// Cancel of a filled order: already final.
			if err := a.CancelOrder(ctx, p.OrderID); err != nil {
				t.Errorf("cancel of a filled order: %v, want nil (already final)", err)
			}
			// Cancel of a working order.
			q, err := a.PlaceOrder(ctx, limit("lmt-2", "5", "100"))
			if err != nil {
				t.Fatal(err)
			}
			if err := a.CancelOrder(ctx, q.OrderID); err != nil {
				t.Fatal(err)
			}
			if o := gatewayOrder(t, g, "lmt-2"); o.Status != fakes.StatusCancelled {
				t.Errorf("cancelled order is %s", o.Status)
			}
			if err := a.CancelOrder(ctx, 424242); !errors.Is(err, broker.ErrNotFound) {
				t.Errorf("cancel of an unknown order: %v, want ErrNotFound", err)
			}
		})
	}
}

func TestOrderRejections(t *testing.T) {
	for _, v := range orderVersions {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			g, a, ctx := connected(t, orderScript(v))
			bad := market("rej-1", "1")
			bad.Contract.Symbol = "NOPE"
			if _, err := a.PlaceOrder(ctx, bad); !errors.Is(err, broker.ErrRejected) {
				t.Errorf("unknown symbol: %v, want ErrRejected", err)
			}
			off := limit("rej-2", "1", "180.555")
			if _, err := a.PlaceOrder(ctx, off); !errors.Is(err, broker.ErrRejected) {
				t.Errorf("price off the tick: %v, want ErrRejected", err)
			}
			// A refused key may be placed again (nothing exists under it).
			off.LimitPrice = broker.MustDecimal("180.55")
			if _, err := a.PlaceOrder(ctx, off); err != nil {
				t.Errorf("the refused key again with good terms: %v", err)
			}
			if _, err := a.PlaceOrder(ctx, broker.OrderRequest{Key: "x"}); !errors.Is(err, broker.ErrInvalidArgument) {
				t.Errorf("malformed request: %v, want ErrInvalidArgument", err)
			}
			if o := g.Orders(); len(o) != 3 {
				t.Errorf("gateway received %d orders, want 3", len(o))
			}
		})
	}
}

func TestReadOnly(t *testing.T) {
	for _, v := range orderVersions {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			// The session's guard: nothing is sent.
			g := newGateway(t, orderScript(v))
			a := newAdapter(t)
			ctx := ctxFor(t)
			p := params(g)
			p.ReadOnly = true
			if _, err := a.Connect(ctx, p); err != nil {
				t.Fatal(err)
			}
			if _, err := a.PlaceOrder(ctx, market("ro-1", "1")); !errors.Is(err, broker.ErrReadOnly) {
				t.Errorf("place in a read-only session: %v", err)
			}
			if _, err := a.ModifyOrder(ctx, 1, market("ro-1", "1")); !errors.Is(err, broker.ErrReadOnly) {
				t.Errorf("modify in a read-only session: %v", err)
			}
			if err := a.CancelOrder(ctx, 1); !errors.Is(err, broker.ErrReadOnly) {
				t.Errorf("cancel in a read-only session: %v", err)
			}
			if err := a.Ping(ctx); err != nil { // every earlier request has reached the gateway
				t.Fatal(err)
			}
			for _, id := range []int{int(ibapi.PLACE_ORDER), int(ibapi.CANCEL_ORDER), int(ibapi.REQ_OPEN_ORDERS)} {
				if n := g.RequestCount(id); n != 0 {
					t.Errorf("a read-only session sent %d requests %d", n, id)
				}
			}
			// The gateway's own read-only refusal (IB 321).
			s := orderScript(v)
			s.ReadOnlyAPI = true
			_, b, ctx2 := connected(t, s)
			if _, err := b.PlaceOrder(ctx2, market("ro-2", "1")); !errors.Is(err, broker.ErrReadOnly) {
				t.Errorf("place on a read-only gateway: %v, want ErrReadOnly", err)
			}
		})
	}
}

func TestOrderKeyReuse(t *testing.T) {
	for _, v := range orderVersions {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			g, a, ctx := connected(t, orderScript(v))
			r := limit("dup-1", "3", "150")
			first, err := a.PlaceOrder(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			again, err := a.PlaceOrder(ctx, r)
			if err != nil || !again.Existing || again.OrderID != first.OrderID {
				t.Errorf("same key again: %+v, %v; want order %d, Existing", again, err, first.OrderID)
			}
			other := r
			other.Quantity = broker.MustDecimal("4")
			if _, err := a.PlaceOrder(ctx, other); !errors.Is(err, broker.ErrInvalidArgument) {
				t.Errorf("same key, other terms: %v, want ErrInvalidArgument", err)
			}
			// Concurrently: one order, every caller gets its id.
			c := limit("dup-2", "3", "150")
			var wg sync.WaitGroup
			ids := make([]int64, 8)
			existing := 0
			var mu sync.Mutex
			for i := range ids {
				wg.Go(func() {
					p, err := a.PlaceOrder(ctx, c)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					ids[i] = p.OrderID
					if p.Existing {
						existing++
					}
				})
			}
			wg.Wait()
			o := gatewayOrder(t, g, "dup-2")
			for _, id := range ids {
				if id != o.ID {
					t.Errorf("ids %v, gateway order %d", ids, o.ID)
					break
				}
			}
			if existing != len(ids)-1 {
				t.Errorf("%d callers told Existing, want %d", existing, len(ids)-1)
			}
			if n := g.RequestCount(int(ibapi.PLACE_ORDER)); n != 2 {
				t.Errorf("%d PLACE_ORDERs sent, want 2", n)
			}
		})
	}
}

// TestOutcomeUnknownAndFreshIDs: an order whose connection drops before its
// ack is ErrOutcomeUnknown; after reconnecting, the next order gets an id
// above it (IB 103 never happens), and the first is found by its key.
func TestOutcomeUnknownAndFreshIDs(t *testing.T) {
	for _, v := range orderVersions {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			s := orderScript(v)
			s.Faults.DropAfterOrder = 2
			g, a, ctx := connected(t, s)
			first, err := a.PlaceOrder(ctx, limit("u-1", "1", "150"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = a.PlaceOrder(ctx, limit("u-2", "1", "150"))
			if !errors.Is(err, broker.ErrOutcomeUnknown) || errors.Is(err, broker.ErrNotConnected) {
				t.Fatalf("dropped before the ack: %v, want ErrOutcomeUnknown only", err)
			}
			dropped := gatewayOrder(t, g, "u-2")
			for range 3 { // reconnect and place again, each time under a fresh id
				if err := waitReconnect(ctx, a, g); err != nil {
					t.Fatal(err)
				}
				p, err := a.PlaceOrder(ctx, limit(fmt.Sprint("u-next-", g.RequestCount(int(ibapi.PLACE_ORDER))), "1", "150"))
				if err != nil && !errors.Is(err, broker.ErrOutcomeUnknown) {
					t.Fatal(err)
				}
				if err == nil && (p.OrderID <= dropped.ID || p.OrderID <= first.OrderID) {
					t.Errorf("id %d after %d and %d", p.OrderID, first.OrderID, dropped.ID)
				}
			}
			open, err := a.OpenOrders(ctx)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, o := range open {
				found = found || o.OrderRef == "u-2"
			}
			if !found {
				t.Errorf("the dropped order is not among the open orders %+v", open)
			}
			for _, o := range g.Orders() {
				if o.RejectCode != 0 {
					t.Errorf("order %d refused with %d", o.ID, o.RejectCode)
				}
			}
		})
	}
}

// waitReconnect connects a again once the gateway has seen the old session go.
func waitReconnect(ctx context.Context, a *ibkr.Adapter, g *fakes.Gateway) error {
	for {
		if err := a.Ping(ctx); err == nil {
			return nil
		}
		_, err := a.Connect(ctx, params(g))
		if err == nil || errors.Is(err, broker.ErrAlreadyConnected) {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		time.Sleep(10 * time.Millisecond) // a retry pause, not synchronisation: the loop waits for the connect to succeed
	}
}

// TestAckDelay: a PlaceOrder whose context ends before a late ack is
// ErrOutcomeUnknown matching the context's error; the same key then returns
// the order once it is acknowledged, and there is one order.
func TestAckDelay(t *testing.T) {
	for _, v := range orderVersions {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			s := orderScript(v)
			s.Faults.AckDelay = 400 * time.Millisecond
			g, a, ctx := connected(t, s)
			short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			r := limit("late-1", "1", "150")
			_, err := a.PlaceOrder(short, r)
			if !errors.Is(err, broker.ErrOutcomeUnknown) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("late ack: %v, want ErrOutcomeUnknown and DeadlineExceeded", err)
			}
			p, err := a.PlaceOrder(ctx, r)
			if err != nil || !p.Existing {
				t.Fatalf("same key after the late ack: %+v, %v", p, err)
			}
			if o := gatewayOrder(t, g, "late-1"); o.ID != p.OrderID {
				t.Errorf("gateway order %d, placed %d", o.ID, p.OrderID)
			}
			if n := g.RequestCount(int(ibapi.PLACE_ORDER)); n != 1 {
				t.Errorf("%d PLACE_ORDERs, want 1", n)
			}
		})
	}
}

// TestOrderEventsEnd: the order event channel closes when its context ends,
// when the session ends and on Close.
func TestOrderEventsEnd(t *testing.T) {
	g, a, ctx := connected(t, orderScript(fakes.DefaultServerVersion))
	sub, cancel := context.WithCancel(ctx)
	ch1, err := a.SubscribeOrders(sub)
	if err != nil {
		t.Fatal(err)
	}
	ch2, err := a.SubscribeOrders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	drainClosed(t, ch1)
	g.DropConnections()
	drainClosed(t, ch2)
	if _, err := a.SubscribeOrders(ctx); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("subscribe without a session: %v", err)
	}
	if err := waitReconnect(ctx, a, g); err != nil {
		t.Fatal(err)
	}
	ch3, err := a.SubscribeOrders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = a.Close()
	drainClosed(t, ch3)
	if _, err := a.SubscribeOrders(ctx); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("subscribe after Close: %v", err)
	}
}

func drainClosed(t *testing.T, ch <-chan broker.OrderEvent) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case _, open := <-ch:
			if !open {
				return
			}
		case <-timeout:
			t.Fatal("order events not closed")
		}
	}
}

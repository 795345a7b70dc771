package conformance

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// Cases of the order side (broker.OrderTrader and broker.OrderStreamer,
// docs/adr/0016), against the fake gateway's order simulator (ADR 13): each
// checks what the gateway holds afterwards (fakes.Gateway.Orders), not only
// what the Broker says. A Broker that does not implement broker.OrderTrader
// is skipped, naming it.

// Message ids of the order requests (TWS API).
const (
	reqPlaceOrder    = 3
	reqCancelOrder   = 4
	reqAllOpenOrders = 16
)

// OrderScript is fakes.DefaultScript with a market for the order simulator:
// AAPL (con id 265598) at 190.5, tick 0.01, commission 1.25 per execution.
func OrderScript() fakes.Script {
	s := fakes.DefaultScript()
	s.Quotes = []fakes.Quote{{Symbol: "AAPL", ConID: 265598, Price: broker.MustDecimal("190.5"),
		Commission: broker.MustDecimal("1.25")}}
	return s
}

// OrderContract is the instrument of OrderScript's market.
var OrderContract = broker.Contract{Symbol: "AAPL", SecType: "STK", Exchange: "SMART", Currency: "USD"}

// MarketOrder and LimitOrder are requests for OrderContract.
func MarketOrder(key, qty string) broker.OrderRequest {
	return broker.OrderRequest{Key: key, Contract: OrderContract, Action: broker.ActionBuy,
		Quantity: broker.MustDecimal(qty), OrderType: broker.OrderMarket}
}

// LimitOrder is a buy limit order for OrderContract.
func LimitOrder(key, qty, price string) broker.OrderRequest {
	r := MarketOrder(key, qty)
	r.OrderType, r.LimitPrice = broker.OrderLimit, broker.MustDecimal(price)
	return r
}

// connectedOrders starts a gateway serving s and a Broker connected to it,
// and returns its OrderTrader, skipping the case if it has none.
func connectedOrders(t TB, newBroker Factory, f Features, s fakes.Script) (Env, broker.Broker, broker.OrderTrader) {
	t.Helper()
	env := newEnv(t, f, s)
	b := newBroker(t, env)
	ot, ok := b.(broker.OrderTrader)
	if !ok {
		t.Skipf("the Broker does not implement broker.OrderTrader")
	}
	connect(t, b, env.Params)
	return env, b, ot
}

// orderEvents subscribes to b's order events for the rest of the case.
func orderEvents(t TB, b broker.Broker) <-chan broker.OrderEvent {
	t.Helper()
	os, ok := b.(broker.OrderStreamer)
	if !ok {
		t.Fatalf("the Broker implements broker.OrderTrader but not broker.OrderStreamer")
	}
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	ch, err := os.SubscribeOrders(ctx)
	if err != nil {
		t.Fatalf("SubscribeOrders: %v", err)
	}
	return ch
}

// waitOrderEvent waits up to CallTimeout for an order event matching ok.
func waitOrderEvent(t TB, ch <-chan broker.OrderEvent, what string, ok func(broker.OrderEvent) bool) broker.OrderEvent {
	t.Helper()
	timer := time.NewTimer(CallTimeout)
	defer timer.Stop()
	var seen []string
	for {
		select {
		case e, open := <-ch:
			if !open {
				t.Fatalf("waiting for %s: order events closed; saw %v", what, seen)
			}
			if ok(e) {
				return e
			}
			seen = append(seen, fmt.Sprintf("%s %d %s %s", e.Kind, e.Order.OrderID, e.Order.Status, e.Gap))
		case <-timer.C:
			t.Fatalf("no %s within %v; saw %v", what, CallTimeout, seen)
		}
	}
}

// gatewayOrders returns the orders the gateway holds under key.
func gatewayOrders(env Env, key string) []fakes.Order {
	var out []fakes.Order
	for _, o := range env.Gateway.Orders() {
		if o.OrderRef == key {
			out = append(out, o)
		}
	}
	return out
}

// oneGatewayOrder fails unless the gateway holds exactly one order under key,
// with id id (if id is not 0), and returns it.
func oneGatewayOrder(t TB, env Env, key string, id int64) fakes.Order {
	t.Helper()
	got := gatewayOrders(env, key)
	if len(got) != 1 {
		t.Fatalf("the gateway holds %d orders with key %s, want 1: %+v", len(got), key, env.Gateway.Orders())
	}
	if id != 0 && got[0].ID != id {
		t.Fatalf("the gateway's order of key %s has id %d, PlaceOrder said %d", key, got[0].ID, id)
	}
	return got[0]
}

// TestOrderPlace: PlaceOrder returns the acknowledged order (a positive id,
// the key, a status); the gateway holds exactly one order per key under the
// id returned, with the key as its orderRef; a market order's fill is
// reported as a fill event carrying the key, with its commission, and is
// listed by Executions with the key as OrderRef.
func TestOrderPlace(t TB, newBroker Factory, f Features) {
	env, b, ot := connectedOrders(t, newBroker, f, OrderScript())
	events := orderEvents(t, b)
	ctx, cancel := callCtx(t)
	defer cancel()
	placed := map[string]int64{}
	for _, r := range []broker.OrderRequest{LimitOrder("conf-lmt", "2", "150"), MarketOrder("conf-mkt", "10")} {
		p, err := ot.PlaceOrder(ctx, r)
		if err != nil {
			t.Fatalf("PlaceOrder(%s): %v", r.Key, err)
		}
		if p.OrderID <= 0 || p.Key != r.Key || p.Existing || p.Status == "" {
			t.Errorf("PlaceOrder(%s) = %+v, want a positive id, the key, a status, not Existing", r.Key, p)
		}
		for k, id := range placed {
			if id == p.OrderID {
				t.Errorf("orders %s and %s share id %d", k, r.Key, id)
			}
		}
		placed[r.Key] = p.OrderID
	}
	for key, id := range placed {
		oneGatewayOrder(t, env, key, id)
	}
	id := placed["conf-mkt"]
	fill := waitOrderEvent(t, events, "the market order's fill", func(e broker.OrderEvent) bool {
		return e.Kind == broker.OrderEventFill && e.Fill != nil && e.Fill.OrderID == id
	})
	if fill.Fill.OrderRef != "conf-mkt" || fill.Order.OrderRef != "conf-mkt" || fill.Fill.Shares.String() != "10" ||
		fill.Fill.Price.String() != "190.5" {
		t.Errorf("fill event %+v, fill %+v: want key conf-mkt, 10 at 190.5", fill.Order, *fill.Fill)
	}
	waitOrderEvent(t, events, "the fill's commission", func(e broker.OrderEvent) bool {
		return e.Kind == broker.OrderEventFill && e.Fill != nil && e.Fill.ExecID == fill.Fill.ExecID &&
			e.Fill.Commission.String() == "1.25"
	})
	waitOrderEvent(t, events, "the status Filled", func(e broker.OrderEvent) bool {
		return e.Kind == broker.OrderEventStatus && e.Order.OrderID == id && e.Order.Status == broker.StatusFilled
	})
	execs, err := b.Executions(ctx, broker.ExecutionFilter{})
	if err != nil {
		t.Fatalf("Executions: %v", err)
	}
	n := 0
	for _, x := range execs {
		if x.OrderRef == "conf-mkt" && x.OrderID == id && x.Shares.String() == "10" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("Executions lists %d fills of key conf-mkt (order %d), want 1: %+v", n, id, execs)
	}
}

// TestOrderLimitFill: a limit order works until the price crosses it (the
// gateway's SetPrice), then fills and is reported Filled; ModifyOrder changes
// a working order's terms under the same id before that.
func TestOrderLimitFill(t TB, newBroker Factory, f Features) {
	env, b, ot := connectedOrders(t, newBroker, f, OrderScript())
	events := orderEvents(t, b)
	ctx, cancel := callCtx(t)
	defer cancel()
	p, err := ot.PlaceOrder(ctx, LimitOrder("conf-limit", "4", "180"))
	if err != nil {
		t.Fatalf("PlaceOrder: %v", err)
	}
	if broker.TerminalStatus(p.Status) {
		t.Errorf("a limit order below the market is %s", p.Status)
	}
	m, err := ot.ModifyOrder(ctx, p.OrderID, LimitOrder("conf-limit", "4", "185"))
	if err != nil {
		t.Fatalf("ModifyOrder: %v", err)
	}
	if m.OrderID != p.OrderID {
		t.Errorf("ModifyOrder returned order %d, want %d", m.OrderID, p.OrderID)
	}
	if o := oneGatewayOrder(t, env, "conf-limit", p.OrderID); o.Modifications != 1 || o.LmtPrice.String() != "185" {
		t.Errorf("after ModifyOrder the gateway's order has %d modifications, limit %s; want 1, 185", o.Modifications, o.LmtPrice)
	}
	if n := env.Gateway.SetPrice("AAPL", broker.MustDecimal("186")); n != 0 {
		t.Errorf("the price 186 filled a buy limited at 185 (%d executions)", n)
	}
	if n := env.Gateway.SetPrice("AAPL", broker.MustDecimal("184.5")); n != 1 {
		t.Fatalf("the price crossing the limit made %d executions, want 1", n)
	}
	waitOrderEvent(t, events, "the limit order Filled", func(e broker.OrderEvent) bool {
		return e.Kind == broker.OrderEventStatus && e.Order.OrderID == p.OrderID && e.Order.Status == broker.StatusFilled &&
			e.Order.Filled.String() == "4"
	})
	if o := oneGatewayOrder(t, env, "conf-limit", p.OrderID); o.Status != fakes.StatusFilled {
		t.Errorf("the gateway's order is %s, want Filled", o.Status)
	}
}

// TestOrderCancel: CancelOrder returns once the order is cancelled, which the
// gateway holds and the events report; an unknown id is ErrNotFound.
func TestOrderCancel(t TB, newBroker Factory, f Features) {
	env, b, ot := connectedOrders(t, newBroker, f, OrderScript())
	events := orderEvents(t, b)
	ctx, cancel := callCtx(t)
	defer cancel()
	p, err := ot.PlaceOrder(ctx, LimitOrder("conf-cancel", "1", "100"))
	if err != nil {
		t.Fatalf("PlaceOrder: %v", err)
	}
	if err := ot.CancelOrder(ctx, p.OrderID); err != nil {
		t.Fatalf("CancelOrder: %v", err)
	}
	if o := oneGatewayOrder(t, env, "conf-cancel", p.OrderID); o.Status != fakes.StatusCancelled {
		t.Errorf("after CancelOrder returned the gateway's order is %s", o.Status)
	}
	waitOrderEvent(t, events, "the status Cancelled", func(e broker.OrderEvent) bool {
		return e.Kind == broker.OrderEventStatus && e.Order.OrderID == p.OrderID && e.Order.Status == broker.StatusCancelled
	})
	wantIs(t, "CancelOrder of an unknown order", ot.CancelOrder(ctx, p.OrderID+1000), broker.ErrNotFound)
}

// TestOrderReadOnly: a session connected with ConnectParams.ReadOnly refuses
// PlaceOrder, ModifyOrder and CancelOrder with ErrReadOnly and sends nothing;
// a gateway refusing orders in read-only mode (IB 321) is ErrReadOnly too.
func TestOrderReadOnly(t TB, newBroker Factory, f Features) {
	env := newEnv(t, f, OrderScript())
	b := newBroker(t, env)
	ot, ok := b.(broker.OrderTrader)
	if !ok {
		t.Skipf("the Broker does not implement broker.OrderTrader")
	}
	p := env.Params
	p.ReadOnly = true
	connect(t, b, p)
	ctx, cancel := callCtx(t)
	defer cancel()
	_, err := ot.PlaceOrder(ctx, MarketOrder("conf-ro", "1"))
	wantIs(t, "PlaceOrder in a read-only session", err, broker.ErrReadOnly)
	_, err = ot.ModifyOrder(ctx, 1, MarketOrder("conf-ro", "1"))
	wantIs(t, "ModifyOrder in a read-only session", err, broker.ErrReadOnly)
	wantIs(t, "CancelOrder in a read-only session", ot.CancelOrder(ctx, 1), broker.ErrReadOnly)
	if err := b.Ping(ctx); err != nil { // whatever was sent before has reached the gateway
		t.Fatalf("Ping: %v", err)
	}
	for _, id := range []int{reqPlaceOrder, reqCancelOrder} {
		if n := env.Gateway.RequestCount(id); n != 0 {
			t.Errorf("a read-only session sent %d requests of message id %d", n, id)
		}
	}
	if n := len(env.Gateway.Orders()); n != 0 {
		t.Errorf("a read-only session placed %d orders", n)
	}

	s := OrderScript()
	s.ReadOnlyAPI = true
	env2 := newEnv(t, f, s)
	b2 := newBroker(t, env2)
	connect(t, b2, env2.Params)
	_, err = b2.(broker.OrderTrader).PlaceOrder(ctx, MarketOrder("conf-ro-gw", "1"))
	wantIs(t, "PlaceOrder on a gateway in read-only mode", err, broker.ErrReadOnly)
}

// TestOrderKeyReuse: the same key twice, one after the other or at once,
// makes one order, and every call returns its id (all but the first with
// Existing); the same key with other terms is ErrInvalidArgument.
func TestOrderKeyReuse(t TB, newBroker Factory, f Features) {
	env, _, ot := connectedOrders(t, newBroker, f, OrderScript())
	ctx, cancel := callCtx(t)
	defer cancel()
	r := LimitOrder("conf-key", "3", "150")
	first, err := ot.PlaceOrder(ctx, r)
	if err != nil {
		t.Fatalf("PlaceOrder: %v", err)
	}
	again, err := ot.PlaceOrder(ctx, r)
	if err != nil || again.OrderID != first.OrderID || !again.Existing {
		t.Errorf("the same key again: %+v, %v; want order %d with Existing", again, err, first.OrderID)
	}
	other := r
	other.LimitPrice = broker.MustDecimal("151")
	_, err = ot.PlaceOrder(ctx, other)
	wantIs(t, "the same key with another limit price", err, broker.ErrInvalidArgument)
	oneGatewayOrder(t, env, "conf-key", first.OrderID)

	c := LimitOrder("conf-key-at-once", "3", "150")
	const n = 6
	var wg sync.WaitGroup
	res := make([]broker.PlacedOrder, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = ot.PlaceOrder(ctx, c)
		}()
	}
	wg.Wait()
	o := oneGatewayOrder(t, env, "conf-key-at-once", 0)
	fresh := 0
	for i := range n {
		switch {
		case errs[i] != nil:
			t.Errorf("concurrent PlaceOrder %d: %v", i, errs[i])
		case res[i].OrderID != o.ID:
			t.Errorf("concurrent PlaceOrder %d returned order %d, the gateway holds %d", i, res[i].OrderID, o.ID)
		case !res[i].Existing:
			fresh++
		}
	}
	if fresh > 1 {
		t.Errorf("%d concurrent PlaceOrders with one key said they placed it", fresh)
	}
}

// TestOrderReject: orders the gateway refuses (IB 201: no such instrument;
// 110: a price off the tick) fail with ErrRejected carrying the *APIError,
// and the key may then be placed again.
func TestOrderReject(t TB, newBroker Factory, f Features) {
	env, _, ot := connectedOrders(t, newBroker, f, OrderScript())
	ctx, cancel := callCtx(t)
	defer cancel()
	unknown := MarketOrder("conf-rej-1", "1")
	unknown.Contract.Symbol = "NOSUCH"
	_, err := ot.PlaceOrder(ctx, unknown)
	if wantIs(t, "PlaceOrder of an unknown instrument", err, broker.ErrRejected) {
		var apiErr *broker.APIError
		if !errors.As(err, &apiErr) || apiErr.Code != fakes.CodeOrderRejected {
			t.Errorf("the rejection %v carries no *APIError with code 201", err)
		}
	}
	if got := gatewayOrders(env, "conf-rej-1"); len(got) != 1 || got[0].RejectCode != fakes.CodeOrderRejected {
		t.Errorf("the gateway holds %+v under the rejected key, want one order rejected with 201", got)
	}
	off := LimitOrder("conf-rej-2", "1", "180.555")
	_, err = ot.PlaceOrder(ctx, off)
	wantIs(t, "PlaceOrder with a price off the tick", err, broker.ErrRejected)
	off.LimitPrice = broker.MustDecimal("180.55")
	if p, err := ot.PlaceOrder(ctx, off); err != nil {
		t.Errorf("the rejected key again with a good price: %v", err)
	} else if p.Existing {
		t.Errorf("the rejected key again: Existing, but nothing existed")
	}
}

// TestOrderCancelMid: a PlaceOrder whose context ends while the gateway is
// slow to acknowledge (Faults.AckDelay) either succeeds or fails with
// ErrOutcomeUnknown or the context's error, never placing a second order; a
// PlaceOrder of the same key afterwards returns the one order.
func TestOrderCancelMid(t TB, newBroker Factory, f Features) {
	s := OrderScript()
	s.Faults.AckDelay = 300 * time.Millisecond
	env, _, ot := connectedOrders(t, newBroker, f, s)
	r := LimitOrder("conf-mid", "1", "150")
	short, cancelShort := context.WithTimeout(t.Context(), 50*time.Millisecond)
	_, err := ot.PlaceOrder(short, r)
	cancelShort()
	if err != nil && !errors.Is(err, broker.ErrOutcomeUnknown) && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("PlaceOrder cut short: %v, want success, ErrOutcomeUnknown or the context's error", err)
	}
	ctx, cancel := callCtx(t)
	defer cancel()
	p, err := ot.PlaceOrder(ctx, r)
	if err != nil {
		t.Fatalf("PlaceOrder of the same key afterwards: %v", err)
	}
	oneGatewayOrder(t, env, "conf-mid", p.OrderID)
	if n := len(env.Gateway.Orders()); n != 1 {
		t.Errorf("the gateway holds %d orders, want 1: %+v", n, env.Gateway.Orders())
	}
}

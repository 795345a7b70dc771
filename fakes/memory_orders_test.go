package fakes_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// memOrderScript is DefaultScript with a market for AAPL at 190.5 and one for
// MSFT filling in lots of 4.
func memOrderScript() fakes.Script {
	s := fakes.DefaultScript()
	s.NextValidID = 100
	s.Quotes = []fakes.Quote{
		{Symbol: "AAPL", ConID: 265598, Price: broker.MustDecimal("190.5")},
		{Symbol: "MSFT", ConID: 272093, Price: broker.MustDecimal("410"), FillSize: broker.MustDecimal("4")},
	}
	return s
}

func memConnected(t *testing.T, s fakes.Script, p broker.ConnectParams) *fakes.Memory {
	t.Helper()
	m := fakes.NewMemory(s)
	t.Cleanup(func() { m.Close() })
	if _, err := m.Connect(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	return m
}

func mkt(key, action, qty, symbol string) broker.OrderRequest {
	return broker.OrderRequest{Key: key, Contract: broker.Contract{Symbol: symbol, SecType: "STK", Exchange: "SMART", Currency: "USD"},
		Action: action, Quantity: broker.MustDecimal(qty), OrderType: broker.OrderMarket}
}

func lmt(key, action, qty, symbol, price string) broker.OrderRequest {
	r := mkt(key, action, qty, symbol)
	r.OrderType, r.LimitPrice = broker.OrderLimit, broker.MustDecimal(price)
	return r
}

// nextEvent waits for the next order event, with a deadline.
func nextEvent(t *testing.T, ch <-chan broker.OrderEvent) broker.OrderEvent {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("order event channel closed")
		}
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no order event within 5s")
	}
	return broker.OrderEvent{}
}

// TestMemoryMarketOrderFills: a market order fills at once at the scripted
// quote; the answer says Filled, the stream reports Submitted, the fill and
// Filled, and the fill shows in Executions, Positions and CompletedOrders.
func TestMemoryMarketOrderFills(t *testing.T) {
	m := memConnected(t, memOrderScript(), broker.ConnectParams{ClientID: 3})
	ctx := t.Context()
	events, err := m.SubscribeOrders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := m.Positions(ctx)
	got, err := m.PlaceOrder(ctx, mkt("k1", broker.ActionBuy, "10", "AAPL"))
	if err != nil {
		t.Fatal(err)
	}
	if got.OrderID != 100 || got.Key != "k1" || got.Status != broker.StatusFilled || got.Existing || got.PermID == 0 {
		t.Errorf("PlaceOrder = %+v, want id 100 (NextValidID), Filled", got)
	}
	e := nextEvent(t, events)
	if e.Kind != broker.OrderEventStatus || e.Order.Status != fakes.StatusSubmitted || e.Order.OrderRef != "k1" || e.Order.ClientID != 3 {
		t.Errorf("first event %+v, want Submitted of k1", e)
	}
	e = nextEvent(t, events)
	if e.Kind != broker.OrderEventFill || e.Fill == nil || e.Fill.Price.String() != "190.5" || e.Fill.Shares.String() != "10" ||
		e.Fill.OrderRef != "k1" || e.Order.OrderID != 100 || e.Fill.Side != "BOT" {
		t.Errorf("second event %+v (fill %+v), want the fill of 10 at 190.5", e, e.Fill)
	}
	if e = nextEvent(t, events); e.Kind != broker.OrderEventStatus || e.Order.Status != broker.StatusFilled || e.Order.Filled.String() != "10" {
		t.Errorf("third event %+v, want Filled", e)
	}
	xs, _ := m.Executions(ctx, broker.ExecutionFilter{})
	if len(xs) == 0 || xs[len(xs)-1].OrderRef != "k1" || xs[len(xs)-1].OrderID != 100 {
		t.Errorf("executions do not end with the fill: %+v", xs)
	}
	after, _ := m.Positions(ctx)
	if qty := positionOf(after, 265598, "AAPL"); qty != "110" || positionOf(before, 265598, "AAPL") != "100" {
		t.Errorf("AAPL position %s after buying 10 (was %s)", qty, positionOf(before, 265598, "AAPL"))
	}
	done, _ := m.CompletedOrders(ctx)
	open, _ := m.OpenOrders(ctx)
	if len(done) != 1 || done[0].Status != broker.StatusFilled || done[0].OrderRef != "k1" || len(open) != 0 {
		t.Errorf("completed %+v, open %+v", done, open)
	}
}

func positionOf(ps []broker.Position, conID int64, symbol string) string {
	for _, p := range ps {
		if p.Contract.ConID == conID && p.Contract.Symbol == symbol && p.Account == "DU1234567" {
			return p.Quantity.String()
		}
	}
	return "none"
}

// TestMemoryLimitOrderRestsUntilThePriceCrosses: a buy limit below the market
// rests (Submitted, in OpenOrders); SetPrice above it fills nothing, at it fills
// it; with a fill size, one lot per crossing.
func TestMemoryLimitOrderRestsUntilThePriceCrosses(t *testing.T) {
	m := memConnected(t, memOrderScript(), broker.ConnectParams{ClientID: 1})
	ctx := t.Context()
	events, err := m.SubscribeOrders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.PlaceOrder(ctx, lmt("l1", broker.ActionBuy, "8", "MSFT", "400"))
	if err != nil || got.Status != fakes.StatusSubmitted {
		t.Fatalf("PlaceOrder = %+v, %v; want Submitted", got, err)
	}
	nextEvent(t, events)
	if open, _ := m.OpenOrders(ctx); len(open) != 1 || open[0].LimitPrice.String() != "400" || open[0].OrderID != got.OrderID {
		t.Errorf("open orders %+v", open)
	}
	if n := m.SetPrice("MSFT", broker.MustDecimal("400.01")); n != 0 {
		t.Errorf("SetPrice above a buy limit made %d executions", n)
	}
	if n := m.SetPrice("MSFT", broker.MustDecimal("400")); n != 1 {
		t.Errorf("SetPrice at the limit made %d executions, want 1 lot of 4", n)
	}
	if e := nextEvent(t, events); e.Kind != broker.OrderEventFill || e.Fill.Shares.String() != "4" || e.Fill.Price.String() != "400" {
		t.Errorf("fill event %+v", e)
	}
	if e := nextEvent(t, events); e.Order.Status != fakes.StatusSubmitted || e.Order.Filled.String() != "4" {
		t.Errorf("status after the partial fill %+v", e)
	}
	m.SetPrice("MSFT", broker.MustDecimal("399"))
	nextEvent(t, events)
	if e := nextEvent(t, events); e.Order.Status != broker.StatusFilled || e.Order.Filled.String() != "8" {
		t.Errorf("status after the second crossing %+v", e)
	}
}

// TestMemoryOrderIDsAndKeys: ids start at the Script's NextValidID, grow by
// one per order (rejected ones included) and are never reused, across
// sessions; a key used before returns its order with Existing and places
// nothing.
func TestMemoryOrderIDsAndKeys(t *testing.T) {
	m := memConnected(t, memOrderScript(), broker.ConnectParams{ClientID: 1})
	ctx := t.Context()
	a, err := m.PlaceOrder(ctx, lmt("a", broker.ActionBuy, "1", "AAPL", "100"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.PlaceOrder(ctx, mkt("bad", broker.ActionBuy, "1", "NOSUCH")); !errors.Is(err, broker.ErrRejected) ||
		broker.IBCode(err) != fakes.CodeOrderRejected {
		t.Errorf("unknown symbol: %v, want ErrRejected (201)", err)
	}
	again, err := m.PlaceOrder(ctx, lmt("a", broker.ActionBuy, "1", "AAPL", "100"))
	if err != nil || !again.Existing || again.OrderID != a.OrderID || again.Key != "a" {
		t.Errorf("key reuse = %+v, %v; want order %d with Existing", again, err, a.OrderID)
	}
	if _, err := m.PlaceOrder(ctx, lmt("a", broker.ActionSell, "5", "AAPL", "300")); !errors.Is(err, broker.ErrInvalidArgument) {
		t.Errorf("key reuse with other terms = %v, want ErrInvalidArgument", err)
	}
	if err := m.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Connect(ctx, broker.ConnectParams{ClientID: 1}); err != nil {
		t.Fatal(err)
	}
	b, err := m.PlaceOrder(ctx, mkt("b", broker.ActionSell, "1", "AAPL"))
	if err != nil {
		t.Fatal(err)
	}
	if a.OrderID != 100 || b.OrderID != 102 {
		t.Errorf("ids %d, %d; want 100, then 102 (101 went to the rejected order)", a.OrderID, b.OrderID)
	}
	if n := len(m.Orders()); n != 3 {
		t.Errorf("the book holds %d orders, want 3 (a, the rejected one, b)", n)
	}
}

// TestMemoryReadOnly: a read-only session refuses every order operation
// locally; a Script with ReadOnlyAPI refuses placement with IB's 321, which
// is ErrReadOnly too. Nothing reaches the book either way.
func TestMemoryReadOnly(t *testing.T) {
	m := memConnected(t, memOrderScript(), broker.ConnectParams{ReadOnly: true})
	ctx := t.Context()
	if _, err := m.PlaceOrder(ctx, mkt("r", broker.ActionBuy, "1", "AAPL")); !errors.Is(err, broker.ErrReadOnly) {
		t.Errorf("PlaceOrder read-only = %v", err)
	}
	if _, err := m.ModifyOrder(ctx, 1, mkt("r", broker.ActionBuy, "1", "AAPL")); !errors.Is(err, broker.ErrReadOnly) {
		t.Errorf("ModifyOrder read-only = %v", err)
	}
	if err := m.CancelOrder(ctx, 1); !errors.Is(err, broker.ErrReadOnly) {
		t.Errorf("CancelOrder read-only = %v", err)
	}
	s := memOrderScript()
	s.ReadOnlyAPI = true
	g := memConnected(t, s, broker.ConnectParams{})
	if _, err := g.PlaceOrder(ctx, mkt("r", broker.ActionBuy, "1", "AAPL")); !errors.Is(err, broker.ErrReadOnly) || broker.IBCode(err) != 321 {
		t.Errorf("PlaceOrder on a read-only API = %v, want ErrReadOnly (321)", err)
	}
	if len(m.Orders())+len(g.Orders()) != 0 {
		t.Errorf("read-only refusals reached the book")
	}
}

// TestMemoryCancelAndModify: cancel makes a working order Cancelled (and
// reports it); an unknown id is ErrNotFound (10147); a final order is left
// alone. Modify moves a resting limit through the market, which fills it;
// modifying an unknown or final order is ErrNotFound.
func TestMemoryCancelAndModify(t *testing.T) {
	m := memConnected(t, memOrderScript(), broker.ConnectParams{ClientID: 2})
	ctx := t.Context()
	events, err := m.SubscribeOrders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := m.PlaceOrder(ctx, lmt("c", broker.ActionBuy, "1", "AAPL", "100"))
	nextEvent(t, events)
	if err := m.CancelOrder(ctx, c.OrderID); err != nil {
		t.Fatal(err)
	}
	if e := nextEvent(t, events); e.Order.Status != broker.StatusCancelled || e.Order.OrderID != c.OrderID {
		t.Errorf("cancel event %+v", e)
	}
	if err := m.CancelOrder(ctx, c.OrderID); err != nil {
		t.Errorf("cancelling a cancelled order = %v, want nil (already final)", err)
	}
	if err := m.CancelOrder(ctx, 9999); !errors.Is(err, broker.ErrNotFound) || broker.IBCode(err) != fakes.CodeOrderNotFound {
		t.Errorf("cancel unknown = %v, want ErrNotFound (10147)", err)
	}
	if _, err := m.ModifyOrder(ctx, c.OrderID, lmt("c", broker.ActionBuy, "1", "AAPL", "200")); !errors.Is(err, broker.ErrNotFound) {
		t.Errorf("modify a cancelled order = %v, want ErrNotFound", err)
	}

	d, _ := m.PlaceOrder(ctx, lmt("d", broker.ActionBuy, "2", "AAPL", "100"))
	nextEvent(t, events)
	if _, err := m.ModifyOrder(ctx, d.OrderID, lmt("d", broker.ActionBuy, "2", "AAPL", "100.001")); !errors.Is(err, broker.ErrRejected) ||
		broker.IBCode(err) != fakes.CodePriceIncrement {
		t.Errorf("modify to an off-tick price = %v, want ErrRejected (110)", err)
	}
	got, err := m.ModifyOrder(ctx, d.OrderID, lmt("d", broker.ActionBuy, "2", "AAPL", "191"))
	if err != nil || got.Status != broker.StatusFilled || got.OrderID != d.OrderID {
		t.Fatalf("modify through the market = %+v, %v; want Filled, same id", got, err)
	}
	if e := nextEvent(t, events); e.Order.LimitPrice.String() != "191" || e.Order.Status != fakes.StatusSubmitted {
		t.Errorf("modification event %+v", e)
	}
	if o := m.Orders()[1]; o.Modifications != 1 || o.LmtPrice.String() != "191" {
		t.Errorf("book after modify: %+v", o)
	}
}

// TestMemoryOrderArguments: a malformed request is ErrInvalidArgument; no
// session is ErrNotConnected; after Close, ErrClosed.
func TestMemoryOrderArguments(t *testing.T) {
	m := fakes.NewMemory(memOrderScript())
	ctx := t.Context()
	if _, err := m.PlaceOrder(ctx, mkt("k", broker.ActionBuy, "1", "AAPL")); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("PlaceOrder without a session = %v", err)
	}
	if _, err := m.SubscribeOrders(ctx); !errors.Is(err, broker.ErrNotConnected) {
		t.Errorf("SubscribeOrders without a session = %v", err)
	}
	if _, err := m.Connect(ctx, broker.ConnectParams{}); err != nil {
		t.Fatal(err)
	}
	bad := mkt("k", broker.ActionBuy, "0", "AAPL")
	if _, err := m.PlaceOrder(ctx, bad); !errors.Is(err, broker.ErrInvalidArgument) {
		t.Errorf("quantity 0 = %v", err)
	}
	m.Close()
	if _, err := m.PlaceOrder(ctx, mkt("k", broker.ActionBuy, "1", "AAPL")); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("after Close = %v", err)
	}
}

// TestMemoryOrderStreamEnds: the channel closes when its context ends, on
// Disconnect and on Close.
func TestMemoryOrderStreamEnds(t *testing.T) {
	m := memConnected(t, memOrderScript(), broker.ConnectParams{})
	cctx, cancel := context.WithCancel(t.Context())
	byCtx, _ := m.SubscribeOrders(cctx)
	byDisconnect, _ := m.SubscribeOrders(t.Context())
	cancel()
	if err := m.Disconnect(t.Context()); err != nil {
		t.Fatal(err)
	}
	m.Connect(t.Context(), broker.ConnectParams{})
	byClose, _ := m.SubscribeOrders(t.Context())
	m.Close()
	for name, ch := range map[string]<-chan broker.OrderEvent{"ctx": byCtx, "disconnect": byDisconnect, "close": byClose} {
		select {
		case _, ok := <-ch:
			if ok {
				t.Errorf("%s: an event instead of the end", name)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s: channel still open", name)
		}
	}
}

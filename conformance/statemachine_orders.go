// The state machine's order actions: a model of the orders the Broker placed
// (broker.OrderTrader), checked against what the gateway holds.

package conformance

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"pgregory.net/rapid"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// The market the machine's orders trade: a symbol no generated script uses,
// at machineOrderPrice to start with, tick 0.01, every order filled at once
// when the price crosses it (no FillSize), so that an order's status follows
// from its limit and the price alone.
const (
	machineOrderSymbol = "ORDR"
	machineOrderConID  = 999001
)

var (
	machineOrderPrice    = broker.MustDecimal("100")
	machineOrderContract = broker.Contract{Symbol: machineOrderSymbol, SecType: "STK", Exchange: "SMART", Currency: "USD"}
)

// withOrderMarket adds the machine's order market to s, and keeps its next
// valid order id within TWS's 32-bit order ids (a Broker refuses to place
// beyond: ibkr's TestOrderIDsAre32Bit).
func withOrderMarket(s fakes.Script) fakes.Script {
	s = s.Clone()
	if s.NextValidID > 1<<30 {
		s.NextValidID %= 1 << 30
	}
	s.Quotes = append(s.Quotes, fakes.Quote{Symbol: machineOrderSymbol, ConID: machineOrderConID, Price: machineOrderPrice})
	return s
}

// modelOrder is one order the model expects at the gateway.
type modelOrder struct {
	req     broker.OrderRequest
	id      int64
	status  string // fakes.StatusSubmitted, StatusFilled or StatusCancelled
	account string // the account the gateway gave it (its script's first, then)
	session int    // machine.session when placed: the plain adapter dedupes keys per session
}

// orderModel is the machine's model of orders.
type orderModel struct {
	orders []*modelOrder // in placement order, as the gateway lists them
	price  broker.Decimal
	keys   int // keys drawn so far
}

func (m *machine) trader(t *rapid.T) broker.OrderTrader {
	ot, ok := m.b.(broker.OrderTrader)
	if !ok {
		t.Skip("the Broker does not implement broker.OrderTrader")
	}
	if m.om.price.IsZero() {
		m.om.price = machineOrderPrice
	}
	return ot
}

// crosses reports whether a limit order r fills at price p.
func crosses(r broker.OrderRequest, p broker.Decimal) bool {
	if r.OrderType == broker.OrderMarket {
		return true
	}
	c := p.Cmp(r.LimitPrice)
	return (r.Action == broker.ActionBuy && c <= 0) || (r.Action == broker.ActionSell && c >= 0)
}

// drawPrice draws a price near the market, off the tick one time in ten if
// offTick allows it (the market itself always is on the tick).
func (m *machine) drawPrice(t *rapid.T, label string, offTick bool) (broker.Decimal, bool) {
	ticks := rapid.IntRange(-30, 30).Draw(t, label+"Ticks")
	p := new(big.Rat).Add(m.om.price.Rat(), big.NewRat(int64(ticks), 100))
	onTick := !offTick || rapid.IntRange(0, 9).Draw(t, label+"OffTick") != 0
	if !onTick {
		p.Add(p, big.NewRat(1, 200))
	}
	if p.Sign() <= 0 {
		p.SetInt64(1)
		onTick = true
	}
	d, err := broker.ParseDecimal(p.FloatString(3))
	if err != nil {
		panic(err)
	}
	return d, onTick
}

// placeOrderCall places a new order, or again one whose key the Broker is
// bound to recognise (this session's, or any with Features.Reconnects), with
// the same terms (the one order, Existing) or other terms
// (ErrInvalidArgument).
func (m *machine) placeOrderCall(t *rapid.T) {
	ot := m.trader(t)
	var reusable []*modelOrder
	for _, o := range m.om.orders {
		if m.f.Reconnects || o.session == m.session {
			reusable = append(reusable, o)
		}
	}
	ctx, cancel := m.ctx(t)
	defer cancel()
	if len(reusable) > 0 && m.connected && !m.dead && rapid.IntRange(0, 2).Draw(t, "reuseKey") == 0 {
		o := rapid.SampledFrom(reusable).Draw(t, "reused")
		r := o.req
		same := rapid.IntRange(0, 3).Draw(t, "sameTerms") != 0
		if !same {
			r.Quantity = broker.DecimalFromInt(int64(rapid.IntRange(6, 9).Draw(t, "otherQty")))
		}
		p, err := ot.PlaceOrder(ctx, r)
		if !same {
			expect(t, "PlaceOrder of a known key with other terms", err, broker.ErrInvalidArgument)
			return
		}
		expect(t, "PlaceOrder of a known key", err, nil)
		if p.OrderID != o.id || !p.Existing || p.Key != r.Key {
			t.Fatalf("PlaceOrder of key %s again = %+v, want order %d, Existing", r.Key, p, o.id)
		}
		return
	}
	r, onTick := m.drawOrderRequest(t)
	p, err := ot.PlaceOrder(ctx, r)
	want := m.wantErr()
	if want == nil && !onTick {
		want = broker.ErrRejected // IB 110
	}
	expect(t, "PlaceOrder "+r.Key, err, want)
	if err != nil {
		return
	}
	if p.OrderID <= 0 || p.Key != r.Key || p.Existing {
		t.Fatalf("PlaceOrder(%s) = %+v", r.Key, p)
	}
	if slices.ContainsFunc(m.om.orders, func(o *modelOrder) bool { return o.id == p.OrderID }) {
		t.Fatalf("PlaceOrder(%s) reused order id %d", r.Key, p.OrderID)
	}
	m.placed(t, r, p.OrderID)
}

// drawOrderRequest draws a new order under a fresh key: market or limit, buy
// or sell; onTick is false for a limit price the gateway refuses (IB 110).
func (m *machine) drawOrderRequest(t *rapid.T) (r broker.OrderRequest, onTick bool) {
	m.om.keys++
	r = broker.OrderRequest{Key: fmt.Sprintf("sm-%d", m.om.keys), Contract: machineOrderContract,
		Action:    rapid.SampledFrom([]string{broker.ActionBuy, broker.ActionSell}).Draw(t, "action"),
		Quantity:  broker.DecimalFromInt(int64(rapid.IntRange(1, 5).Draw(t, "qty"))),
		OrderType: rapid.SampledFrom([]string{broker.OrderMarket, broker.OrderLimit, broker.OrderLimit}).Draw(t, "type")}
	onTick = true
	if r.OrderType == broker.OrderLimit {
		r.LimitPrice, onTick = m.drawPrice(t, "limit", true)
	}
	return r, onTick
}

// placed adds the order r, placed under id, to the model.
func (m *machine) placed(t *rapid.T, r broker.OrderRequest, id int64) {
	o := &modelOrder{req: r, id: id, status: fakes.StatusSubmitted, session: m.session}
	if at := gatewayOrders(m.env, r.Key); len(at) > 0 {
		o.account = at[len(at)-1].Account
	}
	if crosses(r, m.om.price) {
		o.status = fakes.StatusFilled
	}
	m.om.orders = append(m.om.orders, o)
	m.afterOrders(t)
}

// placeCancelMid stalls the gateway, places a new order and cancels the call
// once its first request reached the gateway (PLACE_ORDER, or a read a
// Broker that reconciles by key makes before placing): the call must return
// within PromptBound, successfully or with ErrOutcomeUnknown or
// context.Canceled. The gateway then answers; if the PLACE_ORDER went out
// the order exists, and either way a PlaceOrder of the same key must leave
// exactly one order at the gateway and return it (Existing if it was there).
func (m *machine) placeCancelMid(t *rapid.T) {
	ot := m.trader(t)
	if !m.connected || m.dead {
		t.Skip("needs a session")
	}
	r, onTick := m.drawOrderRequest(t)
	if !onTick {
		r.LimitPrice = m.om.price
	}
	m.env.Gateway.Stall()
	defer m.env.Gateway.Resume()
	var first []requestCount
	for _, id := range []int{reqPlaceOrder, reqOpenOrders, reqAllOpenOrders, reqCompletedOrders, reqExecutions} {
		first = append(first, requestCount{id, m.env.Gateway.RequestCount(id) + 1})
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type result struct {
		p   broker.PlacedOrder
		err error
	}
	done := make(chan result, 1)
	go func() {
		p, err := ot.PlaceOrder(ctx, r)
		done <- result{p, err}
	}()
	if err := awaitFirstRequest(m.env, done, first...); err != nil {
		t.Fatalf("PlaceOrder %s: %v", r.Key, err)
	}
	cancel()
	select {
	case res := <-done:
		if res.err != nil && !errors.Is(res.err, broker.ErrOutcomeUnknown) && !errors.Is(res.err, context.Canceled) {
			t.Fatalf("PlaceOrder %s cancelled mid-call: %v, want success, ErrOutcomeUnknown or context.Canceled", r.Key, res.err)
		}
	case <-time.After(2 * PromptBound):
		m.env.Gateway.Resume()
		t.Fatalf("PlaceOrder %s did not return within %v of its context being cancelled", r.Key, 2*PromptBound)
	}
	m.env.Gateway.Resume()
	ctx2, cancel2 := m.ctx(t)
	defer cancel2()
	expect(t, "Ping after a PlaceOrder cancelled mid-call", m.b.Ping(ctx2), nil) // whatever it sent has been read
	before := gatewayOrders(m.env, r.Key)
	if len(before) > 1 {
		t.Fatalf("the gateway holds %d orders of key %s after one cancelled PlaceOrder", len(before), r.Key)
	}
	p, err := ot.PlaceOrder(ctx2, r)
	expect(t, "PlaceOrder "+r.Key+" again after a call cancelled mid-call", err, nil)
	after := gatewayOrders(m.env, r.Key)
	if len(after) != 1 || p.OrderID != after[0].ID || p.Existing != (len(before) == 1) {
		t.Fatalf("PlaceOrder %s again = %+v; the gateway held %d orders of the key before and holds %+v now (want one, Existing if it was there)",
			r.Key, p, len(before), after)
	}
	m.placed(t, r, after[0].ID)
}

// drawOrder draws one of the model's orders, or (nil) an id nobody used.
func (m *machine) drawOrder(t *rapid.T) *modelOrder {
	n := len(m.om.orders)
	i := rapid.IntRange(0, n).Draw(t, "order")
	if i == n {
		return nil
	}
	return m.om.orders[i]
}

// cancelOrderCall cancels a model order (nil for a final one, which stays as
// it is) or an unknown id (ErrNotFound).
func (m *machine) cancelOrderCall(t *rapid.T) {
	ot := m.trader(t)
	o := m.drawOrder(t)
	ctx, cancel := m.ctx(t)
	defer cancel()
	if o == nil {
		expect(t, "CancelOrder of an unknown id", ot.CancelOrder(ctx, 7_777_777), m.wantErrOr(broker.ErrNotFound))
		return
	}
	err := ot.CancelOrder(ctx, o.id)
	expect(t, fmt.Sprintf("CancelOrder(%d, %s, %s)", o.id, o.req.Key, o.status), err, m.wantErr())
	if err == nil && o.status == fakes.StatusSubmitted {
		o.status = fakes.StatusCancelled
	}
	m.afterOrders(t)
}

// modifyOrderCall gives a model limit order a new limit price: a working one
// takes it (and fills if the price now crosses it); a final one is
// ErrNotFound.
func (m *machine) modifyOrderCall(t *rapid.T) {
	ot := m.trader(t)
	var limits []*modelOrder
	for _, o := range m.om.orders {
		if o.req.OrderType == broker.OrderLimit {
			limits = append(limits, o)
		}
	}
	if len(limits) == 0 {
		t.Skip("no limit order to modify")
	}
	o := rapid.SampledFrom(limits).Draw(t, "modified")
	r := o.req
	px, onTick := m.drawPrice(t, "newLimit", true)
	if !onTick {
		px = m.om.price
	}
	r.LimitPrice = px
	ctx, cancel := m.ctx(t)
	defer cancel()
	p, err := ot.ModifyOrder(ctx, o.id, r)
	want := m.wantErr()
	switch {
	case want != nil:
	case o.status != fakes.StatusSubmitted:
		want = broker.ErrNotFound
	case len(m.script.Accounts) > 0 && !slices.Contains(m.script.Accounts, o.account):
		want = broker.ErrRejected // the gateway no longer manages its account (SetScript): IB 201
	}
	expect(t, fmt.Sprintf("ModifyOrder(%d, %s, %s)", o.id, o.req.Key, o.status), err, want)
	if err != nil {
		return
	}
	if p.OrderID != o.id {
		t.Fatalf("ModifyOrder(%d) = %+v", o.id, p)
	}
	o.req.LimitPrice = px
	if crosses(o.req, m.om.price) {
		o.status = fakes.StatusFilled
	}
	m.afterOrders(t)
}

// movePrice moves the market (fakes.Gateway.SetPrice), connected or not: the
// working orders it crosses fill at the gateway, reported to the Broker if it
// is connected.
func (m *machine) movePrice(t *rapid.T) {
	m.trader(t)
	p, _ := m.drawPrice(t, "price", false)
	if p.Cmp(m.om.price) == 0 {
		t.Skip("the price does not move")
	}
	m.env.Gateway.SetPrice(machineOrderSymbol, p)
	m.om.price = p
	for _, o := range m.om.orders {
		if o.status == fakes.StatusSubmitted && crosses(o.req, p) {
			o.status = fakes.StatusFilled
		}
	}
	m.afterOrders(t)
}

// afterOrders takes the gateway's script again (fills moved its positions and
// added executions) and checks the orders invariant.
func (m *machine) afterOrders(t *rapid.T) {
	m.script = m.env.Gateway.Script()
	m.orderInvariant(t)
}

// orderInvariant: the gateway holds exactly the model's orders (rejected ones
// aside), one per key, under the model's ids, in the model's statuses.
func (m *machine) orderInvariant(t TB) {
	var got []string
	for _, o := range m.env.Gateway.Orders() {
		if o.Status != fakes.StatusRejected {
			got = append(got, fmt.Sprintf("%s #%d %s", o.OrderRef, o.ID, o.Status))
		}
	}
	var want []string
	for _, o := range m.om.orders {
		want = append(want, fmt.Sprintf("%s #%d %s", o.req.Key, o.id, o.status))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the gateway holds orders %v; the model %v", got, want)
	}
}

// ordersCall reads the open or the completed orders and compares them with
// the model: the working orders of this client, or every filled or
// cancelled one, in placement order.
func (m *machine) ordersCall(t *rapid.T) {
	ctx, cancel := m.ctx(t)
	defer cancel()
	call, name := m.b.OpenOrders, "OpenOrders"
	completed := rapid.Bool().Draw(t, "completed")
	if completed {
		call, name = m.b.CompletedOrders, "CompletedOrders"
	}
	got, err := call(ctx)
	want := []string{}
	for _, o := range m.om.orders {
		if (o.status == fakes.StatusSubmitted) != completed {
			want = append(want, fmt.Sprintf("%s %s", o.req.Key, o.status))
		}
	}
	seen := []string{}
	for _, o := range got {
		seen = append(seen, fmt.Sprintf("%s %s", o.OrderRef, o.Status))
	}
	if e := compare(err, m.wantErr(), want, seen); e != nil {
		t.Fatalf("%s: %v", name, e)
	}
}

// orderActions are the order actions of the machine.
func (m *machine) orderActions() map[string]func(*rapid.T) {
	return map[string]func(*rapid.T){
		"PlaceOrder":  m.placeOrderCall,
		"CancelOrder": m.cancelOrderCall,
		"ModifyOrder": m.modifyOrderCall,
		"MovePrice":   m.movePrice,
		"PlaceMid":    m.placeCancelMid,
	}
}

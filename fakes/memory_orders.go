package fakes

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/brokerkit/brokerkit/broker"
)

// This file is the Memory's order book: the Gateway's order simulator
// (orders.go, orders_fill.go) without a wire. Orders are matched by the same
// code (orderBook.tryFill against the Script's Quotes and SetPrice), validated
// by the same rules (validateOrder: error 201 or 110) and fill into the
// Memory's Script (executions and positions), so a Memory answers what the ibkr
// adapter answers over a Gateway serving the same Script.

// memOrders is the Memory's order state; the Memory's mu guards it.
type memOrders struct {
	book     *orderBook                         // orders, ids, SetPrice's prices; outlives sessions, as the gateway's does
	nextID   int64                              // the next order id to hand out; 0 until the first session
	clientID int64                              // the session's client id
	readOnly bool                               // the session was opened with ConnectParams.ReadOnly
	subs     map[*broker.OrderQueue]func() bool // SubscribeOrders channels and their context's stop
	reqs     map[string]broker.OrderRequest     // the request of each key placed, TIF upper-cased
}

// opSubscribeOrders names SubscribeOrders to a Hook.
const opSubscribeOrders broker.Op = "subscribe_orders"

var (
	_ broker.OrderTrader   = (*Memory)(nil)
	_ broker.OrderStreamer = (*Memory)(nil)
)

// startOrdersLocked begins a session's order state (Connect): its client id
// and read-only flag; ids continue past every id used before.
func (m *Memory) startOrdersLocked(p broker.ConnectParams) {
	o := &m.orders
	if o.book == nil {
		o.book = newOrderBook()
	}
	o.clientID, o.readOnly = p.ClientID, p.ReadOnly
	o.nextID = max(o.nextID, m.script.nextValidID(), o.book.maxID+1)
}

// orderSessionLocked is the Script to trade on, or why the session cannot
// trade: ErrClosed, ErrNotConnected, ErrReadOnly (nothing is sent).
func (m *Memory) orderSessionLocked(op broker.Op) error {
	switch {
	case m.closed:
		return broker.ErrClosed
	case !m.connected:
		return broker.ErrNotConnected
	case m.orders.readOnly:
		return fmt.Errorf("fakes: memory: %s: %w: the session was opened with ReadOnly", op, broker.ErrReadOnly)
	}
	return nil
}

// PlaceOrder implements broker.OrderTrader as the adapter over the Gateway
// does: r is validated (broker.ErrInvalidArgument), a read-only session
// refuses it (broker.ErrReadOnly), a Script with ReadOnlyAPI answers IB's
// read-only 321, an order the simulator refuses fails with its IB error (201
// or 110, matching broker.ErrRejected). A key already used by an order of
// the book returns that order with Existing set and places nothing, or fails
// with broker.ErrInvalidArgument if the terms differ (as the adapter does
// within a session); a key whose order was rejected may be placed again. Otherwise
// the order gets the next id (never one used before), is acknowledged
// (Submitted, or PreSubmitted when held) and trades at once if the market
// allows: the answer carries its latest status.
func (m *Memory) PlaceOrder(ctx context.Context, r broker.OrderRequest) (broker.PlacedOrder, error) {
	if err := m.begin(ctx, broker.OpPlaceOrder, nil); err != nil {
		return broker.PlacedOrder{}, err
	}
	if err := r.Validate(); err != nil {
		return broker.PlacedOrder{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.orderSessionLocked(broker.OpPlaceOrder); err != nil {
		return broker.PlacedOrder{}, err
	}
	b := m.orders.book
	r.TIF = strings.ToUpper(r.TIF)
	for _, o := range b.orders {
		if o.OrderRef == r.Key && o.Status != StatusRejected {
			if q, ok := m.orders.reqs[r.Key]; ok && q != r {
				return broker.PlacedOrder{}, fmt.Errorf("%w: order key %s was placed with other terms (order %d)",
					broker.ErrInvalidArgument, r.Key, o.ID)
			}
			return broker.PlacedOrder{OrderID: o.ID, PermID: o.PermID, Key: r.Key, Status: o.Status, Existing: true}, nil
		}
	}
	id := m.orders.nextID
	m.orders.nextID++
	if m.script.ReadOnlyAPI {
		return broker.PlacedOrder{}, &broker.APIError{ReqID: id, Code: CodeValidationError, Message: textReadOnly}
	}
	o := orderFromRequest(r, id, m.orders.clientID)
	if o.Account == "" && len(m.script.Accounts) > 0 {
		o.Account = m.script.Accounts[0]
	}
	b.maxID = max(b.maxID, id)
	b.perm++
	o.PermID = b.perm
	b.orders = append(b.orders, o)
	b.byKey[orderKey{o.ClientID, id}] = o
	if code, msg := validateOrder(m.script, o); code != 0 {
		o.Status, o.RejectCode = StatusRejected, code
		return broker.PlacedOrder{}, &broker.APIError{ReqID: id, Code: code, Message: msg}
	}
	if q, ok := m.script.quote(o.Contract); ok && q.ConID != 0 && o.Contract.ConID == 0 {
		o.Contract.ConID = q.ConID
	}
	o.Status = StatusSubmitted
	if !o.Transmit {
		o.Status = StatusPreSubmitted
	}
	if m.orders.reqs == nil {
		m.orders.reqs = map[string]broker.OrderRequest{}
	}
	m.orders.reqs[r.Key] = r
	m.publishOrdersLocked(append([]orderEvent{snapshot(o, false)}, m.tryFillLocked(o)...))
	return broker.PlacedOrder{OrderID: o.ID, PermID: o.PermID, Key: r.Key, Status: o.Status}, nil
}

// orderFromRequest is the simulator's Order for r, not yet validated.
func orderFromRequest(r broker.OrderRequest, id, client int64) *Order {
	tif := strings.ToUpper(r.TIF)
	if tif == "" {
		tif = broker.TIFDay
	}
	return &Order{ID: id, ClientID: client, Account: r.Account, Contract: r.Contract, Action: r.Action,
		OrderType: r.OrderType, Quantity: r.Quantity, LmtPrice: r.LimitPrice, AuxPrice: r.AuxPrice,
		HasLmt: !r.LimitPrice.IsZero(), HasAux: !r.AuxPrice.IsZero(), TIF: tif, OrderRef: r.Key,
		Transmit: !r.Hold, OutsideRTH: r.OutsideRTH}
}

// tryFillLocked trades o on the Memory's market, filling into its Script.
func (m *Memory) tryFillLocked(o *Order) []orderEvent {
	return m.orders.book.tryFill(m.script, o, true, func(e Execution) { m.script = m.script.withFill(e) })
}

// ModifyOrder implements broker.OrderTrader: new terms for a working order of
// this session's client id, validated as at placement (a quantity below what
// has filled is rejected with 201); a held order is transmitted unless r
// holds it again. An id with no working order fails with broker.ErrNotFound.
func (m *Memory) ModifyOrder(ctx context.Context, orderID int64, r broker.OrderRequest) (broker.PlacedOrder, error) {
	if err := m.begin(ctx, broker.OpModifyOrder, nil); err != nil {
		return broker.PlacedOrder{}, err
	}
	if err := r.Validate(); err != nil {
		return broker.PlacedOrder{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.orderSessionLocked(broker.OpModifyOrder); err != nil {
		return broker.PlacedOrder{}, err
	}
	o, ok := m.orders.book.byKey[orderKey{m.orders.clientID, orderID}]
	if !ok || !o.working() {
		return broker.PlacedOrder{}, fmt.Errorf("fakes: memory: modify order %d: %w: no working order of client %d has this id",
			orderID, broker.ErrNotFound, m.orders.clientID)
	}
	next := *orderFromRequest(r, o.ID, o.ClientID)
	next.PermID, next.Account, next.Contract = o.PermID, o.Account, o.Contract
	next.Filled, next.AvgFillPrice, next.LastFillPrice = o.Filled, o.AvgFillPrice, o.LastFillPrice
	next.Modifications, next.ExecIDs, next.Status = o.Modifications+1, o.ExecIDs, o.Status
	if code, msg := validateOrder(m.script, &next); code != 0 {
		return broker.PlacedOrder{}, &broker.APIError{ReqID: orderID, Code: code, Message: msg}
	}
	if next.Quantity.Cmp(o.Filled) < 0 {
		return broker.PlacedOrder{}, &broker.APIError{ReqID: orderID, Code: CodeOrderRejected,
			Message: "Order rejected - reason:quantity below the filled quantity"}
	}
	if next.Transmit {
		next.Status = StatusSubmitted
	}
	*o = next
	m.publishOrdersLocked(append([]orderEvent{snapshot(o, false)}, m.tryFillLocked(o)...))
	return broker.PlacedOrder{OrderID: o.ID, PermID: o.PermID, Key: o.OrderRef, Status: o.Status}, nil
}

// CancelOrder implements broker.OrderTrader: a working order of this
// session's client id becomes Cancelled; one already final is left as it is
// (nil, as the port says); an id this client never used fails with IB's 10147
// (broker.ErrNotFound).
func (m *Memory) CancelOrder(ctx context.Context, orderID int64) error {
	if err := m.begin(ctx, broker.OpCancelOrder, nil); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.orderSessionLocked(broker.OpCancelOrder); err != nil {
		return err
	}
	o, ok := m.orders.book.byKey[orderKey{m.orders.clientID, orderID}]
	switch {
	case !ok || o.Status == StatusRejected:
		return &broker.APIError{ReqID: orderID, Code: CodeOrderNotFound,
			Message: "OrderId " + i64(orderID) + " that needs to be cancelled is not found."}
	case o.done():
		return nil
	}
	o.Status, o.CompletedTime = StatusCancelled, execTimeNow()
	m.publishOrdersLocked([]orderEvent{snapshot(o, true)})
	return nil
}

// SetPrice sets the last price of symbol, as Gateway.SetPrice does, and fills
// the working orders it crosses, reporting them to SubscribeOrders. It
// returns how many executions it made.
func (m *Memory) SetPrice(symbol string, price broker.Decimal) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.orders.book == nil {
		m.orders.book = newOrderBook()
	}
	b := m.orders.book
	b.prices[symbol] = price
	n := 0
	for _, o := range b.orders {
		if o.working() && o.Contract.Symbol == symbol {
			evs := b.tryFill(m.script, o, false, func(e Execution) { m.script = m.script.withFill(e) })
			n += countExecs(evs)
			m.publishOrdersLocked(evs)
		}
	}
	return n
}

// Orders returns copies of every order the Memory has received, in order of
// arrival (as Gateway.Orders).
func (m *Memory) Orders() []Order {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.orders.book == nil {
		return nil
	}
	out := make([]Order, len(m.orders.book.orders))
	for i, o := range m.orders.book.orders {
		out[i] = *o
		out[i].ExecIDs = slices.Clone(o.ExecIDs)
	}
	return out
}

// SubscribeOrders implements broker.OrderStreamer: the channel receives every
// status change and fill of the session's orders from now on (placement,
// modification, SetPrice, cancel), queued as broker.OrderQueue queues them.
// It is closed when ctx is done, on Disconnect and on Close.
func (m *Memory) SubscribeOrders(ctx context.Context) (<-chan broker.OrderEvent, error) {
	if err := m.begin(ctx, opSubscribeOrders, nil); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || !m.connected {
		return nil, m.sessionErrLocked()
	}
	q := broker.NewOrderQueue(broker.OrderEventBuffer)
	if m.orders.subs == nil {
		m.orders.subs = map[*broker.OrderQueue]func() bool{}
	}
	m.orders.subs[q] = context.AfterFunc(ctx, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.endOrderSubLocked(q)
	})
	return q.C(), nil
}

// endOrderSubLocked closes q's channel, once.
func (m *Memory) endOrderSubLocked(q *broker.OrderQueue) {
	if stop, ok := m.orders.subs[q]; ok {
		delete(m.orders.subs, q)
		stop()
		q.Close()
	}
}

// endOrderSubsLocked ends every order subscription (Disconnect, Close).
func (m *Memory) endOrderSubsLocked() {
	for q := range m.orders.subs {
		m.endOrderSubLocked(q)
	}
}

// publishOrdersLocked hands evs to every order subscriber, as the adapter
// reports them: a snapshot as a status event, an execution as a fill event
// (with its commission, which the simulator reports at once).
func (m *Memory) publishOrdersLocked(evs []orderEvent) {
	if len(m.orders.subs) == 0 {
		return
	}
	for _, e := range evs {
		be := e.broker()
		for q := range m.orders.subs {
			q.Send(be)
		}
	}
}

// broker is e as an OrderStreamer reports it.
func (e orderEvent) broker() broker.OrderEvent {
	if e.exec != nil {
		x := e.exec.broker()
		return broker.OrderEvent{Kind: broker.OrderEventFill, Fill: &x,
			Order: broker.Order{OrderID: x.OrderID, PermID: x.PermID, ClientID: x.ClientID, Account: x.Account,
				Contract: x.Contract, OrderRef: x.OrderRef}}
	}
	return broker.OrderEvent{Kind: broker.OrderEventStatus, Order: e.order.Broker(true)}
}

// Broker is o as OpenOrders (open true) or CompletedOrders reports it through
// the adapter: prices are IB doubles (Double), and COMPLETED_ORDER carries
// neither the order id nor the client id.
func (o Order) Broker(open bool) broker.Order {
	c := o.Contract
	c.Strike = Double(c.Strike)
	x := broker.Order{OrderID: o.ID, PermID: o.PermID, ClientID: o.ClientID, Account: o.Account, Contract: c,
		Action: o.Action, OrderType: o.OrderType, TotalQuantity: o.Quantity, TIF: o.TIF, OrderRef: o.OrderRef,
		Status: o.Status, Filled: o.Filled}
	if o.HasLmt {
		x.LimitPrice = Double(o.LmtPrice)
	}
	if o.HasAux {
		x.AuxPrice = Double(o.AuxPrice)
	}
	if !open {
		x.OrderID, x.ClientID = 0, 0
	}
	return x
}

// openOrdersLocked is what OpenOrders answers: the working orders of the
// session's client id (client 0: every client's), oldest first.
func (m *Memory) openOrdersLocked() []broker.Order {
	out := []broker.Order{}
	if m.orders.book == nil {
		return out
	}
	for _, o := range m.orders.book.orders {
		if o.working() && (m.orders.clientID == 0 || o.ClientID == m.orders.clientID) {
			out = append(out, o.Broker(true))
		}
	}
	return out
}

// completedOrdersLocked is what CompletedOrders answers: every filled or
// cancelled order, oldest first.
func (m *Memory) completedOrdersLocked() []broker.Order {
	out := []broker.Order{}
	if m.orders.book == nil {
		return out
	}
	for _, o := range m.orders.book.orders {
		if o.Status == StatusFilled || o.Status == StatusCancelled {
			out = append(out, o.Broker(false))
		}
	}
	return out
}

package robust

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/brokerkit/brokerkit/broker"
)

// The scripted test double of the order tests: bookGW is the "gateway", one
// order book shared by every inner Broker a traderFarm dials, as IB keeps
// orders across connections; trader is an inner Broker (a stub) that places
// orders in it, with a script of faults at each point of the exchange.

// faultPoint is where a scripted fault strikes in one PlaceOrder, ModifyOrder
// or CancelOrder of a trader.
type faultPoint int

const (
	beforeSend faultPoint = iota + 1 // nothing reaches the gateway
	afterSend                        // the gateway applies it; its ack never comes back
	afterAck                         // the ack reaches the inner Broker; its reply never reaches robust
)

func (p faultPoint) String() string {
	return map[faultPoint]string{beforeSend: "before send", afterSend: "after send", afterAck: "after ack"}[p]
}

// fault is one scripted failure: where, the inner Broker's error, and what
// becomes of the session (drop: the socket closes; crash: the worker dies).
type fault struct {
	at    faultPoint
	err   error
	drop  bool
	crash bool
	wait  chan struct{} // if set, the call blocks here (at its point) until it is closed
	then  func()        // if set, runs after the session's fate (the gateway moves on)
}

// bookGW is the order book of the scripted gateway.
type bookGW struct {
	mu     sync.Mutex
	orders []broker.Order
	nextID int64
	perm   int64
	sends  int // PlaceOrders that reached the gateway
	faults map[broker.Op][]fault
	ids    map[[2]int64]bool // (client, id) pairs ever used: a reuse is IB's 103
	reused int
}

func newBookGW() *bookGW {
	return &bookGW{nextID: 1, perm: 5000, faults: map[broker.Op][]fault{}, ids: map[[2]int64]bool{}}
}

func (g *bookGW) script(op broker.Op, fs ...fault) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.faults[op] = append(g.faults[op], fs...)
}

func (g *bookGW) next(op broker.Op) (fault, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.faults[op]) == 0 {
		return fault{}, false
	}
	f := g.faults[op][0]
	g.faults[op] = g.faults[op][1:]
	return f, true
}

// snapshot returns the book's orders.
func (g *bookGW) snapshot() []broker.Order {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]broker.Order(nil), g.orders...)
}

func (g *bookGW) sent() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sends
}

// byKey counts the book's orders per key.
func (g *bookGW) byKey() map[string]int {
	n := map[string]int{}
	for _, o := range g.snapshot() {
		n[o.OrderRef]++
	}
	return n
}

// fill fills the order id of client as the gateway would: it is no longer open.
func (g *bookGW) fill(client, id int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := range g.orders {
		if o := &g.orders[i]; o.ClientID == client && o.OrderID == id {
			o.Status, o.Filled = broker.StatusFilled, o.TotalQuantity
		}
	}
}

func (g *bookGW) find(client, id int64) *broker.Order {
	for i := range g.orders {
		if o := &g.orders[i]; o.ClientID == client && o.OrderID == id {
			return o
		}
	}
	return nil
}

// trader is a stub that trades on a bookGW.
type trader struct {
	*stub
	gw *bookGW

	smu  sync.Mutex
	subs []chan broker.OrderEvent
}

var (
	_ broker.OrderTrader   = (*trader)(nil)
	_ broker.OrderStreamer = (*trader)(nil)
)

func (t *trader) clientID() int64 {
	ids := t.clientIDs()
	if len(ids) == 0 {
		return -1
	}
	return ids[len(ids)-1]
}

// strike applies f at point p of a call: it waits, ends the session as
// scripted and returns the scripted error (nil: no fault here).
func (t *trader) strike(ctx context.Context, f fault, ok bool, p faultPoint) error {
	if !ok || f.at != p {
		return nil
	}
	if f.wait != nil {
		select {
		case <-f.wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	switch {
	case f.crash:
		t.crash()
	case f.drop:
		t.drop()
	}
	if f.then != nil {
		f.then()
	}
	return f.err
}

// crash kills the worker: every call fails with ErrUnavailable from now on.
func (t *trader) crash() {
	t.kill()
	t.endStreams()
}

// drop closes the session's socket.
func (t *trader) drop() {
	t.dropSession()
	t.endStreams()
}

func (t *trader) endStreams() {
	t.smu.Lock()
	defer t.smu.Unlock()
	for _, c := range t.subs {
		close(c)
	}
	t.subs = nil
}

func (t *trader) emit(e broker.OrderEvent) {
	t.smu.Lock()
	defer t.smu.Unlock()
	for _, c := range t.subs {
		c <- e
	}
}

func (t *trader) PlaceOrder(ctx context.Context, r broker.OrderRequest) (broker.PlacedOrder, error) {
	if err := t.run(ctx, broker.OpPlaceOrder, true); err != nil {
		return broker.PlacedOrder{}, err
	}
	f, ok := t.gw.next(broker.OpPlaceOrder)
	if err := t.strike(ctx, f, ok, beforeSend); err != nil {
		return broker.PlacedOrder{}, err
	}
	cid := t.clientID()
	g := t.gw
	g.mu.Lock()
	g.sends++
	id := g.nextID
	g.nextID++
	if g.ids[[2]int64{cid, id}] {
		g.reused++
	}
	g.ids[[2]int64{cid, id}] = true
	g.perm++
	o := broker.Order{OrderID: id, PermID: g.perm, ClientID: cid, Account: "DU111", Contract: r.Contract,
		Action: r.Action, OrderType: r.OrderType, TotalQuantity: r.Quantity, LimitPrice: r.LimitPrice,
		AuxPrice: r.AuxPrice, TIF: r.TIF, OrderRef: r.Key, Status: "Submitted"}
	g.orders = append(g.orders, o)
	g.mu.Unlock()
	if err := t.strike(ctx, f, ok, afterSend); err != nil {
		return broker.PlacedOrder{}, err
	}
	t.emit(broker.OrderEvent{Kind: broker.OrderEventStatus, Order: o})
	if err := t.strike(ctx, f, ok, afterAck); err != nil {
		return broker.PlacedOrder{}, err
	}
	return broker.PlacedOrder{OrderID: id, PermID: o.PermID, Key: r.Key, Status: o.Status}, nil
}

func (t *trader) ModifyOrder(ctx context.Context, id int64, r broker.OrderRequest) (broker.PlacedOrder, error) {
	if err := t.run(ctx, broker.OpModifyOrder, true); err != nil {
		return broker.PlacedOrder{}, err
	}
	f, ok := t.gw.next(broker.OpModifyOrder)
	if err := t.strike(ctx, f, ok, beforeSend); err != nil {
		return broker.PlacedOrder{}, err
	}
	g := t.gw
	g.mu.Lock()
	o := g.find(t.clientID(), id)
	if o == nil || broker.TerminalStatus(o.Status) {
		g.mu.Unlock()
		return broker.PlacedOrder{}, fmt.Errorf("%w: order %d", broker.ErrNotFound, id)
	}
	o.TotalQuantity, o.LimitPrice, o.AuxPrice, o.OrderType = r.Quantity, r.LimitPrice, r.AuxPrice, r.OrderType
	po := broker.PlacedOrder{OrderID: id, PermID: o.PermID, Key: r.Key, Status: o.Status}
	g.mu.Unlock()
	if err := t.strike(ctx, f, ok, afterSend); err != nil {
		return broker.PlacedOrder{}, err
	}
	if err := t.strike(ctx, f, ok, afterAck); err != nil {
		return broker.PlacedOrder{}, err
	}
	return po, nil
}

func (t *trader) CancelOrder(ctx context.Context, id int64) error {
	if err := t.run(ctx, broker.OpCancelOrder, true); err != nil {
		return err
	}
	f, ok := t.gw.next(broker.OpCancelOrder)
	if err := t.strike(ctx, f, ok, beforeSend); err != nil {
		return err
	}
	g := t.gw
	g.mu.Lock()
	o := g.find(t.clientID(), id)
	switch {
	case o == nil:
		g.mu.Unlock()
		return fmt.Errorf("%w: order %d", broker.ErrNotFound, id)
	case broker.TerminalStatus(o.Status):
		g.mu.Unlock()
		return &broker.APIError{ReqID: id, Code: 10148, Message: "cannot be cancelled, state: " + o.Status}
	}
	o.Status = broker.StatusCancelled
	g.mu.Unlock()
	if err := t.strike(ctx, f, ok, afterSend); err != nil {
		return err
	}
	return t.strike(ctx, f, ok, afterAck)
}

// OpenOrders lists the working orders of this session's client id, as IB does.
func (t *trader) OpenOrders(ctx context.Context) ([]broker.Order, error) {
	if err := t.run(ctx, broker.OpOpenOrders, true); err != nil {
		return nil, err
	}
	cid := t.clientID()
	var out []broker.Order
	for _, o := range t.gw.snapshot() {
		if o.ClientID == cid && !broker.TerminalStatus(o.Status) {
			out = append(out, o)
		}
	}
	return out, nil
}

// CompletedOrders lists every client's final orders, without order ids, as IB does.
func (t *trader) CompletedOrders(ctx context.Context) ([]broker.Order, error) {
	if err := t.run(ctx, broker.OpCompletedOrders, true); err != nil {
		return nil, err
	}
	var out []broker.Order
	for _, o := range t.gw.snapshot() {
		if broker.TerminalStatus(o.Status) {
			o.OrderID = 0
			out = append(out, o)
		}
	}
	return out, nil
}

// Executions has one execution per filled order.
func (t *trader) Executions(ctx context.Context, _ broker.ExecutionFilter) ([]broker.Execution, error) {
	if err := t.run(ctx, broker.OpExecutions, true); err != nil {
		return nil, err
	}
	var out []broker.Execution
	for _, o := range t.gw.snapshot() {
		if o.Status == broker.StatusFilled {
			out = append(out, broker.Execution{ExecID: fmt.Sprintf("e%d", o.PermID), OrderID: o.OrderID, PermID: o.PermID,
				ClientID: o.ClientID, OrderRef: o.OrderRef, Shares: o.TotalQuantity, CumQty: o.TotalQuantity})
		}
	}
	return out, nil
}

func (t *trader) SubscribeOrders(ctx context.Context) (<-chan broker.OrderEvent, error) {
	if err := t.run(ctx, broker.OpPing, true); err != nil {
		return nil, err
	}
	c := make(chan broker.OrderEvent, broker.OrderEventBuffer)
	t.smu.Lock()
	t.subs = append(t.subs, c)
	t.smu.Unlock()
	context.AfterFunc(ctx, func() {
		t.smu.Lock()
		defer t.smu.Unlock()
		for i, x := range t.subs {
			if x == c {
				t.subs = append(t.subs[:i], t.subs[i+1:]...)
				close(c)
				return
			}
		}
	})
	return c, nil
}

func (t *trader) Disconnect(ctx context.Context) error {
	err := t.stub.Disconnect(ctx)
	t.endStreams()
	return err
}

func (t *trader) Close() error {
	err := t.stub.Close()
	t.endStreams()
	return err
}

// traderFarm dials traders on one bookGW, numbered from 0.
type traderFarm struct {
	gw   *bookGW
	prep func(*trader) // applied to each new trader

	mu      sync.Mutex
	traders []*trader
}

func newTraderFarm() *traderFarm { return &traderFarm{gw: newBookGW()} }

func (f *traderFarm) dial(context.Context) (broker.Broker, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &trader{stub: newStub(len(f.traders)), gw: f.gw}
	if f.prep != nil {
		f.prep(t)
	}
	f.traders = append(f.traders, t)
	return t, nil
}

func (f *traderFarm) n() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.traders)
}

func (f *traderFarm) get(t testing.TB, i int) *trader {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if i >= len(f.traders) {
		t.Fatalf("trader %d was never dialed (%d dialed)", i, len(f.traders))
	}
	return f.traders[i]
}

// placeCalls counts the PlaceOrder calls that reached any trader.
func (f *traderFarm) placeCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, t := range f.traders {
		n += t.count(broker.OpPlaceOrder)
	}
	return n
}

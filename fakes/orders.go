package fakes

import (
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// This file is the gateway's order simulator (docs/adr/0013): one book per
// Gateway, shared by its connections as IB's orders belong to the account.
// An order is visible to the client id that placed it and to client 0;
// REQ_ALL_OPEN_ORDERS lists every client's.

// Order statuses the simulator reports, as IB spells them.
const (
	StatusPreSubmitted = "PreSubmitted" // accepted, not transmitted
	StatusSubmitted    = "Submitted"    // working
	StatusFilled       = "Filled"
	StatusCancelled    = "Cancelled"
	StatusRejected     = "Rejected" // refused with error 201 or 110 (no ORDER_STATUS is sent)
)

// Error codes of the order simulator, as real TWS sends them.
const (
	CodeDuplicateOrderID = 103
	CodePriceIncrement   = 110
	CodeOrderRejected    = 201
	CodeOrderCancelled   = 202 // follows the Cancelled status, to the client that cancelled
	CodeCannotCancel     = 10148
)

// Order is one order the simulator holds (Gateway.Orders): what the client
// asked for, then what became of it.
type Order struct {
	ID       int64 // the client's order id
	PermID   int64 // the gateway's permanent id, unique across clients
	ClientID int64 // the API client id that placed it
	Account  string
	Contract broker.Contract // as placed, with the quote's con id if it had none
	Action   string          // BUY or SELL
	// OrderType is MKT, LMT, STP or STP LMT.
	OrderType          string
	Quantity           broker.Decimal
	LmtPrice, AuxPrice broker.Decimal // the limit and stop prices
	HasLmt, HasAux     bool           // whether the prices were given
	TIF                string         // DAY (default), GTC or IOC
	OrderRef           string         // the client's reference, carried to every report
	Transmit           bool           // false: held as PreSubmitted, never filled
	OutsideRTH         bool
	Status             string         // one of the Status* constants
	Filled             broker.Decimal // quantity filled so far
	AvgFillPrice       broker.Decimal
	LastFillPrice      broker.Decimal
	Modifications      int    // accepted PLACE_ORDERs with this id after the first
	RejectCode         int64  // the error that rejected it, if Status is Rejected
	CompletedTime      string // when it was filled or cancelled
	ExecIDs            []string
}

// Remaining is the quantity not yet filled.
func (o Order) Remaining() broker.Decimal {
	if o.Status == StatusCancelled || o.Status == StatusRejected {
		return broker.Decimal{}
	}
	return ratDecimal(new(big.Rat).Sub(o.Quantity.Rat(), o.Filled.Rat()))
}

func (o Order) working() bool { return o.Status == StatusSubmitted || o.Status == StatusPreSubmitted }

func (o Order) done() bool { return !o.working() }

type orderKey struct{ client, id int64 }

// orderEvent is one thing the simulator reports about an order: a snapshot
// of it (OPEN_ORDER and ORDER_STATUS, or ORDER_STATUS alone) or an execution
// (EXECUTION_DATA and COMMISSION_REPORT). render lays it out per recipient.
type orderEvent struct {
	order      Order
	statusOnly bool
	exec       *Execution
}

func snapshot(o *Order, statusOnly bool) orderEvent {
	c := *o
	c.ExecIDs = nil
	return orderEvent{order: c, statusOnly: statusOnly}
}

// orderBook is the simulator's state; its mutex is taken before g.mu, never after.
type orderBook struct {
	mu     sync.Mutex
	orders []*Order
	byKey  map[orderKey]*Order
	maxID  int64
	perm   int64
	execs  int64
	prices map[string]broker.Decimal // SetPrice overrides of Quote.Price
	// dropNext: the next accepted new order resets its connection (DropNextOrder).
	dropNext bool
}

func newOrderBook() *orderBook {
	return &orderBook{byKey: map[orderKey]*Order{}, prices: map[string]broker.Decimal{}, perm: 1000000000}
}

// Orders returns copies of every order the simulator has received, in order
// of arrival: working, filled, cancelled and rejected ones.
func (g *Gateway) Orders() []Order {
	b := g.orders
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Order, len(b.orders))
	for i, o := range b.orders {
		out[i] = *o
		out[i].ExecIDs = slices.Clone(o.ExecIDs)
	}
	return out
}

// DropNextOrder arms a one-shot fault: the next new order the gateway accepts,
// on any connection, is kept and works on (it may fill at once), but its
// connection is reset before any acknowledgement — the client cannot know
// whether the order exists. Faults.DropAfterOrder does the same per
// connection from the script.
func (g *Gateway) DropNextOrder() {
	b := g.orders
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dropNext = true
}

// nextOrderID is what NEXT_VALID_ID says: past every id used, by any client.
func (g *Gateway) nextOrderID(sc Script) int64 {
	b := g.orders
	b.mu.Lock()
	defer b.mu.Unlock()
	return max(sc.nextValidID(), b.maxID+1)
}

// orderHandler answers one order request on connection c at version v.
type orderHandler func(g *Gateway, c *conn, sc Script, v int, fields []string) [][]string

var orderHandlers = map[int]orderHandler{
	inPlaceOrder:         (*Gateway).placeOrder,
	inCancelOrder:        (*Gateway).cancelOrder,
	inReqOpenOrders:      func(g *Gateway, c *conn, _ Script, v int, _ []string) [][]string { return g.openOrders(c, v, false) },
	inReqAllOpenOrders:   func(g *Gateway, c *conn, _ Script, v int, _ []string) [][]string { return g.openOrders(c, v, true) },
	inReqCompletedOrders: (*Gateway).completedOrders,
	inReqIDs: func(g *Gateway, _ *conn, sc Script, _ int, _ []string) [][]string {
		return [][]string{nextValidIDFields(g.nextOrderID(sc))}
	},
}

// answer returns the replies to one request: from the order simulator for
// the requests it serves, else from the handler table (serve.go), which also
// refuses a request too short to read (minFields).
func (c *conn) answer(sc Script, v int, fields []string) [][]string {
	id, err := strconv.Atoi(fields[0])
	if h, ok := orderHandlers[id]; ok && err == nil && len(fields) >= minFields[id] {
		return h(c.g, c, sc, v, fields)
	}
	return replies(sc, v, fields)
}

func (g *Gateway) placeOrder(c *conn, sc Script, v int, fields []string) [][]string {
	if len(fields) < placeOrderMinFields(v) {
		return [][]string{errorFields(v, requestID(v, fields), CodeValidationError,
			"Error validating request.-'bW' : cause - the fake gateway cannot read PLACE_ORDER with "+
				itoa(len(fields))+" fields at server version "+itoa(v))}
	}
	if sc.ReadOnlyAPI {
		return [][]string{errorFields(v, requestID(v, fields), CodeValidationError, textReadOnly)}
	}
	r, err := parseOrderRequest(v, fields)
	if err != nil {
		return [][]string{errorFields(v, requestID(v, fields), CodeValidationError,
			"Error validating request.-'bW' : cause - "+err.Error())}
	}
	client := c.clientID()
	b := g.orders
	b.mu.Lock()
	defer b.mu.Unlock()
	c.ordersSeen++
	if old, ok := b.byKey[orderKey{client, r.id}]; ok {
		if old.done() {
			return [][]string{errorFields(v, r.id, CodeDuplicateOrderID, "Duplicate order id")}
		}
		return g.modifyLocked(c, sc, v, old, r)
	}
	o := &Order{ID: r.id, ClientID: client, Account: r.account, Contract: r.contract, Action: strings.ToUpper(r.action),
		OrderType: strings.ToUpper(r.orderType), Quantity: r.quantity, LmtPrice: r.lmtPrice, AuxPrice: r.auxPrice,
		HasLmt: r.hasLmt, HasAux: r.hasAux, TIF: r.tif, OrderRef: r.ref, Transmit: r.transmit,
		OutsideRTH: r.outsideRTH}
	if o.Account == "" && len(sc.Accounts) > 0 {
		o.Account = sc.Accounts[0]
	}
	if o.TIF == "" {
		o.TIF = "DAY"
	}
	b.maxID = max(b.maxID, r.id)
	b.perm++
	o.PermID = b.perm
	b.orders = append(b.orders, o)
	b.byKey[orderKey{client, r.id}] = o
	if code, msg := validateOrder(sc, o); code != 0 {
		o.Status, o.RejectCode = StatusRejected, code
		return [][]string{errorFields(v, o.ID, code, msg)}
	}
	if q, ok := sc.quote(o.Contract); ok && q.ConID != 0 && o.Contract.ConID == 0 {
		o.Contract.ConID = q.ConID
	}
	o.Status = StatusSubmitted
	if !o.Transmit {
		o.Status = StatusPreSubmitted
	}
	if n := c.faults.DropAfterOrder; (n > 0 && c.ordersSeen == n) || b.dropNext {
		b.dropNext = false
		// The order is accepted and works on; the client never hears of it
		// on this connection. c.close takes g.mu, which comes after b.mu.
		c.log.Debug("fault: dropping the connection before the order's ack", "order", o.ID)
		c.close(true)
		g.pushLocked(c, o, append([]orderEvent{snapshot(o, false)}, g.tryFillLocked(sc, o, true)...))
		return nil
	}
	if !c.sleep(c.faults.AckDelay) {
		g.pushLocked(c, o, append([]orderEvent{snapshot(o, false)}, g.tryFillLocked(sc, o, true)...))
		return nil
	}
	evs := append([]orderEvent{snapshot(o, false)}, g.tryFillLocked(sc, o, true)...)
	g.pushLocked(c, o, evs)
	return render(v, evs)
}

// validateOrder returns the error real TWS gives an order it refuses, or 0.
func validateOrder(sc Script, o *Order) (int64, string) {
	reject := func(reason string) (int64, string) {
		return CodeOrderRejected, "Order rejected - reason:" + reason
	}
	q, ok := sc.quote(o.Contract)
	switch {
	case !ok:
		return reject("No security definition has been found for the request")
	case o.Action != "BUY" && o.Action != "SELL":
		return reject("Invalid action " + o.Action)
	case o.Quantity.Rat().Sign() <= 0:
		return reject("Order quantity must be positive")
	case !slices.Contains(sc.Accounts, o.Account) && len(sc.Accounts) > 0:
		return reject("Invalid account " + o.Account)
	}
	switch o.OrderType {
	case "MKT":
	case "LMT":
		if !o.HasLmt {
			return reject("Limit price missing")
		}
	case "STP":
		if !o.HasAux {
			return reject("Stop price missing")
		}
	case "STP LMT":
		if !o.HasLmt || !o.HasAux {
			return reject("Stop limit order needs a limit and a stop price")
		}
	default:
		return reject("Unsupported order type " + o.OrderType)
	}
	tick := q.MinTick
	if tick.IsZero() {
		tick = broker.MustDecimal("0.01")
	}
	for _, p := range []struct {
		d   broker.Decimal
		set bool
	}{{o.LmtPrice, o.HasLmt}, {o.AuxPrice, o.HasAux}} {
		if p.set && !new(big.Rat).Quo(p.d.Rat(), tick.Rat()).IsInt() {
			return CodePriceIncrement, "The price does not conform to the minimum price variation for this contract."
		}
	}
	return 0, ""
}

// modifyLocked applies a PLACE_ORDER for a working order: new quantity,
// prices and TIF; b.mu is held.
func (g *Gateway) modifyLocked(c *conn, sc Script, v int, o *Order, r orderRequest) [][]string {
	next := *o
	next.Quantity, next.LmtPrice, next.AuxPrice, next.HasLmt, next.HasAux = r.quantity, r.lmtPrice, r.auxPrice, r.hasLmt, r.hasAux
	next.OrderType = strings.ToUpper(r.orderType)
	if r.tif != "" {
		next.TIF = r.tif
	}
	next.OrderRef, next.Transmit = r.ref, r.transmit
	if code, msg := validateOrder(sc, &next); code != 0 {
		return [][]string{errorFields(v, o.ID, code, msg)}
	}
	if next.Quantity.Rat().Cmp(o.Filled.Rat()) < 0 {
		return [][]string{errorFields(v, o.ID, CodeOrderRejected, "Order rejected - reason:quantity below the filled quantity")}
	}
	next.Modifications++
	if next.Transmit {
		next.Status = StatusSubmitted
	}
	*o = next
	evs := append([]orderEvent{snapshot(o, false)}, g.tryFillLocked(sc, o, true)...)
	g.pushLocked(c, o, evs)
	return render(v, evs)
}

func (g *Gateway) cancelOrder(c *conn, _ Script, v int, fields []string) [][]string {
	id := requestID(v, fields)
	b := g.orders
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.byKey[orderKey{c.clientID(), id}]
	switch {
	case !ok || o.Status == StatusRejected:
		return [][]string{errorFields(v, id, CodeOrderNotFound, "OrderId "+i64(id)+" that needs to be cancelled is not found.")}
	case o.done():
		return [][]string{errorFields(v, id, CodeCannotCancel,
			"OrderId "+i64(id)+" that needs to be cancelled cannot be cancelled, state: "+o.Status+".")}
	}
	o.Status, o.CompletedTime = StatusCancelled, execTimeNow()
	evs := []orderEvent{snapshot(o, true)}
	g.pushLocked(c, o, evs)
	return append(render(v, evs), errorFields(v, id, CodeOrderCancelled, "Order Canceled - reason:"))
}

// openOrders answers REQ_OPEN_ORDERS (the client's working orders; client
// 0's: every client's) or REQ_ALL_OPEN_ORDERS (every client's).
func (g *Gateway) openOrders(c *conn, v int, all bool) [][]string {
	client := c.clientID()
	b := g.orders
	b.mu.Lock()
	defer b.mu.Unlock()
	var out [][]string
	for _, o := range b.orders {
		if o.working() && (all || client == 0 || o.ClientID == client) {
			out = append(out, openOrderFields(v, *o), orderStatusFields(v, *o))
		}
	}
	return append(out, openOrderEndFields())
}

// completedOrders answers REQ_COMPLETED_ORDERS: every filled or cancelled
// order of the account, oldest first.
func (g *Gateway) completedOrders(_ *conn, _ Script, v int, _ []string) [][]string {
	b := g.orders
	b.mu.Lock()
	defer b.mu.Unlock()
	var out [][]string
	for _, o := range b.orders {
		if o.Status == StatusFilled || o.Status == StatusCancelled {
			out = append(out, completedOrderFields(v, *o))
		}
	}
	return append(out, completedOrdersEndFields())
}

func execTimeNow() string { return time.Now().UTC().Format("20060102 15:04:05") + " UTC" }

// render lays out evs for a recipient at version v.
func render(v int, evs []orderEvent) [][]string {
	var out [][]string
	for _, e := range evs {
		switch {
		case e.exec != nil:
			out = append(out, executionFields(v, "-1", *e.exec), commissionReportFields(*e.exec))
		case e.statusOnly:
			out = append(out, orderStatusFields(v, e.order))
		default:
			out = append(out, openOrderFields(v, e.order), orderStatusFields(v, e.order))
		}
	}
	return out
}

// pushLocked sends msgs about o to every live API connection that sees o
// (its client id's, and client 0's) except skip, which gets them as replies.
func (g *Gateway) pushLocked(skip *conn, o *Order, evs []orderEvent) {
	if len(evs) == 0 {
		return
	}
	for _, c := range g.live(true) {
		if c == skip || c.halfOpen.Load() {
			continue
		}
		if id := c.clientID(); id != o.ClientID && id != 0 {
			continue
		}
		v := int(c.negotiated.Load())
		for _, m := range render(v, evs) {
			if c.send(m...) != nil {
				break
			}
		}
	}
}

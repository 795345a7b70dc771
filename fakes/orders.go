package fakes

import (
	"fmt"
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
	CodeCannotCancel     = 10148
)

// Quote is the scripted market of one symbol for the order simulator: market
// orders fill at Price, limit and stop orders when Price crosses theirs
// (Gateway.SetPrice moves it). A symbol without a Quote trades at its
// Instrument's last price, if the script has one; an order for any other
// symbol is rejected with error 201.
type Quote struct {
	Symbol string
	ConID  int64          // the contract id fills and positions carry; 0 keeps the order's
	Price  broker.Decimal // last price
	// MinTick is the price increment limit and stop prices must be a multiple
	// of (error 110 otherwise); zero means 0.01.
	MinTick broker.Decimal
	// FillSize > 0 splits fills: a market order fills in executions of at most
	// FillSize; a limit or stop order fills at most FillSize each time the
	// price crosses (placement, modification, SetPrice), so partial fills stay
	// visible. Zero fills everything at once.
	FillSize broker.Decimal
	// Commission per execution, in USD; zero means 1.
	Commission broker.Decimal
}

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

// SetPrice sets the last price of symbol (overriding its Quote) and fills the
// working orders it crosses, reporting to their clients that are connected.
// It returns how many executions it made.
func (g *Gateway) SetPrice(symbol string, price broker.Decimal) int {
	b := g.orders
	b.mu.Lock()
	defer b.mu.Unlock()
	b.prices[symbol] = price
	sc := g.currentScript()
	n := 0
	for _, o := range b.orders {
		if o.working() && o.Contract.Symbol == symbol {
			evs := g.tryFillLocked(sc, o, false)
			n += countExecs(evs)
			g.pushLocked(nil, o, evs)
		}
	}
	return n
}

func countExecs(evs []orderEvent) int {
	n := 0
	for _, e := range evs {
		if e.exec != nil {
			n++
		}
	}
	return n
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

// quote returns the market of c: its Quote, else that of the script's
// Instrument of the same symbol (and security type, if c names one), priced
// at its last (else its close, else its bid/ask midpoint).
func (sc Script) quote(c broker.Contract) (Quote, bool) {
	for _, q := range sc.Quotes {
		if q.Symbol == c.Symbol {
			return q, true
		}
	}
	for _, in := range sc.Instruments {
		ic := in.Contract
		if ic.Symbol != c.Symbol || (c.SecType != "" && !strings.EqualFold(c.SecType, ic.SecType)) ||
			(c.ConID != 0 && c.ConID != ic.ConID) {
			continue
		}
		q := Quote{Symbol: ic.Symbol, ConID: ic.ConID, Price: in.Quote.Last, MinTick: in.MinTick}
		if q.Price.IsZero() {
			q.Price = in.Quote.Close
		}
		if q.Price.IsZero() && !in.Quote.Bid.IsZero() && !in.Quote.Ask.IsZero() {
			mid := new(big.Rat).Add(in.Quote.Bid.Rat(), in.Quote.Ask.Rat())
			q.Price = ratDecimal(mid.Quo(mid, big.NewRat(2, 1)))
		}
		return q, true
	}
	return Quote{}, false
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
	return render(v, evs)
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

// marketable reports whether o trades at price p, and at what price.
func marketable(o *Order, p broker.Decimal) (broker.Decimal, bool) {
	buy := o.Action == "BUY"
	crossed := func(limit broker.Decimal) bool {
		c := p.Cmp(limit)
		return (buy && c <= 0) || (!buy && c >= 0)
	}
	triggered := func() bool {
		c := p.Cmp(o.AuxPrice)
		return (buy && c >= 0) || (!buy && c <= 0)
	}
	switch o.OrderType {
	case "MKT":
		return p, true
	case "LMT":
		return p, crossed(o.LmtPrice)
	case "STP":
		return p, triggered()
	case "STP LMT":
		return p, triggered() && crossed(o.LmtPrice)
	}
	return p, false
}

// tryFillLocked fills what o can fill at the current price and returns the
// messages that report it, in the layout of version v of each recipient
// (pushLocked re-renders them); b.mu is held. placed is true at placement
// and modification, when an IOC order's unfilled rest is cancelled.
func (g *Gateway) tryFillLocked(sc Script, o *Order, placed bool) []orderEvent {
	if o.Status != StatusSubmitted {
		return nil
	}
	q, _ := sc.quote(o.Contract)
	price := q.Price
	if p, ok := g.orders.prices[o.Contract.Symbol]; ok {
		price = p
	}
	var evs []orderEvent
	if px, ok := marketable(o, price); ok && !price.IsZero() {
		for first := true; o.Remaining().Rat().Sign() > 0; first = false {
			if !first && o.OrderType != "MKT" {
				break
			}
			size := o.Remaining()
			if !q.FillSize.IsZero() && q.FillSize.Cmp(size) < 0 {
				size = q.FillSize
			}
			evs = append(evs, g.fillLocked(o, q, size, px)...)
		}
	}
	if placed && o.TIF == "IOC" && o.working() {
		o.Status, o.CompletedTime = StatusCancelled, execTimeNow()
		evs = append(evs, snapshot(o, true))
	}
	return evs
}

// fillLocked executes size of o at px: one execution, the order's new state,
// the position and the script's executions (REQ_EXECUTIONS, REQ_POSITIONS).
func (g *Gateway) fillLocked(o *Order, q Quote, size, px broker.Decimal) []orderEvent {
	b := g.orders
	filled := new(big.Rat).Add(o.Filled.Rat(), size.Rat())
	avg := new(big.Rat).Add(new(big.Rat).Mul(o.AvgFillPrice.Rat(), o.Filled.Rat()), new(big.Rat).Mul(px.Rat(), size.Rat()))
	avg.Quo(avg, filled)
	o.Filled, o.AvgFillPrice, o.LastFillPrice = ratDecimal(filled), ratDecimal(avg), px
	if o.Remaining().Rat().Sign() <= 0 {
		o.Status, o.CompletedTime = StatusFilled, execTimeNow()
	}
	b.execs++
	side := "BOT"
	if o.Action == "SELL" {
		side = "SLD"
	}
	commission := q.Commission
	if commission.IsZero() {
		commission = broker.DecimalFromInt(1)
	}
	e := Execution{ExecID: fmt.Sprintf("0000f4k3.%08x.01.01", b.execs), OrderID: o.ID, PermID: o.PermID,
		ClientID: o.ClientID, Account: o.Account, Contract: o.Contract, Time: execTimeNow(), Exchange: "SMART",
		Side: side, Shares: size, Price: px, CumQty: o.Filled, AvgPrice: o.AvgFillPrice, OrderRef: o.OrderRef,
		Commission: commission, CommissionCurrency: "USD"}
	o.ExecIDs = append(o.ExecIDs, e.ExecID)
	g.recordFill(e)
	return []orderEvent{{exec: &e}, snapshot(o, false)}
}

// recordFill adds e to the script's executions and moves the position.
func (g *Gateway) recordFill(e Execution) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.script.Clone()
	s.Executions = append(s.Executions, e)
	delta := e.Shares.Rat()
	if e.Side == "SLD" {
		delta.Neg(delta)
	}
	i := slices.IndexFunc(s.Positions, func(p broker.Position) bool {
		return p.Account == e.Account && p.Contract.ConID == e.Contract.ConID && p.Contract.Symbol == e.Contract.Symbol
	})
	if i < 0 {
		s.Positions = append(s.Positions, broker.Position{Account: e.Account, Contract: e.Contract})
		i = len(s.Positions) - 1
	}
	p := &s.Positions[i]
	old := p.Quantity.Rat()
	qty := new(big.Rat).Add(old, delta)
	switch {
	case qty.Sign() == 0:
		p.AvgCost = broker.Decimal{}
	case old.Sign() == 0 || old.Sign() != qty.Sign():
		p.AvgCost = ratDecimal(new(big.Rat).Mul(e.Price.Rat(), multiplier(e.Contract).Rat()))
	case old.Sign() == delta.Sign(): // adding: weighted average cost
		cost := new(big.Rat).Add(new(big.Rat).Mul(p.AvgCost.Rat(), new(big.Rat).Abs(old)),
			new(big.Rat).Mul(new(big.Rat).Mul(e.Price.Rat(), multiplier(e.Contract).Rat()), new(big.Rat).Abs(delta)))
		p.AvgCost = ratDecimal(cost.Quo(cost, new(big.Rat).Abs(qty)))
	}
	p.Quantity = ratDecimal(qty)
	g.script = s
}

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

// validateQuotes reports a quote the simulator cannot use: an empty or
// duplicate symbol, NUL in it, or a negative price, tick, size or commission.
func (s Script) validateQuotes(bad func(string, ...any) error) error {
	seen := map[string]bool{}
	for i, q := range s.Quotes {
		if q.Symbol == "" || strings.IndexByte(q.Symbol, 0) >= 0 || seen[q.Symbol] {
			return bad("quote %d: symbol %q is empty, contains NUL or repeats", i, q.Symbol)
		}
		seen[q.Symbol] = true
		for _, d := range []broker.Decimal{q.Price, q.MinTick, q.FillSize, q.Commission} {
			if d.Rat().Sign() < 0 {
				return bad("quote %d (%s): negative price, tick, fill size or commission", i, q.Symbol)
			}
		}
	}
	return nil
}

// jsonOrderQuote is a Quote in the script's JSON form (decimals as strings).
type jsonOrderQuote struct {
	Symbol     string `json:"symbol"`
	ConID      int64  `json:"con_id,omitempty"`
	Price      string `json:"price"`
	MinTick    string `json:"min_tick,omitempty"`
	FillSize   string `json:"fill_size,omitempty"`
	Commission string `json:"commission,omitempty"`
}

func marshalQuotes(qs []Quote) []jsonOrderQuote {
	var out []jsonOrderQuote
	opt := func(d broker.Decimal) string {
		if d.IsZero() {
			return ""
		}
		return d.String()
	}
	for _, q := range qs {
		out = append(out, jsonOrderQuote{Symbol: q.Symbol, ConID: q.ConID, Price: q.Price.String(),
			MinTick: opt(q.MinTick), FillSize: opt(q.FillSize), Commission: opt(q.Commission)})
	}
	return out
}

func unmarshalQuotes(js []jsonOrderQuote, bad func(string, ...any) error) ([]Quote, error) {
	var out []Quote
	for i, j := range js {
		q := Quote{Symbol: j.Symbol, ConID: j.ConID}
		for _, f := range []struct {
			dst  *broker.Decimal
			text string
			name string
		}{{&q.Price, j.Price, "price"}, {&q.MinTick, j.MinTick, "min_tick"}, {&q.FillSize, j.FillSize, "fill_size"},
			{&q.Commission, j.Commission, "commission"}} {
			if f.text == "" && f.name != "price" {
				continue
			}
			d, err := broker.ParseDecimal(f.text)
			if err != nil {
				return nil, bad("quotes[%d].%s: %v", i, f.name, err)
			}
			*f.dst = d
		}
		out = append(out, q)
	}
	return out, nil
}

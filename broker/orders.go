package broker

import (
	"context"
	"fmt"
	"strings"
)

// Order placement types (PlaceOrder, ModifyOrder, CancelOrder). docs/adr/0016
// records the decisions: the caller's idempotency key travels in the order's
// orderRef, placement is never retried blindly, and an outcome the Broker
// cannot know is ErrOutcomeUnknown rather than a guess.

// The order types PlaceOrder accepts (IB's orderType).
const (
	OrderMarket    = "MKT"
	OrderLimit     = "LMT"
	OrderStop      = "STP"
	OrderStopLimit = "STP LMT"
)

// The times in force PlaceOrder accepts (IB's tif).
const (
	TIFDay = "DAY"
	TIFGTC = "GTC"
	TIFIOC = "IOC"
)

// The actions PlaceOrder accepts.
const (
	ActionBuy  = "BUY"
	ActionSell = "SELL"
)

// MaxOrderKey bounds the length of an idempotency key (IB's orderRef is free
// text; brokerkit keeps keys short and printable so that every transport and
// the gateway carry them unchanged).
const MaxOrderKey = 64

// OrderRequest is one order to place, or the new terms of an order to modify.
// Its JSON form is the stdiojson wire shape.
type OrderRequest struct {
	// Key is the caller's idempotency key, unique per intended order. It is
	// sent as the order's orderRef: two PlaceOrders with the same Key make at
	// most one order, and a Broker that restores sessions (robust) finds the
	// order by it after a crash. 1 to MaxOrderKey printable ASCII characters.
	Key        string   `json:"key"`
	Account    string   `json:"account,omitempty"` // "" lets the gateway choose (the only managed account)
	Contract   Contract `json:"contract"`
	Action     string   `json:"action"`     // ActionBuy or ActionSell
	Quantity   Decimal  `json:"quantity"`   // positive, exact
	OrderType  string   `json:"order_type"` // OrderMarket, OrderLimit, OrderStop or OrderStopLimit
	LimitPrice Decimal  `json:"limit_price,omitempty"`
	AuxPrice   Decimal  `json:"aux_price,omitempty"` // the stop price of STP and STP LMT
	TIF        string   `json:"tif,omitempty"`       // TIFDay (default), TIFGTC or TIFIOC
	OutsideRTH bool     `json:"outside_rth,omitempty"`
	// Hold is IB's transmit flag inverted, so that the zero value transmits:
	// a held order is created in TWS but not sent to the exchange.
	Hold bool `json:"hold,omitempty"`
}

// PlacedOrder is what PlaceOrder and ModifyOrder learned: the order's id,
// its key and the latest status the gateway reported (possibly none yet).
type PlacedOrder struct {
	OrderID int64  `json:"order_id"`
	PermID  int64  `json:"perm_id,omitempty"`
	Key     string `json:"key"`
	Status  string `json:"status,omitempty"` // PreSubmitted, Submitted, Filled, ...
	// Existing is true when the order was already at the gateway under Key
	// (found by reconciliation) and PlaceOrder did not send it again.
	Existing bool `json:"existing,omitempty"`
}

// The order statuses IB reports that are final: the order will change no more.
const (
	StatusFilled       = "Filled"
	StatusCancelled    = "Cancelled"
	StatusAPICancelled = "ApiCancelled"
	StatusInactive     = "Inactive"
)

// TerminalStatus reports whether an order in status s will change no more.
func TerminalStatus(s string) bool {
	switch s {
	case StatusFilled, StatusCancelled, StatusAPICancelled, StatusInactive:
		return true
	}
	return false
}

// ValidateKey reports, wrapping ErrInvalidArgument, what is wrong with an
// idempotency key.
func ValidateKey(key string) error {
	if key == "" || len(key) > MaxOrderKey {
		return fmt.Errorf("%w: order key must have 1 to %d characters, has %d", ErrInvalidArgument, MaxOrderKey, len(key))
	}
	for _, r := range key {
		if r < 0x21 || r > 0x7e {
			return fmt.Errorf("%w: order key %q: only printable ASCII without spaces", ErrInvalidArgument, key)
		}
	}
	return nil
}

// Validate reports, wrapping ErrInvalidArgument, what is wrong with r before
// anything is sent: a bad key, no instrument, an unknown action, order type or
// time in force, a quantity that is not positive, a missing or superfluous
// price.
func (r OrderRequest) Validate() error {
	if err := ValidateKey(r.Key); err != nil {
		return err
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: order %s: %s", ErrInvalidArgument, r.Key, fmt.Sprintf(format, a...))
	}
	switch {
	case r.Contract.ConID == 0 && r.Contract.Symbol == "" && r.Contract.LocalSymbol == "":
		return bad("names no instrument")
	case r.Action != ActionBuy && r.Action != ActionSell:
		return bad("action %q is neither BUY nor SELL", r.Action)
	case r.Quantity.Cmp(Decimal{}) <= 0:
		return bad("quantity %q is not positive", r.Quantity)
	}
	switch strings.ToUpper(r.TIF) {
	case "", TIFDay, TIFGTC, TIFIOC:
	default:
		return bad("time in force %q is none of DAY, GTC, IOC", r.TIF)
	}
	needLimit, needAux := false, false
	switch r.OrderType {
	case OrderMarket:
	case OrderLimit:
		needLimit = true
	case OrderStop:
		needAux = true
	case OrderStopLimit:
		needLimit, needAux = true, true
	default:
		return bad("order type %q is none of MKT, LMT, STP, STP LMT", r.OrderType)
	}
	switch {
	case needLimit && r.LimitPrice.Cmp(Decimal{}) <= 0:
		return bad("%s needs a positive limit price", r.OrderType)
	case !needLimit && !r.LimitPrice.IsZero():
		return bad("%s takes no limit price", r.OrderType)
	case needAux && r.AuxPrice.Cmp(Decimal{}) <= 0:
		return bad("%s needs a positive stop (aux) price", r.OrderType)
	case !needAux && !r.AuxPrice.IsZero():
		return bad("%s takes no stop (aux) price", r.OrderType)
	}
	return nil
}

// OrderTrader is the capability of placing, modifying and cancelling orders.
// Every Broker of this module implements it; find it with a type assertion
// (b.(broker.OrderTrader)). None of its operations is idempotent: a decorator
// never repeats them blindly (see ops.go), and robust makes PlaceOrder
// exactly-once by the request's Key (docs/adr/0016).
type OrderTrader interface {
	// PlaceOrder sends r as a new order with a fresh order id (never one used
	// before by this client id) and r.Key as its orderRef, and returns once
	// the gateway acknowledged it (OPEN_ORDER or ORDER_STATUS) or refused it.
	// It fails with ErrInvalidArgument when r is malformed (nothing is sent),
	// ErrReadOnly when the session is read-only (nothing is sent) or the
	// gateway refuses orders in read-only mode, ErrRejected when the gateway
	// rejects the order (IB codes 201, 110, ...), ErrNotConnected without a
	// session, and ErrOutcomeUnknown when the session was lost or the context
	// ended after the order was sent and before its acknowledgement: the
	// order may or may not exist; look its Key up (OpenOrders,
	// CompletedOrders, Executions) before placing it again.
	PlaceOrder(ctx context.Context, r OrderRequest) (PlacedOrder, error)

	// ModifyOrder sends new terms for the open order id (the same id, IB's
	// way), keeping r.Key as its orderRef, and returns once the gateway
	// acknowledged them. It fails like PlaceOrder, and with ErrNotFound when
	// no open order of this client has that id.
	ModifyOrder(ctx context.Context, orderID int64, r OrderRequest) (PlacedOrder, error)

	// CancelOrder asks the gateway to cancel the order id and returns once the
	// gateway reported it cancelled (or already final). It fails with
	// ErrNotFound when the gateway knows no such order (IB code 10147),
	// ErrReadOnly in a read-only session, and ErrOutcomeUnknown when the
	// session was lost after the cancel was sent.
	CancelOrder(ctx context.Context, orderID int64) error
}

// OrderEventKind says what an OrderEvent reports.
type OrderEventKind string

// The kinds of order event.
const (
	OrderEventStatus OrderEventKind = "status" // Order holds the order's new state
	OrderEventFill   OrderEventKind = "fill"   // Fill holds one execution (its commission may follow in a later fill event with the same ExecID)
	OrderEventGap    OrderEventKind = "gap"    // events may have been lost (Gap says why): re-read OpenOrders, CompletedOrders and Executions
)

// OrderEvent is one change of one order of this client.
type OrderEvent struct {
	Kind  OrderEventKind `json:"kind"`
	Order Order          `json:"order"`          // status: the order's latest state; fill: its id, key (OrderRef) and contract
	Fill  *Execution     `json:"fill,omitempty"` // fill: the execution
	Gap   string         `json:"gap,omitempty"`  // gap: why
}

// OrderEventBuffer is the capacity of an order event channel. Order events are
// queued, not conflated (a fill must not be replaced by a later one); a
// subscriber that lets the queue fill loses events and receives an
// OrderEventGap once there is room again.
const OrderEventBuffer = 1024

// OrderStreamer is the capability of streaming this client's order events.
type OrderStreamer interface {
	// SubscribeOrders returns a channel of the session's order status changes
	// and fills, in the order the gateway sent them, queued up to
	// OrderEventBuffer. The channel is closed when ctx is done, on Close and
	// when the session ends (robust subscribes again and sends an
	// OrderEventGap instead). It fails with ErrNotConnected without a session
	// and ErrClosed after Close.
	SubscribeOrders(ctx context.Context) (<-chan OrderEvent, error)
}

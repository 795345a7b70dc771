package stdiojson

// This file holds the order operations of the worker and the client
// (place_order, modify_order, cancel_order: broker.OrderTrader) and the order
// stream (subscribe_orders: broker.OrderStreamer). Their JSON shapes are the
// port's own (broker.OrderRequest, broker.PlacedOrder, broker.OrderEvent).
//
// None of them is retried, and an order command whose line reached the worker
// but whose answer did not (the worker died, the caller's context ended,
// Close overtook it) fails with broker.ErrOutcomeUnknown: the worker may have
// sent the order to the gateway. See PROTOCOL.md, "Orders".

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/brokerkit/brokerkit/broker"
)

// The protocol's order stream command and event kind.
const (
	CommandSubscribeOrders = "subscribe_orders" // open a stream of this client's order events

	eventOrder = "order" // "update": one broker.OrderEvent
)

func init() {
	serveOps[broker.OpPlaceOrder] = servePlaceOrder
	serveOps[broker.OpModifyOrder] = serveModifyOrder
	serveOps[broker.OpCancelOrder] = serveCancelOrder
}

type cancelOrderData struct {
	Cancelled bool `json:"cancelled"`
}

var (
	_ broker.OrderTrader   = (*Client)(nil)
	_ broker.OrderStreamer = (*Client)(nil)
)

// ---- place_order, modify_order, cancel_order ----

// PlaceOrder implements broker.OrderTrader over the worker's place_order.
func (c *Client) PlaceOrder(ctx context.Context, r broker.OrderRequest) (broker.PlacedOrder, error) {
	if err := r.Validate(); err != nil { // nothing is sent
		return broker.PlacedOrder{}, err
	}
	var d broker.PlacedOrder
	if err := c.orderCall(ctx, broker.OpPlaceOrder, &wireRequest{Order: &r}, &d); err != nil {
		return broker.PlacedOrder{}, err
	}
	return d, nil
}

// ModifyOrder implements broker.OrderTrader over the worker's modify_order.
func (c *Client) ModifyOrder(ctx context.Context, orderID int64, r broker.OrderRequest) (broker.PlacedOrder, error) {
	if err := r.Validate(); err != nil {
		return broker.PlacedOrder{}, err
	}
	var d broker.PlacedOrder
	if err := c.orderCall(ctx, broker.OpModifyOrder, &wireRequest{Order: &r, OrderID: orderID}, &d); err != nil {
		return broker.PlacedOrder{}, err
	}
	return d, nil
}

// CancelOrder implements broker.OrderTrader over the worker's cancel_order.
func (c *Client) CancelOrder(ctx context.Context, orderID int64) error {
	return c.orderCall(ctx, broker.OpCancelOrder, &wireRequest{OrderID: orderID}, nil)
}

// orderCall makes an order request. When its line reached the worker and no
// answer of the worker could be read (it died, the context ended, Close came,
// the answer was unreadable), the error is ErrOutcomeUnknown wrapping the
// cause (ErrUnavailable when the worker died): the worker may have sent the
// order. Otherwise the error is the worker's answer, or the cause alone when
// nothing was written.
func (c *Client) orderCall(ctx context.Context, op broker.Op, req *wireRequest, out any) error {
	lost, err := c.callLost(ctx, string(op), req, out)
	if err == nil || !lost || errors.Is(err, broker.ErrOutcomeUnknown) {
		return err
	}
	return fmt.Errorf("%w: %s reached the worker and its answer was lost: %w", broker.ErrOutcomeUnknown, op, err)
}

// orderTrader is the worker's Broker as an OrderTrader, or ErrUnsupported.
func orderTrader(b broker.Broker) (broker.OrderTrader, error) {
	t, ok := b.(broker.OrderTrader)
	if !ok {
		return nil, fmt.Errorf("%w: the worker's Broker does not trade orders", broker.ErrUnsupported)
	}
	return t, nil
}

// requestOrder is the order of a place_order or modify_order request.
func requestOrder(req *wireRequest) (broker.OrderRequest, error) {
	if req.Order == nil {
		return broker.OrderRequest{}, fmt.Errorf("%w: %s needs an \"order\"", broker.ErrInvalidArgument, req.Command)
	}
	return *req.Order, nil
}

func servePlaceOrder(ctx context.Context, b broker.Broker, req *wireRequest) (any, error) {
	t, err := orderTrader(b)
	if err != nil {
		return nil, err
	}
	r, err := requestOrder(req)
	if err != nil {
		return nil, err
	}
	return t.PlaceOrder(ctx, r)
}

func serveModifyOrder(ctx context.Context, b broker.Broker, req *wireRequest) (any, error) {
	t, err := orderTrader(b)
	if err != nil {
		return nil, err
	}
	r, err := requestOrder(req)
	if err != nil {
		return nil, err
	}
	if req.OrderID <= 0 {
		return nil, fmt.Errorf("%w: modify_order needs a positive \"order_id\"", broker.ErrInvalidArgument)
	}
	return t.ModifyOrder(ctx, req.OrderID, r)
}

func serveCancelOrder(ctx context.Context, b broker.Broker, req *wireRequest) (any, error) {
	t, err := orderTrader(b)
	if err != nil {
		return nil, err
	}
	if req.OrderID <= 0 {
		return nil, fmt.Errorf("%w: cancel_order needs a positive \"order_id\"", broker.ErrInvalidArgument)
	}
	if err := t.CancelOrder(ctx, req.OrderID); err != nil {
		return nil, err
	}
	return cancelOrderData{Cancelled: true}, nil
}

// ---- subscribe_orders ----

// wireOrderEvent is one event line of an order stream.
type wireOrderEvent struct {
	Event        string             `json:"event"`
	Subscription string             `json:"subscription"`
	Time         time.Time          `json:"time"`
	Update       *broker.OrderEvent `json:"update"`
}

// subscribeOrders opens the worker's order stream. The Broker's channel is
// the stream's bounded queue (broker.OrderQueue): while the host does not
// read, events wait there, and past OrderEventBuffer of them the Broker drops
// events and sends one gap event once there is room.
func (s *server) subscribeOrders(req wireRequest) (any, error) {
	st, ok := s.b.(broker.OrderStreamer)
	if !ok {
		return nil, fmt.Errorf("%w: the worker's Broker does not stream order events", broker.ErrUnsupported)
	}
	return s.openStream(req, func(ctx context.Context, sub string) (func(), error) {
		ch, err := st.SubscribeOrders(ctx)
		if err != nil {
			return nil, err
		}
		return func() {
			for e := range ch {
				s.sendStreamEvent(wireOrderEvent{Event: eventOrder, Subscription: sub, Time: time.Now(), Update: &e})
			}
		}, nil
	})
}

// SubscribeOrders implements broker.OrderStreamer over the worker's
// subscribe_orders. Events are queued (broker.OrderQueue): a caller that lets
// OrderEventBuffer of them wait loses the next ones and then receives a gap
// event. The channel is closed when ctx is done (the worker is told to
// unsubscribe), when the worker ends the stream, when it dies, and on Close.
func (c *Client) SubscribeOrders(ctx context.Context) (<-chan broker.OrderEvent, error) {
	st := &clientStream{orders: broker.NewOrderQueue(broker.OrderEventBuffer)}
	if err := c.openStream(ctx, CommandSubscribeOrders, "o", st, &wireRequest{}); err != nil {
		return nil, err
	}
	return st.orders.C(), nil
}

// orderEvent routes an order event line to its stream's queue; a malformed
// one becomes a gap (an event was lost: the subscriber must know).
func (c *Client) orderEvent(in wireInbound) {
	var e broker.OrderEvent
	err := json.Unmarshal(in.Update, &e)
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.streams[in.Subscription]
	switch {
	case st == nil || st.orders == nil:
	case err != nil:
		c.log.Warn("malformed order event", "subscription", in.Subscription, "error", err)
		st.orders.Gap(fmt.Sprintf("a malformed order event from the worker was dropped: %v", err))
	default:
		st.orders.Send(e)
	}
}

package goplugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/transport/goplugin/internal/pb"
)

// This file holds the order capabilities (broker.OrderTrader and
// broker.OrderStreamer) over the Orders service of internal/pb/orders.proto:
// the host's Client methods next to the child's orderServer methods, and
// their converters. None of the calls is retried. A call whose RPC was started
// and whose answer was lost (the child exited, Close, the caller's context
// ended) is broker.ErrOutcomeUnknown: the child may have sent the order.

var (
	_ broker.OrderTrader   = (*Client)(nil)
	_ broker.OrderStreamer = (*Client)(nil)
)

// PlaceOrder implements broker.OrderTrader.
func (c *Client) PlaceOrder(ctx context.Context, r broker.OrderRequest) (broker.PlacedOrder, error) {
	if err := r.Validate(); err != nil { // nothing is sent
		return broker.PlacedOrder{}, err
	}
	return orderCall(c, ctx, broker.OpPlaceOrder, c.orders.PlaceOrder, orderRequestToPB(r), placedOrderFromPB)
}

// ModifyOrder implements broker.OrderTrader.
func (c *Client) ModifyOrder(ctx context.Context, orderID int64, r broker.OrderRequest) (broker.PlacedOrder, error) {
	if err := r.Validate(); err != nil {
		return broker.PlacedOrder{}, err
	}
	return orderCall(c, ctx, broker.OpModifyOrder, c.orders.ModifyOrder,
		&pb.ModifyOrderRequest{OrderId: orderID, Order: orderRequestToPB(r)}, placedOrderFromPB)
}

// CancelOrder implements broker.OrderTrader.
func (c *Client) CancelOrder(ctx context.Context, orderID int64) error {
	_, err := orderCall(c, ctx, broker.OpCancelOrder, c.orders.CancelOrder, &pb.CancelOrderRequest{OrderId: orderID}, none)
	return err
}

// orderCall is invoke for an order RPC. A failure before the RPC started
// (Close, a done context, a dead child) is returned as is: nothing was sent.
// Once it started, the child's own answer (a status carrying an Error
// detail) is returned as the sentinel it names, and any other end (the child
// exited, Close, the context ended, the connection broke) is
// ErrOutcomeUnknown wrapping the cause: the child may have sent the order.
func orderCall[Req, Resp, T any](c *Client, ctx context.Context, op broker.Op,
	rpc func(context.Context, Req, ...grpc.CallOption) (Resp, error), req Req, conv func(Resp) (T, error)) (T, error) {
	var (
		resp    Resp
		zero    T
		started bool
		rpcErr  error
	)
	err := c.call(ctx, op, func(ctx context.Context) error {
		started = true
		resp, rpcErr = rpc(ctx, req)
		return rpcErr
	})
	switch {
	case err == nil:
		out, err := conv(resp)
		if err != nil { // the child answered, and the answer cannot be read
			return zero, fmt.Errorf("%w: goplugin: %s: %w", broker.ErrOutcomeUnknown, op, err)
		}
		return out, nil
	case !started || errors.Is(err, broker.ErrOutcomeUnknown):
		return zero, err
	case childAnswered(rpcErr) && c.check(ctx, op) == nil:
		return zero, err
	}
	return zero, fmt.Errorf("%w: goplugin: %s reached the child and its answer was lost: %w", broker.ErrOutcomeUnknown, op, err)
}

// childAnswered reports whether err is a status the child's server sent:
// errorToStatus attaches an Error detail to every one, and a child without
// the Orders service (built before it) answers Unimplemented.
func childAnswered(err error) bool {
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	if st.Code() == codes.Unimplemented {
		return true
	}
	for _, d := range st.Details() {
		if _, ok := d.(*pb.Error); ok {
			return true
		}
	}
	return false
}

// opSubscribeOrders names SubscribeOrders in errors.
const opSubscribeOrders broker.Op = "subscribe_orders"

// SubscribeOrders implements broker.OrderStreamer over a server stream. It
// returns once the child has subscribed. Events are queued
// (broker.OrderQueue): a caller that lets OrderEventBuffer of them wait loses
// the next ones and then receives a gap event. The channel is closed when ctx
// is done, the stream ends, the Client is closed or the child exits.
func (c *Client) SubscribeOrders(ctx context.Context) (<-chan broker.OrderEvent, error) {
	cs, release, err := c.openStream(ctx, opSubscribeOrders, new(pb.OrderEvent),
		func(ctx context.Context) (grpc.ClientStream, error) {
			return c.orders.SubscribeOrders(ctx, &pb.Empty{})
		})
	if err != nil {
		return nil, err
	}
	stream := cs.(pb.Orders_SubscribeOrdersClient)
	q := broker.NewOrderQueue(broker.OrderEventBuffer)
	go func() {
		defer c.pumps.Done()
		defer q.Close()
		defer release()
		for {
			m, err := stream.Recv()
			if err != nil {
				return
			}
			e, err := orderEventFromPB(m)
			if err != nil { // an event is lost: the subscriber must know
				c.log.Warn("malformed order event", "error", err)
				q.Gap(fmt.Sprintf("a malformed order event from the child was dropped: %v", err))
				continue
			}
			q.Send(e)
		}
	}()
	return q.C(), nil
}

// orderServer is the child's Orders service over the served Broker.
type orderServer struct {
	pb.UnimplementedOrdersServer
	b   broker.Broker
	log hclog.Logger
}

// trader is the served Broker as an OrderTrader, or ErrUnsupported.
func (s *orderServer) trader() (broker.OrderTrader, error) {
	t, ok := s.b.(broker.OrderTrader)
	if !ok {
		return nil, fmt.Errorf("%w: the served Broker does not trade orders", broker.ErrUnsupported)
	}
	return t, nil
}

func (s *orderServer) PlaceOrder(ctx context.Context, r *pb.OrderRequest) (*pb.PlacedOrder, error) {
	t, err := s.trader()
	if err != nil {
		return nil, errorToStatus(err)
	}
	req, err := orderRequestFromPB(r)
	if err != nil {
		return nil, errorToStatus(err)
	}
	p, err := t.PlaceOrder(ctx, req)
	if err != nil {
		return nil, errorToStatus(err)
	}
	return placedOrderToPB(p), nil
}

func (s *orderServer) ModifyOrder(ctx context.Context, r *pb.ModifyOrderRequest) (*pb.PlacedOrder, error) {
	t, err := s.trader()
	if err != nil {
		return nil, errorToStatus(err)
	}
	req, err := orderRequestFromPB(r.GetOrder())
	if err != nil {
		return nil, errorToStatus(err)
	}
	p, err := t.ModifyOrder(ctx, r.GetOrderId(), req)
	if err != nil {
		return nil, errorToStatus(err)
	}
	return placedOrderToPB(p), nil
}

func (s *orderServer) CancelOrder(ctx context.Context, r *pb.CancelOrderRequest) (*pb.Empty, error) {
	t, err := s.trader()
	if err != nil {
		return nil, errorToStatus(err)
	}
	if err := t.CancelOrder(ctx, r.GetOrderId()); err != nil {
		return nil, errorToStatus(err)
	}
	return &pb.Empty{}, nil
}

// SubscribeOrders subscribes the served Broker, sends the headers, then
// streams its events until the call ends or the Broker closes the channel.
// While the host does not read, events wait in the Broker's queue, which drops
// and reports a gap past OrderEventBuffer.
func (s *orderServer) SubscribeOrders(_ *pb.Empty, stream pb.Orders_SubscribeOrdersServer) error {
	st, ok := s.b.(broker.OrderStreamer)
	if !ok {
		return errorToStatus(fmt.Errorf("%w: the served Broker does not stream order events", broker.ErrUnsupported))
	}
	ch, err := st.SubscribeOrders(stream.Context())
	if err != nil {
		return errorToStatus(err)
	}
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for e := range ch { // closed when the call's context ends, too
		if err := stream.Send(orderEventToPB(e)); err != nil {
			return err
		}
	}
	return nil
}

// ---- converters ----

// optDecimal is the wire text of an optional price: "" for none.
func optDecimal(d broker.Decimal) string {
	if d.IsZero() {
		return ""
	}
	return d.String()
}

func orderRequestToPB(r broker.OrderRequest) *pb.OrderRequest {
	return &pb.OrderRequest{Key: r.Key, Account: r.Account, Contract: contractToPB(r.Contract), Action: r.Action,
		Quantity: r.Quantity.String(), OrderType: r.OrderType, LimitPrice: optDecimal(r.LimitPrice),
		AuxPrice: optDecimal(r.AuxPrice), Tif: r.TIF, OutsideRth: r.OutsideRTH, Hold: r.Hold}
}

// orderRequestFromPB is a request's order on the child's side: a malformed
// decimal is the caller's invalid argument.
func orderRequestFromPB(m *pb.OrderRequest) (broker.OrderRequest, error) {
	if m == nil {
		return broker.OrderRequest{}, fmt.Errorf("%w: no order in the request", broker.ErrInvalidArgument)
	}
	var d decimalReader
	r := broker.OrderRequest{Key: m.GetKey(), Account: m.GetAccount(), Contract: d.contract(m.GetContract()),
		Action: m.GetAction(), Quantity: d.dec("quantity", m.GetQuantity()), OrderType: m.GetOrderType(),
		LimitPrice: d.dec("limit_price", m.GetLimitPrice()), AuxPrice: d.dec("aux_price", m.GetAuxPrice()),
		TIF: m.GetTif(), OutsideRTH: m.GetOutsideRth(), Hold: m.GetHold()}
	if d.err != nil {
		return broker.OrderRequest{}, fmt.Errorf("%w: %v", broker.ErrInvalidArgument, d.err)
	}
	return r, nil
}

func placedOrderToPB(p broker.PlacedOrder) *pb.PlacedOrder {
	return &pb.PlacedOrder{OrderId: p.OrderID, PermId: p.PermID, Key: p.Key, Status: p.Status, Existing: p.Existing}
}

func placedOrderFromPB(m *pb.PlacedOrder) (broker.PlacedOrder, error) {
	return broker.PlacedOrder{OrderID: m.GetOrderId(), PermID: m.GetPermId(), Key: m.GetKey(), Status: m.GetStatus(),
		Existing: m.GetExisting()}, nil
}

func orderEventToPB(e broker.OrderEvent) *pb.OrderEvent {
	m := &pb.OrderEvent{Kind: string(e.Kind), Order: ordersToPB([]broker.Order{e.Order}).GetOrders()[0], Gap: e.Gap}
	if e.Fill != nil {
		m.Fill = executionsToPB([]broker.Execution{*e.Fill}).GetExecutions()[0]
	}
	return m
}

// orderEventFromPB decodes an order event; a malformed decimal or an unknown
// kind is a protocol violation.
func orderEventFromPB(m *pb.OrderEvent) (broker.OrderEvent, error) {
	e := broker.OrderEvent{Kind: broker.OrderEventKind(m.GetKind()), Gap: m.GetGap()}
	switch e.Kind {
	case broker.OrderEventStatus, broker.OrderEventFill, broker.OrderEventGap:
	default:
		return broker.OrderEvent{}, fmt.Errorf("%w: order event of kind %q", broker.ErrProtocol, m.GetKind())
	}
	if m.GetOrder() != nil {
		os, err := ordersFromPB(&pb.OrdersResponse{Orders: []*pb.Order{m.GetOrder()}})
		if err != nil {
			return broker.OrderEvent{}, err
		}
		e.Order = os[0]
	}
	if m.GetFill() != nil {
		xs, err := executionsFromPB(&pb.ExecutionsResponse{Executions: []*pb.Execution{m.GetFill()}})
		if err != nil {
			return broker.OrderEvent{}, err
		}
		e.Fill = &xs[0]
	}
	return e, nil
}

package goplugin

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
	"github.com/brokerkit/brokerkit/transport/goplugin/internal/pb"
)

func orderReq(key, action, qty, symbol, orderType, limit string) broker.OrderRequest {
	r := broker.OrderRequest{Key: key, Contract: broker.Contract{Symbol: symbol, SecType: "STK", Exchange: "SMART", Currency: "USD"},
		Action: action, Quantity: broker.MustDecimal(qty), OrderType: orderType}
	if limit != "" {
		r.LimitPrice = broker.MustDecimal(limit)
	}
	return r
}

func nextOrderEvent(t *testing.T, ch <-chan broker.OrderEvent) broker.OrderEvent {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("order stream closed")
		}
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no order event within 10s")
	}
	return broker.OrderEvent{}
}

// TestOrdersOverGRPC: place, modify, cancel and the order stream, in process
// over gRPC against the in-memory broker: exact decimals both ways, errors
// back as the same sentinels with IB's codes, key reuse as Existing.
func TestOrdersOverGRPC(t *testing.T) {
	m := fakes.NewMemory(fakes.DefaultScript())
	c, _ := inProcessPair(t, m)
	ctx := t.Context()
	if _, err := c.Connect(ctx, broker.ConnectParams{ClientID: 4}); err != nil {
		t.Fatal(err)
	}
	events, err := c.SubscribeOrders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	placed, err := c.PlaceOrder(ctx, orderReq("g1", broker.ActionSell, "0.25", "AAPL", broker.OrderMarket, ""))
	if err != nil || placed.Key != "g1" || placed.Status != broker.StatusFilled || placed.PermID == 0 {
		t.Fatalf("PlaceOrder = %+v, %v", placed, err)
	}
	if e := nextOrderEvent(t, events); e.Kind != broker.OrderEventStatus || e.Order.ClientID != 4 || e.Order.OrderRef != "g1" {
		t.Errorf("first event %+v", e)
	}
	fill := nextOrderEvent(t, events)
	if fill.Kind != broker.OrderEventFill || fill.Fill == nil || fill.Fill.Shares.String() != "0.25" || fill.Fill.Side != "SLD" ||
		fill.Order.OrderID != placed.OrderID {
		t.Errorf("fill event %+v", fill)
	}
	if e := nextOrderEvent(t, events); e.Order.Status != broker.StatusFilled {
		t.Errorf("final event %+v", e)
	}
	if again, err := c.PlaceOrder(ctx, orderReq("g1", broker.ActionSell, "0.25", "AAPL", broker.OrderMarket, "")); err != nil ||
		!again.Existing || again.OrderID != placed.OrderID {
		t.Errorf("key reuse = %+v, %v", again, err)
	}
	rest, err := c.PlaceOrder(ctx, orderReq("g2", broker.ActionBuy, "7", "AAPL", broker.OrderLimit, "2.5"))
	if err != nil {
		t.Fatal(err)
	}
	nextOrderEvent(t, events)
	if got, err := c.ModifyOrder(ctx, rest.OrderID, orderReq("g2", broker.ActionBuy, "9", "AAPL", broker.OrderLimit, "2.75")); err != nil ||
		got.OrderID != rest.OrderID {
		t.Fatalf("ModifyOrder = %+v, %v", got, err)
	}
	if e := nextOrderEvent(t, events); e.Order.TotalQuantity.String() != "9" || e.Order.LimitPrice.String() != "2.75" {
		t.Errorf("modification event %+v", e)
	}
	if err := c.CancelOrder(ctx, rest.OrderID); err != nil {
		t.Fatal(err)
	}
	if e := nextOrderEvent(t, events); e.Order.Status != broker.StatusCancelled {
		t.Errorf("cancel event %+v", e)
	}
	for name, c := range map[string]struct {
		err    error
		want   error
		ibCode int64
	}{
		"off tick": {func() error {
			_, err := c.PlaceOrder(ctx, orderReq("g3", broker.ActionBuy, "1", "AAPL", broker.OrderLimit, "2.001"))
			return err
		}(), broker.ErrRejected, 110},
		"no instrument": {func() error {
			_, err := c.PlaceOrder(ctx, orderReq("g4", broker.ActionBuy, "1", "NOSUCH", broker.OrderMarket, ""))
			return err
		}(), broker.ErrRejected, 201},
		"cancel": {c.CancelOrder(ctx, 424242), broker.ErrNotFound, 10147},
		"modify": {func() error {
			_, err := c.ModifyOrder(ctx, 424242, orderReq("g2", broker.ActionBuy, "1", "AAPL", broker.OrderMarket, ""))
			return err
		}(), broker.ErrNotFound, 0},
	} {
		if !errors.Is(c.err, c.want) || broker.IBCode(c.err) != c.ibCode || errors.Is(c.err, broker.ErrOutcomeUnknown) {
			t.Errorf("%s: %v, want %v with IB %d", name, c.err, c.want, c.ibCode)
		}
	}
}

// TestOrdersReadOnlyOverGRPC: a read-only session refuses with ErrReadOnly on
// the host's side too.
func TestOrdersReadOnlyOverGRPC(t *testing.T) {
	c, _ := inProcessPair(t, fakes.NewMemory(fakes.DefaultScript()))
	ctx := t.Context()
	if _, err := c.Connect(ctx, broker.ConnectParams{ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PlaceOrder(ctx, orderReq("r", broker.ActionBuy, "1", "AAPL", broker.OrderMarket, "")); !errors.Is(err, broker.ErrReadOnly) {
		t.Errorf("PlaceOrder = %v", err)
	}
	if err := c.CancelOrder(ctx, 1); !errors.Is(err, broker.ErrReadOnly) {
		t.Errorf("CancelOrder = %v", err)
	}
}

// TestOrderOutcomeOverAChild: over a real child, the child's own unavailable
// answer stays ErrUnavailable (nothing sent); a child that dies after
// receiving place_order, or a caller that gives up after sending it, leaves
// ErrOutcomeUnknown; a place_order on the dead child, which cannot have been
// sent, is ErrUnavailable alone; the order stream closes with the child.
func TestOrderOutcomeOverAChild(t *testing.T) {
	c, _ := startChild(t, "mem")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := c.Connect(ctx, broker.ConnectParams{}); err != nil {
		t.Fatal(err)
	}
	events, err := c.SubscribeOrders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.PlaceOrder(ctx, orderReq("err:unavailable:0", broker.ActionBuy, "1", "AAPL", broker.OrderMarket, ""))
	if !errors.Is(err, broker.ErrUnavailable) || errors.Is(err, broker.ErrOutcomeUnknown) {
		t.Errorf("the child's own unavailable = %v, want ErrUnavailable only", err)
	}
	short, stop := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = c.PlaceOrder(short, orderReq("block", broker.ActionBuy, "1", "AAPL", broker.OrderMarket, ""))
	stop()
	if !errors.Is(err, broker.ErrOutcomeUnknown) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("abandoned PlaceOrder = %v, want ErrOutcomeUnknown and DeadlineExceeded", err)
	}
	_, err = c.PlaceOrder(ctx, orderReq("exit:7", broker.ActionBuy, "1", "AAPL", broker.OrderMarket, ""))
	if !errors.Is(err, broker.ErrOutcomeUnknown) || !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("PlaceOrder as the child dies = %v, want ErrOutcomeUnknown and ErrUnavailable", err)
	}
	select {
	case _, ok := <-events:
		if ok {
			t.Error("an order event from a dead child")
		}
	case <-time.After(10 * time.Second):
		t.Error("the order stream stayed open after the child died")
	}
	<-c.Exited()
	_, err = c.PlaceOrder(ctx, orderReq("after", broker.ActionBuy, "1", "AAPL", broker.OrderMarket, ""))
	if !errors.Is(err, broker.ErrUnavailable) || errors.Is(err, broker.ErrOutcomeUnknown) {
		t.Errorf("PlaceOrder on a dead child = %v, want ErrUnavailable only (nothing was sent)", err)
	}
}

// TestOrderEventConversion: every kind crosses unchanged, and a malformed or
// unknown one is a protocol violation.
func TestOrderEventConversion(t *testing.T) {
	x := broker.Execution{ExecID: "e1", OrderID: 3, Shares: broker.MustDecimal("0.001"), Price: broker.MustDecimal("12345.6789"),
		Contract: broker.Contract{Symbol: "AAPL"}, OrderRef: "k"}
	for _, e := range []broker.OrderEvent{
		{Kind: broker.OrderEventStatus, Order: broker.Order{OrderID: 3, Status: "Submitted", TotalQuantity: broker.MustDecimal("1.5"),
			LimitPrice: broker.MustDecimal("0.0001"), Contract: broker.Contract{Symbol: "AAPL"}}},
		{Kind: broker.OrderEventFill, Order: broker.Order{OrderID: 3, OrderRef: "k"}, Fill: &x},
		{Kind: broker.OrderEventGap, Gap: "26 order events dropped"},
	} {
		got, err := orderEventFromPB(orderEventToPB(e))
		if diff := cmp.Diff(e, got); err != nil || diff != "" {
			t.Errorf("%s crossed with %v (-sent +got):\n%s", e.Kind, err, diff)
		}
	}
	if _, err := orderEventFromPB(&pb.OrderEvent{Kind: "teleport"}); !errors.Is(err, broker.ErrProtocol) {
		t.Errorf("unknown kind: %v", err)
	}
	bad := orderEventToPB(broker.OrderEvent{Kind: broker.OrderEventStatus})
	bad.Order.Filled = "1e3"
	if _, err := orderEventFromPB(bad); !errors.Is(err, broker.ErrProtocol) || !strings.Contains(err.Error(), "filled") {
		t.Errorf("malformed decimal: %v", err)
	}
	if _, err := orderRequestFromPB(&pb.OrderRequest{Quantity: "x"}); !errors.Is(err, broker.ErrInvalidArgument) {
		t.Errorf("malformed request quantity: %v", err)
	}
}

// TestOrdersOfAnOlderChild: a child whose gRPC server lacks the Orders
// service answers Unimplemented, which is ErrUnsupported (nothing was done),
// not an unknown outcome.
func TestOrdersOfAnOlderChild(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log, _ := testLogger(t)
	srv := newGRPCServer(log)(nil)
	pb.RegisterBrokerServer(srv, &server{b: fakes.NewMemory(fakes.DefaultScript()), log: log}) // no Orders service
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	done, exit := context.WithCancel(context.Background())
	c := newClient(conn, done, log)
	c.kill = func() { exit(); _ = conn.Close(); srv.Stop(); <-served }
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.PlaceOrder(t.Context(), orderReq("old", broker.ActionBuy, "1", "AAPL", broker.OrderMarket, ""))
	if !errors.Is(err, broker.ErrUnsupported) || errors.Is(err, broker.ErrOutcomeUnknown) {
		t.Errorf("PlaceOrder on a child without Orders = %v, want ErrUnsupported only", err)
	}
	if _, err := c.SubscribeOrders(t.Context()); !errors.Is(err, broker.ErrUnsupported) {
		t.Errorf("SubscribeOrders on a child without Orders = %v, want ErrUnsupported", err)
	}
}

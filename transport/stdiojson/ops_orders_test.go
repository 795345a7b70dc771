package stdiojson

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

func orderReq(key, action, qty, symbol, orderType, limit string) broker.OrderRequest {
	r := broker.OrderRequest{Key: key, Contract: broker.Contract{Symbol: symbol, SecType: "STK", Exchange: "SMART", Currency: "USD"},
		Action: action, Quantity: broker.MustDecimal(qty), OrderType: orderType}
	if limit != "" {
		r.LimitPrice = broker.MustDecimal(limit)
	}
	return r
}

func waitOrderEvent(t *testing.T, ch <-chan broker.OrderEvent) broker.OrderEvent {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("order stream closed")
		}
		return e
	case <-time.After(hangBound):
		t.Fatal("no order event")
	}
	return broker.OrderEvent{}
}

// TestOrdersThroughTheWorker: place, modify and cancel through a worker
// process serving the in-memory broker; the order stream carries status and
// fill events with exact decimals; errors come back as the same sentinels
// and IB codes (rejected 201, not found 10147), and key reuse as Existing.
func TestOrdersThroughTheWorker(t *testing.T) {
	c, _ := startMem(t, 0)
	ctx := ctxBound(t)
	if _, err := c.Connect(ctx, broker.ConnectParams{ClientID: 5}); err != nil {
		t.Fatal(err)
	}
	events, err := c.SubscribeOrders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	placed, err := c.PlaceOrder(ctx, orderReq("m1", broker.ActionBuy, "0.5", "AAPL", broker.OrderMarket, ""))
	if err != nil {
		t.Fatal(err)
	}
	if placed.Key != "m1" || placed.Status != broker.StatusFilled || placed.OrderID <= 0 || placed.Existing {
		t.Errorf("PlaceOrder = %+v", placed)
	}
	if e := waitOrderEvent(t, events); e.Kind != broker.OrderEventStatus || e.Order.OrderID != placed.OrderID || e.Order.ClientID != 5 {
		t.Errorf("first event %+v", e)
	}
	fill := waitOrderEvent(t, events)
	if fill.Kind != broker.OrderEventFill || fill.Fill == nil || fill.Fill.Shares.String() != "0.5" || fill.Fill.OrderRef != "m1" {
		t.Errorf("fill event %+v", fill)
	}
	if e := waitOrderEvent(t, events); e.Order.Status != broker.StatusFilled || e.Order.Filled.String() != "0.5" {
		t.Errorf("final event %+v", e)
	}
	again, err := c.PlaceOrder(ctx, orderReq("m1", broker.ActionBuy, "0.5", "AAPL", broker.OrderMarket, ""))
	if err != nil || !again.Existing || again.OrderID != placed.OrderID {
		t.Errorf("key reuse = %+v, %v", again, err)
	}

	rest, err := c.PlaceOrder(ctx, orderReq("l1", broker.ActionBuy, "3", "AAPL", broker.OrderLimit, "1.25"))
	if err != nil || rest.Status != fakes.StatusSubmitted || rest.OrderID <= placed.OrderID {
		t.Fatalf("limit order = %+v, %v", rest, err)
	}
	waitOrderEvent(t, events)
	mod, err := c.ModifyOrder(ctx, rest.OrderID, orderReq("l1", broker.ActionBuy, "4", "AAPL", broker.OrderLimit, "1.5"))
	if err != nil || mod.OrderID != rest.OrderID {
		t.Fatalf("ModifyOrder = %+v, %v", mod, err)
	}
	if e := waitOrderEvent(t, events); e.Order.TotalQuantity.String() != "4" || e.Order.LimitPrice.String() != "1.5" {
		t.Errorf("modification event %+v", e)
	}
	if err := c.CancelOrder(ctx, rest.OrderID); err != nil {
		t.Fatal(err)
	}
	if e := waitOrderEvent(t, events); e.Order.Status != broker.StatusCancelled {
		t.Errorf("cancel event %+v", e)
	}

	_, err = c.PlaceOrder(ctx, orderReq("x", broker.ActionBuy, "1", "NOSUCH", broker.OrderMarket, ""))
	if !errors.Is(err, broker.ErrRejected) || broker.IBCode(err) != 201 {
		t.Errorf("unknown symbol: %v, want ErrRejected with IB 201", err)
	}
	if err := c.CancelOrder(ctx, 99999); !errors.Is(err, broker.ErrNotFound) || broker.IBCode(err) != 10147 {
		t.Errorf("cancel unknown: %v, want ErrNotFound with IB 10147", err)
	}
	if _, err := c.ModifyOrder(ctx, 99999, orderReq("l1", broker.ActionBuy, "4", "AAPL", broker.OrderLimit, "1.5")); !errors.Is(err, broker.ErrNotFound) {
		t.Errorf("modify unknown: %v", err)
	}
	if _, err := c.PlaceOrder(ctx, orderReq("bad key", broker.ActionBuy, "1", "AAPL", broker.OrderMarket, "")); !errors.Is(err, broker.ErrInvalidArgument) {
		t.Errorf("bad key: %v", err)
	}
}

// TestOrdersReadOnlyThroughTheWorker: a read-only session's refusal crosses
// the pipe as read_only.
func TestOrdersReadOnlyThroughTheWorker(t *testing.T) {
	c, _ := startMem(t, 0)
	ctx := ctxBound(t)
	if _, err := c.Connect(ctx, broker.ConnectParams{ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PlaceOrder(ctx, orderReq("r", broker.ActionBuy, "1", "AAPL", broker.OrderMarket, "")); !errors.Is(err, broker.ErrReadOnly) {
		t.Errorf("PlaceOrder = %v, want ErrReadOnly", err)
	}
	if err := c.CancelOrder(ctx, 1); !errors.Is(err, broker.ErrReadOnly) {
		t.Errorf("CancelOrder = %v, want ErrReadOnly", err)
	}
}

// TestOrderOutcomeUnknownWhenTheWorkerDies: a worker that dies after
// receiving place_order leaves the host with ErrOutcomeUnknown (wrapping
// ErrUnavailable); an order command on the dead worker, which cannot have
// reached it, is ErrUnavailable alone.
func TestOrderOutcomeUnknownWhenTheWorkerDies(t *testing.T) {
	c, _ := startMem(t, 0)
	ctx := ctxBound(t)
	if _, err := c.Connect(ctx, broker.ConnectParams{}); err != nil {
		t.Fatal(err)
	}
	events, err := c.SubscribeOrders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.PlaceOrder(ctx, orderReq("err:unavailable:0", broker.ActionBuy, "1", "AAPL", broker.OrderMarket, ""))
	if !errors.Is(err, broker.ErrUnavailable) || errors.Is(err, broker.ErrOutcomeUnknown) {
		t.Errorf("the worker's own unavailable answer = %v, want ErrUnavailable only (its verdict: nothing sent)", err)
	}
	_, err = c.PlaceOrder(ctx, orderReq("exit:7", broker.ActionBuy, "1", "AAPL", broker.OrderMarket, ""))
	if !errors.Is(err, broker.ErrOutcomeUnknown) || !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("PlaceOrder as the worker dies = %v, want ErrOutcomeUnknown and ErrUnavailable", err)
	}
	if broker.ErrorCode(err) != broker.CodeOutcomeUnknown {
		t.Errorf("wire code %q", broker.ErrorCode(err))
	}
	select {
	case _, ok := <-events:
		if ok {
			t.Error("an order event from a dead worker")
		}
	case <-time.After(hangBound):
		t.Error("the order stream stayed open after the worker died")
	}
	_, err = c.PlaceOrder(ctx, orderReq("after", broker.ActionBuy, "1", "AAPL", broker.OrderMarket, ""))
	if !errors.Is(err, broker.ErrUnavailable) || errors.Is(err, broker.ErrOutcomeUnknown) {
		t.Errorf("PlaceOrder on a dead worker = %v, want ErrUnavailable only (nothing was sent)", err)
	}
}

// TestOrderOutcomeUnknownWhenTheCallerGivesUp: a place_order abandoned by its
// context after it was written is ErrOutcomeUnknown and the context's error.
func TestOrderOutcomeUnknownWhenTheCallerGivesUp(t *testing.T) {
	c, _ := startMem(t, 0)
	ctx := ctxBound(t)
	if _, err := c.Connect(ctx, broker.ConnectParams{}); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err := c.PlaceOrder(cctx, orderReq("block", broker.ActionBuy, "1", "AAPL", broker.OrderMarket, ""))
	if !errors.Is(err, broker.ErrOutcomeUnknown) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("abandoned PlaceOrder = %v, want ErrOutcomeUnknown and DeadlineExceeded", err)
	}
	done, cancel2 := context.WithCancel(ctx)
	cancel2()
	if _, err := c.PlaceOrder(done, orderReq("never", broker.ActionBuy, "1", "AAPL", broker.OrderMarket, "")); !errors.Is(err, context.Canceled) ||
		errors.Is(err, broker.ErrOutcomeUnknown) {
		t.Errorf("PlaceOrder with a done context = %v, want Canceled only (nothing was sent)", err)
	}
}

// TestOrderCommandsOnTheWire: the JSON shapes of PROTOCOL.md's "Orders"
// section, line by line: place_order's answer is a PlacedOrder, events are
// {"event":"order","subscription":…,"update":OrderEvent}, errors carry
// read_only/rejected with IB's code.
func TestOrderCommandsOnTheWire(t *testing.T) {
	m := fakes.NewMemory(fakes.DefaultScript())
	p := startServe(t, t.Context(), m)
	p.send(t, `{"id":1,"command":"connect","client_id":3}`)
	if r := p.recv(t); r["status"] != "success" {
		t.Fatalf("connect: %v", r)
	}
	p.send(t, `{"id":2,"command":"subscribe_orders","subscription":"ord"}`)
	if r := p.recv(t); r["status"] != "success" || r["data"].(map[string]any)["subscription"] != "ord" {
		t.Fatalf("subscribe_orders: %v", r)
	}
	p.send(t, `{"id":3,"command":"place_order","order":{"key":"k-1","contract":{"symbol":"AAPL","sec_type":"STK","exchange":"SMART","currency":"USD"},"action":"BUY","quantity":"10","order_type":"LMT","limit_price":"150.25","tif":"GTC"}}`)
	var answer map[string]any
	var evs []map[string]any
	for answer == nil || len(evs) < 1 {
		l := p.recv(t)
		if l["event"] != nil {
			evs = append(evs, l)
		} else {
			answer = l
		}
	}
	data, _ := answer["data"].(map[string]any)
	if answer["id"] != 3.0 || answer["status"] != "success" || data["key"] != "k-1" || data["status"] != "Submitted" || data["order_id"] != 1.0 {
		t.Errorf("place_order answer %v", answer)
	}
	ev := evs[0]
	upd, _ := ev["update"].(map[string]any)
	order, _ := upd["order"].(map[string]any)
	if ev["event"] != "order" || ev["subscription"] != "ord" || upd["kind"] != "status" || order["limit_price"] != "150.25" ||
		order["total_quantity"] != "10" || order["order_ref"] != "k-1" || order["status"] != "Submitted" {
		t.Errorf("order event %v", ev)
	}
	p.send(t, `{"id":4,"command":"place_order","order":{"key":"k-2","contract":{"symbol":"AAPL"},"action":"BUY","quantity":"1","order_type":"LMT","limit_price":"150.001"}}`)
	if r := recvAnswer(t, p); r["code"] != "rejected" || r["ib_code"] != 110.0 {
		t.Errorf("off-tick limit: %v, want code rejected, ib_code 110", r)
	}
	p.send(t, `{"id":5,"command":"cancel_order","order_id":1}`)
	cancelled := recvAnswer(t, p)
	if d, _ := cancelled["data"].(map[string]any); d["cancelled"] != true {
		t.Errorf("cancel_order answer %v", cancelled)
	}
	p.send(t, `{"id":6,"command":"modify_order","order":{"key":"k-1","contract":{"symbol":"AAPL"},"action":"BUY","quantity":"1","order_type":"MKT"}}`)
	if r := recvAnswer(t, p); r["code"] != "invalid_argument" || !strings.Contains(r["error"].(string), "order_id") {
		t.Errorf("modify_order without an id: %v", r)
	}
	p.send(t, `{"id":7,"command":"place_order"}`)
	if r := recvAnswer(t, p); r["code"] != "invalid_argument" {
		t.Errorf("place_order without an order: %v", r)
	}
}

// recvAnswer returns the next response line, skipping event lines.
func recvAnswer(t *testing.T, p *pipeServer) map[string]any {
	t.Helper()
	for {
		if l := p.recv(t); l["event"] == nil {
			return l
		}
	}
}

// TestOrderEventsQueueOnTheHost: the host queues a stream's order events in
// order and, when its caller lets the queue fill, drops and counts them and
// then delivers one gap event; a malformed event line is a gap too.
func TestOrderEventsQueueOnTheHost(t *testing.T) {
	q := broker.NewOrderQueue(4)
	c := &Client{log: hclog.NewNullLogger(), streams: map[string]*clientStream{"o1": {orders: q}}}
	line := func(id int) []byte {
		b, _ := json.Marshal(wireOrderEvent{Event: eventOrder, Subscription: "o1", Time: time.Now(),
			Update: &broker.OrderEvent{Kind: broker.OrderEventStatus, Order: broker.Order{OrderID: int64(id), Status: "Submitted"}}})
		return b
	}
	for id := 1; id <= 6; id++ { // 5 and 6 are dropped
		c.route(line(id), false)
	}
	for want := int64(1); want <= 4; want++ {
		if e := <-q.C(); e.Order.OrderID != want {
			t.Fatalf("event %d: %+v", want, e)
		}
	}
	c.route(line(7), false)
	if e := <-q.C(); e.Kind != broker.OrderEventGap || !strings.Contains(e.Gap, "2 order events dropped") {
		t.Fatalf("after the overflow: %+v, want a gap counting 2", e)
	}
	if e := <-q.C(); e.Order.OrderID != 7 {
		t.Fatalf("after the gap: %+v", e)
	}
	c.route([]byte(`{"event":"order","subscription":"o1","time":"2026-12-02T00:00:00Z","update":{"kind":"status","order":{"filled":"x"}}}`), false)
	if e := <-q.C(); e.Kind != broker.OrderEventGap || !strings.Contains(e.Gap, "malformed") {
		t.Fatalf("malformed event: %+v, want a gap", e)
	}
	c.route([]byte(`{"event":"subscription_end","subscription":"o1","time":"2026-12-02T00:00:00Z"}`), false)
	if _, ok := <-q.C(); ok {
		t.Fatal("subscription_end did not close the order stream")
	}
	if _, ok := c.streams["o1"]; ok {
		t.Fatal("the ended stream is still registered")
	}
}

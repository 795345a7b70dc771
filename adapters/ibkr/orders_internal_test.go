package ibkr

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/scmhub/ibapi"

	"github.com/brokerkit/brokerkit/broker"
	"github.com/brokerkit/brokerkit/fakes"
)

// TestOfflineClientLayout pins the scmhub fields the order frames are built
// through (orders_frames.go): a PLACE_ORDER comes out at a text and a
// protobuf version, and a parameter a version lacks is ErrUnsupported.
func TestOfflineClientLayout(t *testing.T) {
	installLibraryLogger()
	r := broker.OrderRequest{Key: "k", Contract: broker.Contract{Symbol: "AAPL", SecType: "STK"}, Action: "BUY",
		Quantity: broker.MustDecimal("1"), OrderType: "MKT"}
	for _, v := range []int{178, 225} {
		if b, err := placeOrderFrame(v, 1, r); err != nil || len(b) < 8 {
			t.Errorf("version %d: %x, %v", v, b, err)
		}
	}
	_, err := scmhubFrame(100, func(ec *ibapi.EClient) {
		o := ibapi.NewOrder()
		o.CashQty = 1000 // from MIN_SERVER_VER_CASH_QTY (111)
		ec.PlaceOrder(1, ibapi.NewContract(), o)
	})
	if !errors.Is(err, broker.ErrUnsupported) {
		t.Errorf("an order parameter the version lacks: %v, want ErrUnsupported", err)
	}
	if _, err := placeOrderFrame(225, 1, broker.OrderRequest{Key: "k", Contract: r.Contract, Action: "BUY",
		Quantity: broker.MustDecimal("0.00000001"), OrderType: "MKT"}); !errors.Is(err, broker.ErrInvalidArgument) {
		t.Errorf("a quantity finer than scmhub's: %v, want ErrInvalidArgument", err)
	}
}

func TestAllocOrderID(t *testing.T) {
	a := New()
	defer a.Close()
	for _, c := range []struct{ next, want int64 }{{5, 5}, {5, 6}, {100, 100}, {3, 101}, {101, 102}} {
		if got := a.allocOrderID(c.next); got != c.want {
			t.Errorf("allocOrderID(%d) = %d, want %d", c.next, got, c.want)
		}
	}
}

// TestOrderEventGap: a full queue drops events, and the subscriber's next
// event is preceded by one gap; nothing is conflated.
func TestOrderEventGap(t *testing.T) {
	a := New()
	defer a.Close()
	s := newSession(a)
	s.ord.init()
	sub := &orderSub{q: broker.NewOrderQueue(broker.OrderEventBuffer)}
	ch := sub.q.C()
	s.ord.subs[sub] = struct{}{}
	ev := func(i int) broker.OrderEvent {
		return broker.OrderEvent{Kind: broker.OrderEventStatus, Order: broker.Order{OrderID: int64(i)}}
	}
	s.mu.Lock()
	for i := range broker.OrderEventBuffer + 10 {
		s.publishOrderLocked(ev(i))
	}
	s.mu.Unlock()
	for i := range 3 {
		if e := <-ch; e.Order.OrderID != int64(i) {
			t.Fatalf("event %d is %+v", i, e)
		}
	}
	s.mu.Lock()
	s.publishOrderLocked(ev(-1))
	s.mu.Unlock()
	var got []broker.OrderEvent
	for len(ch) > 0 {
		got = append(got, <-ch)
	}
	if n := len(got); n != broker.OrderEventBuffer-3+2 {
		t.Fatalf("%d events after draining 3, want %d", n, broker.OrderEventBuffer-1)
	}
	for i, e := range got[:len(got)-2] {
		if e.Order.OrderID != int64(i+3) || e.Kind != broker.OrderEventStatus {
			t.Fatalf("queued event %d: %+v", i, e)
		}
	}
	if g := got[len(got)-2]; g.Kind != broker.OrderEventGap || g.Gap == "" {
		t.Errorf("after the overflow: %+v, want a gap", g)
	}
	if e := got[len(got)-1]; e.Order.OrderID != -1 {
		t.Errorf("last: %+v, want the new event", e)
	}
}

// TestDuplicateIDRefreshes: a gateway that refuses an order id as a
// duplicate (IB 103, here by making the adapter forget the ids it used and
// its session's NEXT_VALID_ID stale, as a fresh process facing an old
// gateway answer would) makes the adapter ask REQ_IDS and place the order
// once under the fresh id.
func TestDuplicateIDRefreshes(t *testing.T) {
	s := fakes.DefaultScript()
	s.Quotes = []fakes.Quote{{Symbol: "AAPL", Price: broker.MustDecimal("100")}}
	g, err := fakes.NewGateway(s)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	a := New()
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.Connect(ctx, broker.ConnectParams{Host: g.Host(), Port: g.Port(), ClientID: 3}); err != nil {
		t.Fatal(err)
	}
	mkt := func(key string) broker.OrderRequest {
		return broker.OrderRequest{Key: key, Contract: broker.Contract{Symbol: "AAPL", SecType: "STK", Exchange: "SMART",
			Currency: "USD"}, Action: "BUY", Quantity: broker.MustDecimal("1"), OrderType: "MKT"}
	}
	events, err := a.SubscribeOrders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first, err := a.PlaceOrder(ctx, mkt("d-1"))
	if err != nil {
		t.Fatal(err)
	}
	for e := range events {
		if e.Kind == broker.OrderEventStatus && e.Order.Status == broker.StatusFilled {
			break
		}
	}
	if err := a.Ping(ctx); err != nil { // every message about the first order has arrived
		t.Fatal(err)
	}
	sess, err := a.live()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range g.Orders() { // filled: its id is done, a PLACE_ORDER reusing it is 103
		if o.ID == first.OrderID && o.Status != fakes.StatusFilled {
			t.Fatalf("first order %s", o.Status)
		}
	}
	a.lastOrderID.Store(0)
	sess.mu.Lock()
	sess.ord.nextID = first.OrderID
	sess.mu.Unlock()
	p, err := a.PlaceOrder(ctx, mkt("d-2"))
	if err != nil {
		t.Fatal(err)
	}
	if p.OrderID <= first.OrderID {
		t.Errorf("second order id %d, first %d", p.OrderID, first.OrderID)
	}
	if n := g.RequestCount(int(ibapi.REQ_IDS)); n != 1 {
		t.Errorf("%d REQ_IDS, want 1", n)
	}
	if n := g.RequestCount(int(ibapi.PLACE_ORDER)); n != 3 {
		t.Errorf("%d PLACE_ORDERs, want 3 (the first, the refused, the fresh)", n)
	}
	n := 0
	for _, o := range g.Orders() {
		if o.OrderRef == "d-2" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d orders of key d-2: %s", n, fmt.Sprint(g.Orders()))
	}
}
